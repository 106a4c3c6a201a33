"""LTH-T, lottery tickets for transfer (Chen et al. 2021): a sparse model's mask on dense weights.

No training: the mask of a pruned model (GMP or WoodFisher in the paper) is applied to the
*dense* upstream weights, and the result is what downstream full finetuning starts from.
``lth_transfer_masks`` does exactly that; the registered "lth_t" entry takes the mask from
``mask_source`` when the caller has the pruned model already (the study's zoo), and otherwise
runs the ``cfg.mask_from`` method on a copy of the dense model to get one.

Why ``prune`` here is not ``common.registered``: LTH-T trains nothing, so it seeds nothing of
its own (a mask-source run seeds itself), reports 0 steps and takes an extra ``mask_source``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch
from torch import nn
from torch.utils.data import DataLoader

from trainables.models.masks import Masks, apply_masks, masks_of, prunable_names
from trainables.pruning.common import (
    PruneConfig,
    PruneResult,
    Report,
    check_target,
    finish,
    mask_sparsity,
    method_entry,
)
from trainables.pruning.gmp import ENTRIES as GMP_ENTRIES
from trainables.pruning.woodfisher import ENTRIES as WOODFISHER_ENTRIES

# The methods whose masks LTH-T may transfer, taken from their modules (not from METHODS,
# which the package builds from this module's ENTRIES too).
_SOURCES = {e.name: e for e in (*GMP_ENTRIES, *WOODFISHER_ENTRIES)}
MASK_SOURCES = tuple(_SOURCES)


@dataclass(frozen=True)
class LTHConfig(PruneConfig):
    """LTH-T knobs. The shared budget fields configure the mask-source run, if one is needed.

    Args:
        mask_from: method whose mask is transferred, one of ``MASK_SOURCES``.
    """

    mask_from: str = "gmp"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask_from not in MASK_SOURCES:
            raise ValueError(
                f"LTHConfig.mask_from must be one of {MASK_SOURCES}, got {self.mask_from!r}"
            )


@torch.no_grad()
def lth_transfer_masks(
    dense_model: nn.Module, mask_source: nn.Module | Mapping[str, torch.Tensor], exclude=()
) -> tuple[nn.Module, Masks]:
    """A copy of ``dense_model`` zeroed wherever ``mask_source`` is zero; (model, masks).

    Args:
        dense_model: the dense upstream model (left unchanged).
        mask_source: a pruned model of the same architecture (its mask is where its prunable
            weights are nonzero) or a mask dict ``{param name: bool, True = kept}``.
        exclude: module names whose weights are not masked.
    """
    if isinstance(mask_source, nn.Module):
        masks = masks_of(mask_source, exclude)
    else:
        masks = {n: m.bool() for n, m in mask_source.items()}
    params = dict(dense_model.named_parameters())
    for n, m in masks.items():
        if n not in params or params[n].shape != m.shape:
            raise ValueError(
                f"mask for {n!r} of shape {tuple(m.shape)} does not fit the dense model "
                f"({tuple(params[n].shape) if n in params else 'no such parameter'})"
            )
    model = copy.deepcopy(dense_model)
    apply_masks(model, masks)
    return model, {n: m.clone() for n, m in masks.items()}


def prune(
    model: nn.Module,
    train_loader: DataLoader | None,
    val_loader: DataLoader | None,
    target: float,
    cfg: LTHConfig = LTHConfig(),
    seed: int = 0,
    report: Report | None = None,
    mask_source: nn.Module | Mapping[str, torch.Tensor] | None = None,
) -> PruneResult:
    """LTH-T at ``target``: the mask of a ``cfg.mask_from`` model on the dense ``model``.

    ``model`` is modified in place (masked). Pass ``mask_source`` (the already pruned model
    or its masks) to skip running the source method; its sparsity must match ``target``
    within one point.
    """
    target = check_target(target)
    start = time.perf_counter()
    source_info: dict = {}
    if mask_source is None:
        if train_loader is None:
            raise ValueError("lth_t needs a train_loader when no mask_source is given")
        entry = _SOURCES[cfg.mask_from]
        shared = {f.name: getattr(cfg, f.name) for f in fields(PruneConfig)}
        source_cfg = entry.meta["config"](**shared)
        result = entry.fn(copy.deepcopy(model), train_loader, None, target, source_cfg, seed)
        mask_source = result.masks
        source_info = {"source_sparsity": result.info["sparsity"]}
    _, masks = lth_transfer_masks(model, mask_source, cfg.exclude)  # validates the masks
    # finish() applies the masks to ``model`` in place: the caller's model becomes the result.
    missing = [n for n in prunable_names(model, cfg.exclude) if n not in masks]
    if missing:
        raise ValueError(f"lth_t: the mask source has no mask for {missing}")
    got = mask_sparsity(masks)
    if abs(got - target) > 0.01:
        raise ValueError(
            f"lth_t: the mask source has sparsity {got:.4f}, expected target {target:.4f}"
        )
    return finish(
        "lth_t", model, masks, val_loader, target, cfg, start, 0, report,
        mask_from=cfg.mask_from, mask_sparsity=got, **source_info,
    )


# Collected into ``trainables.pruning.METHODS`` by the package.
ENTRIES = (
    method_entry(
        "lth_t",
        prune,
        needs="mask",
        config=LTHConfig,
        mask_from="gmp",
        mask_sources=MASK_SOURCES,
    ),
)
