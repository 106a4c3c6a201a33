"""LTH-T's backbone when it borrows a mask: the mask on the study's dense weights.

A ticket file that holds weights needs nothing here: the grid makes the file itself the
backbone (``trainables.checkpoints.load_checkpoint`` reads it, ``weight_orig * weight_mask``
and every other tensor from the file), as the reference code used its tickets. Two routes
put a mask on the dense ImageNet weights instead, and both come here: a ticket of masks
alone (``load_mask_source``, format ``MASKS_ONLY``) and ``mask_from`` (another method's
checkpoint at the same sparsity, its zeros as the mask).
"""

from __future__ import annotations

import dataclasses
import os

from common.errors import BadInput
from trainables.checkpoints import (MASKS_ONLY, LoadedCheckpoint, StateDict, load_checkpoint,
                                    load_mask_source)
from trainables.models.masks import masks_from_weights


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
