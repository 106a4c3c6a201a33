"""Pruning methods by name: ``METHODS.get("gmp").fn(model, train_loader, val_loader, target,
cfg, seed, report)`` -> ``PruneResult``.

Each method is one module of this package: a plain function doing the work and a module-level
``ENTRIES`` tuple (``common.method_entry``; its ``fn`` mostly ``common.registered(name, work)``,
one shared frame of seeding, timing and ``finish``). Its key, label and family are the
catalog's (``common.catalog``), so a new method is its module plus its catalog entry: this
package collects the ``ENTRIES`` of every module it holds, in the catalog's order, and no
method module imports the package back. Registry meta of every entry: ``needs`` ("dense",
or "mask" with ``mask_from`` naming the default mask source) and ``config`` (its
``PruneConfig`` subclass). Shared pieces are in ``common``.
"""

from __future__ import annotations

import importlib
import pkgutil

from common import catalog
from trainables.pruning.common import PruneConfig, PruneFn, PruneResult
from trainables.registry import Registry


def collect_methods() -> Registry[PruneFn]:
    """Every ``ENTRIES`` of this package's modules (those on its ``__path__``), in the order
    of the catalog's methods (the paper's)."""
    entries = []
    for module in pkgutil.iter_modules(__path__):
        entries.extend(getattr(importlib.import_module(f"{__name__}.{module.name}"), "ENTRIES", ()))
    order = [m.key for m in catalog.CATALOG.methods]
    return Registry.from_entries("pruning method",
                                 sorted(entries, key=lambda e: order.index(e.name)))


METHODS: Registry[PruneFn] = collect_methods()

__all__ = ["METHODS", "PruneConfig", "PruneResult", "collect_methods"]
