"""RigL, "The Rigged Lottery" (Evci et al. 2020), with the ERK layer-wise sparsity.

Layer densities follow Erdos-Renyi-Kernel: density_l = eps * (sum of the weight's dims) /
(product of its dims), with eps chosen so the total matches the global target; a layer whose
density would exceed 1 is made dense and eps re-solved for the others. Small layers (the stem,
the classifier) thus stay denser than the big 3x3 convolutions.

The per-layer masks are then trained with periodic connectivity updates: every
``cfg.frequency`` steps until ``prune_steps``, each layer drops the fraction
``f_t = alpha/2 (1 + cos(pi t / T_end))`` of its active weights with the smallest magnitude and
grows as many inactive ones with the largest dense-gradient magnitude (new weights start at
zero, with no momentum). Drop and grow counts are equal, so each layer's nonzero count never
changes. Two registered entries: "rigl_erk1x" and "rigl_erk5x", the latter with 5x the
steps (the paper's 5x schedule).

Laptop adaptation: the paper trains RigL from scratch; here, by default, the ERK masks start
from the dense pretrained weights (per-layer magnitude), because a few hundred steps from
scratch would not make a model worth transferring. ``from_scratch=True`` re-initialises the
weights and draws random ERK masks, as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.utils.data import DataLoader

from trainables.models.masks import Masks, apply_masks, prunable_names
from trainables.pruning.common import (
    PruneConfig,
    Report,
    Trainer,
    Work,
    check_target,
    method_entry,
    registered,
    weights_of,
)


@dataclass(frozen=True)
class RigLConfig(PruneConfig):
    """RigL knobs on top of the shared budget (``steps`` is the 1x budget).

    Args:
        alpha: initial drop/grow fraction (cosine-decayed to 0 at ``prune_steps``).
        erk_power: exponent on the ERK raw density (1 = ERK as published).
        from_scratch: re-initialise weights and use random ERK masks (the paper's setting).
        multiplier: training-budget multiplier (5 for "RigL ERK 5x"); the registered entries
            set it, so leave it at 1 in configs unless calling ``rigl_train`` directly.
    """

    alpha: float = 0.3
    erk_power: float = 1.0
    from_scratch: bool = False
    multiplier: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"RigLConfig.alpha must be in [0, 1], got {self.alpha}")
        if self.multiplier < 1:
            raise ValueError(f"RigLConfig.multiplier must be >= 1, got {self.multiplier}")


def erk_densities(
    shapes: dict[str, tuple[int, ...]], target: float, power: float = 1.0
) -> dict[str, float]:
    """ERK density per layer so that the kept fraction over all layers is ``1 - target``.

    ``raw_l = (sum(shape_l) / prod(shape_l)) ** power``; density_l = eps * raw_l, capped at 1
    by moving the densest layer to the dense set and solving again, until no layer exceeds 1.
    """
    target = check_target(target)
    dense: set[str] = set()
    while True:
        divisor, rhs, raw = 0.0, 0.0, {}
        for n, shape in shapes.items():
            numel = math.prod(shape)
            if n in dense:
                rhs -= target * numel  # a dense layer's zeros must be made up elsewhere
            else:
                rhs += (1.0 - target) * numel
                raw[n] = (sum(shape) / numel) ** power
                divisor += raw[n] * numel
        if not raw:
            return {n: 1.0 for n in shapes}
        eps = rhs / divisor
        worst = max(raw, key=raw.get)
        if eps * raw[worst] > 1.0:
            dense.add(worst)
            continue
        return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}


def erk_counts(
    shapes: dict[str, tuple[int, ...]], target: float, power: float = 1.0
) -> dict[str, int]:
    """Kept weights per layer: ERK densities rounded, the rounding error absorbed by the
    largest non-dense layer so the global count is exactly ``round((1 - target) * total)``."""
    dens = erk_densities(shapes, target, power)
    numel = {n: math.prod(s) for n, s in shapes.items()}
    counts = {n: min(numel[n], int(round(dens[n] * numel[n]))) for n in shapes}
    want = int(round((1.0 - target) * sum(numel.values())))
    sparse = [n for n in shapes if counts[n] < numel[n]] or list(shapes)
    biggest = max(sparse, key=lambda n: numel[n])
    counts[biggest] = min(numel[biggest], max(0, counts[biggest] + want - sum(counts.values())))
    return counts


def _topk_mask(score: torch.Tensor, k: int) -> torch.Tensor:
    flat = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
    if k > 0:
        flat[torch.topk(score.reshape(-1), k).indices] = True
    return flat.view_as(score)


def initial_masks(model: nn.Module, counts: dict[str, int], random: bool, seed: int) -> Masks:
    """Per-layer masks with ``counts`` kept: by magnitude, or uniformly at random."""
    params = weights_of(model, counts)
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for n, k in counts.items():
        w = params[n].detach()
        score = torch.rand(w.shape, generator=gen).to(w.device) if random else w.abs()
        out[n] = _topk_mask(score, k)
    return out


def drop_fraction(step: int, cfg: RigLConfig, t_end: int) -> float:
    """RigL's cosine update schedule ``alpha/2 (1 + cos(pi t / T_end))``."""
    return 0.5 * cfg.alpha * (1.0 + math.cos(math.pi * min(step, t_end) / t_end))


@torch.no_grad()
def drop_and_grow(
    model: nn.Module, masks: Masks, fraction: float, opt: torch.optim.Optimizer
) -> int:
    """One RigL connectivity update in place (uses the dense gradients now in ``.grad``).

    Returns how many connections moved in total. Grown weights are set to zero and lose any
    momentum; each layer keeps its count of active weights.
    """
    params = weights_of(model, masks)
    moved = 0
    for n, mask in masks.items():
        p = params[n]
        active = int(mask.sum())
        k = int(fraction * active)
        if k == 0 or p.grad is None or active == mask.numel():
            continue
        neg_inf = torch.tensor(float("-inf"), device=p.device)
        # drop: the k active weights of smallest magnitude
        keep_score = torch.where(mask, p.abs(), torch.tensor(float("inf"), device=p.device))
        drop = torch.zeros(mask.numel(), dtype=torch.bool, device=p.device)
        drop[torch.topk(keep_score.reshape(-1), k, largest=False).indices] = True
        after_drop = mask & ~drop.view_as(mask)
        # grow: the k inactive connections (just-dropped ones included) of largest |grad|
        grow_score = torch.where(after_drop, neg_inf, p.grad.abs())
        grow = _topk_mask(grow_score, k)
        new_mask = after_drop | grow
        newly = new_mask & ~mask
        p[newly] = 0.0
        state = opt.state.get(p)
        if state and state.get("momentum_buffer") is not None:
            state["momentum_buffer"][newly] = 0.0
        moved += int(newly.sum())
        mask.copy_(new_mask)
    return moved


def rigl_train(
    model: nn.Module,
    train_loader: DataLoader,
    target: float,
    cfg: RigLConfig,
    seed: int = 0,
    report: Report | None = None,
) -> tuple[nn.Module, Masks, dict]:
    """RigL with ERK densities in place; the run lasts ``cfg.steps * cfg.multiplier`` steps."""
    total = cfg.steps * cfg.multiplier
    t_end = max(1, int(round(total * (1.0 - cfg.finetune_fraction))))
    names = prunable_names(model, cfg.exclude)
    params = weights_of(model, names)
    shapes = {n: tuple(params[n].shape) for n in names}
    counts = erk_counts(shapes, target, cfg.erk_power)
    if cfg.from_scratch:
        for mod in model.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.reset_parameters()
    masks = initial_masks(model, counts, cfg.from_scratch, seed)
    initial = {n: m.clone() for n, m in masks.items()}
    trainer = Trainer(model, train_loader, cfg, total_steps=total, report=report)
    trainer.set_masks(masks)
    history, moved_total = [], 0
    for t in range(total):
        if t > 0 and t % cfg.frequency == 0 and t < t_end:
            frac = drop_fraction(t, cfg, t_end)

            def update(frac: float = frac) -> None:
                nonlocal moved_total
                moved_total += drop_and_grow(model, masks, frac, trainer.opt)

            trainer.step(before_update=update)
            active = {n: int(m.sum()) for n, m in masks.items()}
            history.append({"step": t, "fraction": frac, "active": active})
        else:
            trainer.step()
    apply_masks(model, masks)
    changed = sum(int((masks[n] != initial[n]).sum()) for n in names) // 2
    info = {
        "erk_densities": erk_densities(shapes, target, cfg.erk_power),
        "layer_counts": counts,
        "mask_updates": len(history),
        "connections_moved": moved_total,
        "mask_changed_vs_initial": changed,
        "update_history": history,
        "multiplier": cfg.multiplier,
    }
    return model, masks, info


def rigl_budget(multiplier: int) -> Work:
    """``rigl_train`` run for ``multiplier`` x the config's steps, whatever its ``multiplier``.

    Why: "RigL ERK 5x" is a method of its own in the paper, not a config value a study may
    change; the step count it reports is the longer one.
    """

    def work(
        model: nn.Module,
        train_loader: DataLoader,
        target: float,
        cfg: RigLConfig,
        seed: int,
        report: Report | None = None,
    ) -> tuple[nn.Module, Masks, dict]:
        run_cfg = replace(cfg, multiplier=multiplier)
        model, masks, info = rigl_train(model, train_loader, target, run_cfg, seed, report)
        return model, masks, {**info, "steps": run_cfg.steps * multiplier}

    work.__name__ = work.__qualname__ = f"rigl_train_{multiplier}x"
    return work


# Collected into ``trainables.pruning.METHODS`` by the package.
ENTRIES = tuple(
    method_entry(
        f"rigl_erk{m}x",
        registered(f"rigl_erk{m}x", rigl_budget(m), seeded=True),
        config=RigLConfig,
        budget=m,
    )
    for m in (1, 5)
)
