"""Pruning methods by name: ``METHODS.get("gmp").fn(model, train_loader, val_loader, target,
cfg, seed, report)`` -> ``PruneResult``.

Each method lives in its own module: a plain function doing the work and a module-level
``ENTRIES`` tuple declaring what it registers (``common.method_entry``; the registered ``fn``
is mostly ``common.registered(name, work)``, one shared frame of seeding, timing and
``finish``). This package imports the method modules and builds ``METHODS`` from their
``ENTRIES``; no method module imports the package back. Registry meta of every entry:
``label`` (the paper's name), ``family`` ("progressive" | "regularization" | "lottery"),
``needs`` ("dense", or "mask" with ``mask_from`` naming the default mask source) and
``config`` (its ``PruneConfig`` subclass). Shared pieces are in ``common``.
"""

from __future__ import annotations

from trainables.pruning import acdc, gmp, lth, rigl, str_, woodfisher
from trainables.pruning.common import PruneConfig, PruneFn, PruneResult
from trainables.registry import Registry

# Order = the paper's method order.
METHODS: Registry[PruneFn] = Registry.from_entries(
    "pruning method",
    (
        entry
        for module in (gmp, woodfisher, acdc, str_, rigl, lth)
        for entry in module.ENTRIES
    ),
)

__all__ = ["METHODS", "PruneConfig", "PruneResult"]
