"""AC/DC: Alternating Compressed / DeCompressed training (Peste et al. 2021).

After a dense warm-up, training alternates between compressed phases -- the top-k weights by
global magnitude are kept at the target sparsity and the rest held at zero -- and
decompressed phases, where every weight trains again (pruned ones restart from zero). The run
ends with a longer compressed phase that doubles as the finetune. The mask is recomputed at
the start of every compressed phase, so weights can re-enter; the overlap between consecutive
masks is recorded in ``info`` (it grows as training converges, as in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.utils.data import DataLoader

from trainables.pruning.common import (
    PruneConfig,
    Report,
    Trainer,
    global_magnitude_masks,
    mask_sparsity,
    method_entry,
    registered,
)

COMPRESSED, DECOMPRESSED, WARMUP = "compressed", "decompressed", "dense_warmup"


@dataclass(frozen=True)
class ACDCConfig(PruneConfig):
    """AC/DC knobs on top of the shared budget.

    Args:
        warmup_fraction: share of ``steps`` trained densely first.
        cycles: compressed + decompressed pairs between the warm-up and the final
            compressed phase (which lasts ``finetune_fraction`` of the steps).
    """

    warmup_fraction: float = 0.1
    cycles: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.warmup_fraction < 1.0 - self.finetune_fraction:
            raise ValueError(
                "ACDCConfig.warmup_fraction must be in [0, 1 - finetune_fraction), "
                f"got {self.warmup_fraction}"
            )
        if self.cycles < 0:
            raise ValueError(f"ACDCConfig.cycles must be >= 0, got {self.cycles}")


def phase_plan(cfg: ACDCConfig) -> list[tuple[str, int, int]]:
    """(phase, start step, end step) of the whole run, in order; empty phases are dropped."""
    warm = int(round(cfg.steps * cfg.warmup_fraction))
    end_alt = max(warm, cfg.prune_steps)
    n = 2 * cfg.cycles
    bounds = [warm + round(i * (end_alt - warm) / n) for i in range(n + 1)]
    plan = [(WARMUP, 0, warm)]
    for i in range(2 * cfg.cycles):
        plan.append((COMPRESSED if i % 2 == 0 else DECOMPRESSED, bounds[i], bounds[i + 1]))
    plan.append((COMPRESSED, end_alt, cfg.steps))
    return [p for p in plan if p[2] > p[1]]


def acdc_train(
    model: nn.Module,
    train_loader: DataLoader,
    target: float,
    cfg: ACDCConfig,
    report: Report | None = None,
) -> tuple[nn.Module, dict, dict]:
    """Run AC/DC in place; returns (model, final masks, info with the phase sequence)."""
    trainer = Trainer(model, train_loader, cfg, report=report)
    log, overlaps = [], []
    masks, prev = None, None
    for phase, start, end in phase_plan(cfg):
        if phase == COMPRESSED:
            masks = global_magnitude_masks(model, target, cfg.exclude)
            if prev is not None:
                kept = sum(int(m.sum()) for m in masks.values())
                both = sum(int((masks[n] & prev[n]).sum()) for n in masks)
                overlaps.append(both / max(kept, 1))
            prev = masks
            trainer.set_masks(masks)
        else:
            trainer.set_masks(None)
        trainer.run(end - start)
        log.append(
            {
                "phase": phase,
                "start": start,
                "end": end,
                "mask_sparsity": mask_sparsity(masks) if phase == COMPRESSED else 0.0,
            }
        )
    if masks is None:  # budget too small for any compressed phase: compress once at the end
        masks = global_magnitude_masks(model, target, cfg.exclude)
    info = {"phases": [p["phase"] for p in log], "phase_log": log, "mask_overlap": overlaps}
    return model, masks, info


# Collected into ``trainables.pruning.METHODS`` by the package.
ENTRIES = (
    method_entry(
        "acdc",
        registered("acdc", acdc_train),
        config=ACDCConfig,
    ),
)
