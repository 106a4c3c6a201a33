"""Pruning methods by name: ``METHODS.get("gmp").fn(model, train_loader, val_loader, target,
cfg, seed, report)`` -> ``PruneResult``.

Each method lives in its own module (a plain function doing the work plus a small registered
``prune`` entry); importing this package registers all of them. Registry meta of every entry:
``label`` (the paper's name), ``family`` ("progressive" | "regularization" | "lottery"),
``needs`` ("dense", or "mask" with ``mask_from`` naming the default mask source) and
``config`` (its ``PruneConfig`` subclass). Shared pieces are in ``common``.
"""

from __future__ import annotations

from typing import Callable

from trainables.registry import Registry

METHODS: Registry[Callable[..., object]] = Registry("pruning method")

# Imported for their registration side effect; order = the paper's method order.
from trainables.pruning import gmp, woodfisher, acdc, str_, rigl, lth  # noqa: E402,F401
from trainables.pruning.common import PruneConfig, PruneResult  # noqa: E402,F401

__all__ = ["METHODS", "PruneConfig", "PruneResult"]
