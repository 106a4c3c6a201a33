"""Gradual magnitude pruning (GMP; Zhu & Gupta 2017), global magnitude criterion.

Starting from the dense model, every ``cfg.frequency`` steps the global sparsity is raised
along the cubic schedule ``s_t = s_f + (s_i - s_f)(1 - t/T)^3`` by zeroing the smallest
weights over all prunable layers; between pruning steps the mask is fixed (pruned weights
stay zero), and after the last step (t = T, sparsity = target) the model is finetuned with the
final mask for ``cfg.finetune_fraction`` of the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.utils.data import DataLoader

from trainables.pruning.common import (
    PruneConfig,
    Report,
    Trainer,
    cubic_sparsity,
    global_magnitude_masks,
    mask_sparsity,
    method_entry,
    registered,
)


@dataclass(frozen=True)
class GMPConfig(PruneConfig):
    """GMP knobs on top of the shared budget.

    Args:
        initial_sparsity: s_i, the sparsity of the first pruning step (at t = 0).
    """

    initial_sparsity: float = 0.0


def pruning_schedule(
    cfg: PruneConfig, target: float, initial: float = 0.0
) -> list[tuple[int, float]]:
    """(step, sparsity) of every pruning step: t = 0, f, 2f, ... up to T = ``cfg.prune_steps``.

    The last entry is always (T, target), so the run ends its pruning phase exactly at target.
    """
    total = cfg.prune_steps
    steps = list(range(0, total, cfg.frequency)) + [total]
    return [(t, cubic_sparsity(t, total, target, initial)) for t in steps]


def gradual_magnitude_prune(
    model: nn.Module,
    train_loader: DataLoader,
    target: float,
    cfg: GMPConfig,
    report: Report | None = None,
) -> tuple[nn.Module, dict, dict]:
    """Run GMP on ``model`` in place; returns (model, masks, info with the realised schedule)."""
    trainer = Trainer(model, train_loader, cfg, report=report)
    schedule = pruning_schedule(cfg, target, cfg.initial_sparsity)
    realised: list[tuple[int, float]] = []
    masks = None
    for i, (t, s_t) in enumerate(schedule):
        masks = global_magnitude_masks(model, s_t, cfg.exclude)
        trainer.set_masks(masks)
        realised.append((t, mask_sparsity(masks)))
        until = schedule[i + 1][0] if i + 1 < len(schedule) else cfg.steps
        trainer.run(until - t)
    info = {"schedule": schedule, "realised_schedule": realised, "pruning_steps": len(schedule)}
    return model, masks, info


# Collected into ``trainables.pruning.METHODS`` by the package.
ENTRIES = (
    method_entry(
        "gmp",
        registered("gmp", gradual_magnitude_prune),
        config=GMPConfig,
    ),
)
