"""Sparsity masks: where a weight is zero it stays zero.

The mask of a layer is where its weight is zero (docs/protocol.md); prunable layers are every
convolution and linear weight. Masks are plain ``{parameter name: bool tensor}`` dicts so
they travel through checkpoints, Ray and tests without custom classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

Masks = dict[str, torch.Tensor]


def prunable_names(model: nn.Module, exclude: Iterable[str] = ()) -> list[str]:
    """Names of the weights of every Conv2d and Linear module, minus excluded module names."""
    skip = set(exclude)
    return [
        f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and name not in skip
    ]


def masks_from_weights(weights: Mapping[str, torch.Tensor], names: Iterable[str]) -> Masks:
    """True where a weight is nonzero (kept), for each named weight."""
    return {n: weights[n] != 0 for n in names}


def masks_of(model: nn.Module, exclude: Iterable[str] = ()) -> Masks:
    params = dict(model.named_parameters())
    return masks_from_weights(params, prunable_names(model, exclude))


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Zero every masked-out weight in place (call after each optimizer step)."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        p = params[name]
        p.mul_(mask.to(device=p.device, dtype=p.dtype))


def count_zeros(weights: Mapping[str, torch.Tensor], names: Iterable[str]) -> tuple[int, int]:
    """(zeros, total) over the named weights."""
    zeros = total = 0
    for n in names:
        w = weights[n]
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros, total


def global_sparsity(model: nn.Module, exclude: Iterable[str] = ()) -> float:
    """Fraction of zeros over all prunable weights, in [0, 1]."""
    params = dict(model.named_parameters())
    zeros, total = count_zeros(params, prunable_names(model, exclude))
    return zeros / total if total else 0.0


def layer_sparsity(weights: Mapping[str, torch.Tensor], names: Iterable[str]) -> dict[str, float]:
    return {n: float((weights[n] == 0).float().mean()) for n in names}
