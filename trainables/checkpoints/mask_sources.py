"""LTH-T's mask sources, and the dense backbone under a borrowed mask.

A ticket file that holds weights needs nothing here: the grid makes the file itself the
backbone (``load_checkpoint`` reads it, ``weight_orig * weight_mask`` and every other tensor
from the file), as the reference code used its tickets. Two routes put a mask on the dense
ImageNet weights instead, and both come here: a ticket of masks alone (``load_mask_source``,
format ``MASKS_ONLY``) and ``mask_from`` (another method's checkpoint at the same sparsity,
its zeros as the mask).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch

from common.errors import BadInput
from trainables.checkpoints.fitting import arch_shapes, resolve_arch
from trainables.checkpoints.formats import parse
from trainables.checkpoints.formats.base import (
    PRUNE_MASK,
    PRUNE_ORIG,
    StateDict,
    config_dataset,
    inner_state_dict,
    strip_module,
)
from trainables.checkpoints.loading import SPARSITY_TOLERANCE, LoadedCheckpoint, load_checkpoint
from trainables.checkpoints.reading import checkpoint_location, read_checkpoint_file
from trainables.models.masks import masks_from_weights

log = logging.getLogger(__name__)

MASKS_ONLY = "lth_ticket masks"  # the format of a ticket of masks alone (load_mask_source)


def ticket_holds_weights(path: str | os.PathLike[str]) -> bool:
    """Whether a file given as LTH-T's ticket holds weights, so that LTH-T uses it as it is.

    False only for a ticket of masks alone (``X.weight_mask`` and no ``X.weight_orig`` or
    ``X.weight`` for any of them), whose masks go on the study's dense weights; any other
    checkpoint is its own weights.
    """
    inner = inner_state_dict(read_checkpoint_file(path)) or {}
    keys = {strip_module(k) for k in inner if isinstance(k, str)}
    masked = [k[: -len(PRUNE_MASK)] for k in keys if k.endswith(PRUNE_MASK)]
    return not masked or any(f"{m}{PRUNE_ORIG}" in keys or f"{m}.weight" in keys
                             for m in masked)


def load_mask_source(
    path: str | os.PathLike[str], arch: str | None = None, expect_sparsity: float | None = None
) -> LoadedCheckpoint:
    """LTH-T's mask: a ticket file (torch.nn.utils.prune ``X.weight_mask`` entries, with or
    without the weights) or any checkpoint (its zeros).

    A ticket's masks are taken as they are, over the layers it prunes (Chen et al. prune the
    convolutions only), and its sparsity is measured over those layers, as its authors count
    it; the result's ``format`` is ``MASKS_ONLY`` and ``state_dict`` holds the masks as floats.
    Anything else goes through ``load_checkpoint``.
    """
    p = checkpoint_location(path)
    obj = read_checkpoint_file(p)
    masks_raw = _ticket_masks(obj, p)
    if not masks_raw:
        return load_checkpoint(p, arch=arch, expect_sparsity=expect_sparsity)
    resolved = resolve_arch(arch, "caller asked for") if arch else None
    if resolved:
        _check_ticket_fits(masks_raw, resolved, p)
    masks = {k: v != 0 for k, v in masks_raw.items()}
    total = sum(m.numel() for m in masks.values())
    zeros = sum(int((~m).sum()) for m in masks.values())
    sparsity = 100.0 * zeros / total if total else 0.0
    if expect_sparsity is not None and abs(sparsity - expect_sparsity) > SPARSITY_TOLERANCE:
        raise BadInput(
            f"ticket {p} has measured sparsity {sparsity:.2f}% over the {len(masks)} layers it "
            f"prunes but {expect_sparsity:g}% was declared (tolerance {SPARSITY_TOLERANCE:g} "
            "point)")
    log.info("ticket %s: %d masked layers, sparsity %.2f%% over them", p, len(masks), sparsity)
    return LoadedCheckpoint(
        path=str(p), format=MASKS_ONLY, arch=resolved,
        state_dict={k: m.float() for k, m in masks.items()}, masks=masks, sparsity=sparsity,
        layer_sparsity={k: 100.0 * float((~m).sum()) / m.numel() for k, m in masks.items()},
        upstream_dataset=config_dataset(obj),
    )


def _ticket_masks(obj: Any, p: str | Path) -> StateDict:
    """A ticket's ``X.weight_mask`` entries as ``{X.weight: mask}`` in the names of the
    layout the file is in (the reference's MobileNet ``model.N``, AMC's...); empty when the
    file is no ticket."""
    entries = {strip_module(k): v for k, v in (inner_state_dict(obj) or {}).items()
               if isinstance(k, str)}
    masks_raw = {k[: -len(PRUNE_MASK)] + ".weight": v for k, v in entries.items()
                 if k.endswith(PRUNE_MASK) and isinstance(v, torch.Tensor)}
    if not masks_raw:
        return {}
    rename = parse(masks_raw, str(p))[1].rename
    return {rename(k): v for k, v in masks_raw.items()} if rename is not None else masks_raw


def _check_ticket_fits(masks_raw: StateDict, arch: str, p: str | Path) -> None:
    shapes = arch_shapes(arch)
    bad = [f"{k}: {list(v.shape)}" + (f" vs model {list(shapes[k])}" if k in shapes else
                                      " (no such layer)")
           for k, v in masks_raw.items() if shapes.get(k) != tuple(v.shape)]
    if bad:
        raise BadInput(f"ticket {p} does not fit architecture {arch!r}: {'; '.join(bad[:5])}")


def lth_transfer(dense: LoadedCheckpoint, mask_source: LoadedCheckpoint) -> StateDict:
    """The dense ImageNet weights with a mask source's mask applied.

    Non-prunable entries (BatchNorm, biases) come from ``dense``. The result can be saved
    with ``save_reference_checkpoint`` or loaded into ``build_backbone_model``'s model.

    Raises:
        BadInput: the architectures differ, or the prunable weights' names or shapes do.
    """
    if dense.arch != mask_source.arch and mask_source.arch is not None:
        raise BadInput(
            f"LTH-T needs one architecture: dense {dense.path} is {dense.arch!r}, mask source "
            f"{mask_source.path} is {mask_source.arch!r}"
        )
    # A ticket of Chen et al. prunes the convolutions only: the layers it has no mask for
    # stay dense. Any other mask source must cover every prunable weight.
    only_dense = ([] if mask_source.format == MASKS_ONLY
                  else sorted(set(dense.masks) - set(mask_source.masks)))
    only_mask = sorted(set(mask_source.masks) - set(dense.masks))
    shape_diff = [
        f"{k}: dense {list(dense.masks[k].shape)} vs mask {list(m.shape)}"
        for k, m in mask_source.masks.items()
        if k in dense.masks and m.shape != dense.masks[k].shape
    ]
    if only_dense or only_mask or shape_diff:
        raise BadInput(
            f"LTH-T: {dense.path} and {mask_source.path} do not match: "
            f"only in dense {only_dense[:5]}, only in mask source {only_mask[:5]}, "
            f"shape differences {shape_diff[:5]}"
        )
    out = {k: v.clone() for k, v in dense.state_dict.items()}
    for name, mask in mask_source.masks.items():
        out[name] = dense.state_dict[name] * mask.to(out[name].dtype)
    return out


def mask_on_dense(dense_path: str | os.PathLike[str], mask_path: str | os.PathLike[str],
                  arch: str, sparsity: float) -> LoadedCheckpoint:
    """The dense checkpoint (sparsity 0) under the mask of ``mask_path``, whose sparsity must
    be ``sparsity`` percent: masks, sparsity and per-layer figures are the mask source's
    layers (a ticket's own count, over the layers it prunes)."""
    dense = load_checkpoint(dense_path, arch=arch, expect_sparsity=0)
    source = load_mask_source(mask_path, arch=arch, expect_sparsity=sparsity)
    state = lth_transfer(dense, source)
    return dataclasses.replace(
        dense, state_dict=state, masks=masks_from_weights(state, list(source.masks)),
        sparsity=source.sparsity, layer_sparsity=dict(source.layer_sparsity),
        path=f"{dense_path} + mask of {mask_path}",
    )
