"""Where the zeros go: random weights pruned to a target sparsity, and the work they leave.

Random-weight speed trials need a sparse backbone without a trained checkpoint; the kernels'
speed depends on the layout of the zeros (``PRUNE_PROFILES``), which ``macs_share`` turns into
the best speed-up a sparse runtime could reach.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trainables.models import masks

# How random weights are pruned to a target sparsity (``prune_random``).
PRUNE_PROFILES = ("uniform", "global")


def _smallest(values: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Keep-mask (flat) dropping the ``k`` smallest ``values``, ties broken at random.

    Everything below the k-th smallest value goes; among the values equal to it, those with
    the smallest random keys. One selection instead of two sorts of the whole layer (a
    ResNet50 took 6 s), the same mask as sorting by (value, key).
    """
    keys = torch.rand(values.numel(), generator=gen)
    keep = torch.ones(values.numel(), dtype=torch.bool)
    if k <= 0:
        return keep
    threshold = torch.kthvalue(values, k).values
    keep[values < threshold] = False
    tied = torch.nonzero(values == threshold).flatten()
    need = k - int((~keep).sum())
    keep[tied[torch.argsort(keys[tied], stable=True)[:need]]] = False
    return keep


def _uniform_counts(sizes: Sequence[int], k: int) -> list[int]:
    """Split ``k`` zeros over layers of ``sizes`` in proportion, summing to exactly ``k``."""
    total = sum(sizes)
    if k > total:
        raise ValueError(f"cannot zero {k} weights in layers holding {total}")
    exact = [k * n / total for n in sizes]
    counts = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: k - sum(counts)]:
        counts[i] += 1
    return counts


@torch.no_grad()
def prune_random(
    model: nn.Module,
    target: float,
    seed: int = 0,
    exclude: Sequence[str] = (),
    profile: str = "uniform",
) -> nn.Module:
    """A copy of ``model`` pruned to ``target`` sparsity by weight magnitude.

    Used for "random weights" speed trials (``weights="random"``): the kernels' speed depends on
    where the zeros are, not on the surviving values. Exactly ``round(target * total)`` of the
    prunable weights (``trainables.models.masks``) become zero: the smallest magnitudes, with ties
    broken at random under ``seed``.

    Profiles (where the zeros go):
        ``"uniform"``: every layer at the same sparsity except the first (the stem), which stays
            dense, as in uniform gradual magnitude pruning (Gale et al. 2019); the others are
            pruned a little more to make up for it.
        ``"global"``: one magnitude threshold over all layers. On *random* weights this ranks
            layers by their initialisation scale, not by anything learnt: torchvision's ResNet50
            at 90 % keeps layer1 40 % dense and the stem 1 % dense (4.8x fewer multiply-adds,
            against 8.0x for uniform), and at 98 % it zeroes whole layer4 convolutions. Kept to
            compare with, not as the reference profile.

    Args:
        model: any model; not modified.
        target: fraction of prunable weights to zero, in [0, 1).
        seed: seed of the tie-break.
        exclude: module names left dense and out of the count (e.g. the classifier).
        profile: one of ``PRUNE_PROFILES``.
    """
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target sparsity must be a fraction in [0, 1), got {target}")
    if profile not in PRUNE_PROFILES:
        raise ValueError(f"profile must be one of {PRUNE_PROFILES}, got {profile!r}")
    pruned = copy.deepcopy(model)
    names = masks.prunable_names(pruned, exclude)
    params = dict(pruned.named_parameters())
    k = round(target * sum(params[n].numel() for n in names))
    if k == 0:
        return pruned
    # Groups of layers ranked together, and how many zeros each gets.
    if profile == "global":
        groups = [(names, k)]
    else:
        rest = names[1:] if len(names) > 1 else names  # the stem stays dense
        counts = _uniform_counts([params[n].numel() for n in rest], k)
        groups = [([n], count) for n, count in zip(rest, counts)]
    gen = torch.Generator().manual_seed(seed)
    keep: dict[str, torch.Tensor] = {}
    for group, count in groups:
        flat = torch.cat([params[n].detach().abs().flatten() for n in group])
        kept = _smallest(flat, count, gen)
        for n, part in zip(group, kept.split([params[n].numel() for n in group])):
            keep[n] = part.view_as(params[n])
    masks.apply_masks(pruned, keep)
    return pruned


@torch.no_grad()
def macs_share(model: nn.Module, image_size: int) -> float:
    """Nonzero multiply-adds of the Conv2d/Linear layers over their dense count, one image.

    The work a sparsity-aware runtime can skip: the upper bound of its speed-up is about
    ``1 / macs_share``, whatever the overall sparsity says.
    """
    dense = nonzero = 0.0

    def count(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal dense, nonzero
        w = module.weight
        per_output = w[0].numel() if isinstance(module, nn.Conv2d) else w.shape[1]
        positions = output.numel() / output.shape[0] / w.shape[0]
        dense += per_output * w.shape[0] * positions
        nonzero += float(torch.count_nonzero(w)) * positions

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    try:
        model.eval()(torch.zeros(1, 3, image_size, image_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if dense == 0:
        raise ValueError("model has no Conv2d or Linear layer to count")
    return nonzero / dense
