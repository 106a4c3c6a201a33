"""Loading a checkpoint: read, recognise, clean and fit it, measure its sparsity, and build a
model carrying it.

Every later stage (feature extraction, full finetuning, LTH-T, DeepSparse export) wants the
same thing from a file, whatever its source: torchvision-named weights with the pruning masks
applied, the architecture, and a sparsity that has been measured rather than trusted.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from common.errors import BadInput
from trainables import models
from trainables.checkpoints.cleaning import (
    clean_state_dict,
    conv_classifier_to_linear,
    prunable_weight_names,
    pruned_layers,
)
from trainables.checkpoints.fitting import infer_arch, raise_if_unfit, resolve_arch
from trainables.checkpoints.formats import parse
from trainables.checkpoints.formats.base import Parsed, StateDict
from trainables.checkpoints.reading import checkpoint_location, read_checkpoint_file
from trainables.models import masks as masks_lib

log = logging.getLogger(__name__)

# |measured - declared| sparsity, in percentage points, above which a checkpoint is refused.
SPARSITY_TOLERANCE = 1.0


@dataclass(frozen=True, eq=False)
class LoadedCheckpoint:
    """A checkpoint normalised to torchvision-style names, masks applied, sparsity measured.

    Attributes:
        path: the file it came from.
        format: the ``FORMATS`` entry that recognised it.
        arch: registered architecture name (from the file, the caller, or inferred from the
            keys and shapes), or None when none of these says.
        state_dict: clean names, masks multiplied in, classifier as a Linear weight.
        masks: ``{weight name: bool tensor}`` (True = kept) over prunable weights: the
            ``.weight`` of every convolution (4-D) and linear layer (2-D).
        sparsity: global sparsity over prunable weights, in percent.
        layer_sparsity: ``{weight name: percent}`` per prunable weight.
        upstream_dataset: the dataset the file says it was trained on, if it says.
    """

    path: str
    format: str
    arch: str | None
    state_dict: StateDict = field(repr=False)
    masks: masks_lib.Masks = field(repr=False)
    sparsity: float
    layer_sparsity: dict[str, float] = field(repr=False)
    upstream_dataset: str | None

    @property
    def classifier(self) -> str:
        return models.classifier_name(self.arch) if self.arch else "fc"

    @property
    def num_classes(self) -> int | None:
        """Output width of the stored classifier, or None when the file has none."""
        w = self.state_dict.get(f"{self.classifier}.weight")
        return int(w.shape[0]) if w is not None else None


def load_checkpoint(
    path: str | os.PathLike[str],
    arch: str | None = None,
    expect_sparsity: float | None = None,
) -> LoadedCheckpoint:
    """Load, recognise and normalise a checkpoint file; measure its sparsity.

    Args:
        path: the file.
        arch: the architecture, when the file does not say (reference aliases such as
            ``resnet50_str`` are accepted). If the file says too, both must agree.
        expect_sparsity: declared global sparsity in percent; the measured value must be
            within ``SPARSITY_TOLERANCE`` (1 point) of it.

    Returns:
        A ``LoadedCheckpoint``; its weights already fit ``arch`` when one is known.

    Raises:
        MissingInput: no such file (a FileNotFoundError too).
        BadInput: unsafe, corrupt or unrecognised file; architectures disagree or do not
            fit the weights; non-finite weights; sparsity differs from ``expect_sparsity``.
    """
    p = checkpoint_location(path)
    _check_expected_sparsity(expect_sparsity, f"checkpoint {p}")
    fmt, parsed = parse(read_checkpoint_file(p), str(p))
    sd = clean_state_dict(parsed.state_dict, str(p), parsed.rename)
    resolved = _fitted_arch(sd, parsed, arch, p)
    _refuse_non_finite(sd, p)

    # A ticket (torch.nn.utils.prune) counts over the layers it masks, as its authors do
    # (Chen et al. leave the classifier dense); any other file over every prunable weight.
    pruned = pruned_layers(parsed.state_dict, parsed.rename)
    names = pruned or prunable_weight_names(sd)
    zeros, total = masks_lib.count_zeros(sd, names)
    sparsity = 100.0 * zeros / total if total else 0.0
    per_layer = {n: 100.0 * s for n, s in masks_lib.layer_sparsity(sd, names).items()}
    log.info(
        "loaded %s: format=%s arch=%s global sparsity=%.2f%% over %d prunable weights",
        p, fmt, resolved, sparsity, total,
    )
    for name, s in per_layer.items():
        log.debug("  %s %s: %.2f%%", name, list(sd[name].shape), s)
    if expect_sparsity is not None and abs(sparsity - expect_sparsity) > SPARSITY_TOLERANCE:
        raise BadInput(
            f"checkpoint {p} has measured global sparsity {sparsity:.2f}%"
            f"{f' over the {len(pruned)} layers it masks' if pruned else ''} but "
            f"{expect_sparsity:g}% was declared (tolerance {SPARSITY_TOLERANCE:g} point)"
        )
    return LoadedCheckpoint(
        path=str(p), format=fmt, arch=resolved, state_dict=sd,
        masks=masks_lib.masks_from_weights(sd, names), sparsity=sparsity,
        layer_sparsity=per_layer, upstream_dataset=parsed.dataset,
    )


def _check_expected_sparsity(expect_sparsity: float | None, what: str) -> None:
    """A declared sparsity must be a percent in [0, 100]; NaN would pass every "differs by
    more than" test, so it is refused here."""
    if expect_sparsity is not None and not (
            isinstance(expect_sparsity, (int, float)) and 0 <= expect_sparsity <= 100):
        raise BadInput(f"{what}: expected sparsity must be a percent in [0, 100], got "
                       f"{expect_sparsity}")


def _fitted_arch(sd: StateDict, parsed: Parsed, arch: str | None, p: str | Path) -> str | None:
    """The architecture the file and the caller name (they must agree), or the one inferred
    from the keys and shapes; the classifier becomes a Linear and the weights must fit it."""
    file_arch = resolve_arch(parsed.arch, f"file {p} declares") if parsed.arch else None
    caller_arch = resolve_arch(arch, "caller asked for") if arch else None
    if file_arch and caller_arch and file_arch != caller_arch:
        raise BadInput(
            f"checkpoint {p} declares architecture {parsed.arch!r} ({file_arch}) but the "
            f"caller asked for {arch!r} ({caller_arch})"
        )
    resolved = file_arch or caller_arch
    conv_classifier_to_linear(sd, models.classifier_name(resolved) if resolved else "fc", str(p))
    if resolved:
        raise_if_unfit(sd, resolved, str(p))
        return resolved
    inferred = infer_arch(sd)
    if inferred:
        log.info("%s: architecture inferred from keys and shapes: %s", p, inferred)
    return inferred


def _refuse_non_finite(sd: StateDict, p: str | Path) -> None:
    """NaN in a BatchNorm statistic does not even make the finetuning loss NaN (train-mode
    BN): the trial would finish at chance accuracy, so the file is refused instead."""
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise BadInput(
            f"checkpoint {p} holds NaN or infinite values in {len(bad)} tensor(s) "
            f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); expected finite weights"
        )


def build_backbone_model(ckpt: LoadedCheckpoint, num_classes: int | None = None) -> nn.Module:
    """A model of ``ckpt.arch`` carrying the checkpoint's weights (train mode, as built).

    Every non-classifier key is checked strictly. With ``num_classes`` equal to the stored
    classifier's width (or None), the classifier is loaded too; otherwise it is a fresh dense
    ``nn.Linear`` (``models.replace_classifier``) and only the backbone comes from the file.

    Raises:
        BadInput: unknown architecture, no class count to build with, or a key/shape
            mismatch (lists a few missing, unexpected and mismatched keys with both shapes).
    """
    if ckpt.arch is None:
        raise BadInput(
            f"checkpoint {ckpt.path}: architecture unknown; load it with arch=... "
            f"(known: {', '.join(models.ARCHITECTURES.names())})"
        )
    stored = ckpt.num_classes
    n = num_classes if num_classes is not None else stored
    if n is None:
        raise BadInput(
            f"checkpoint {ckpt.path} has no classifier; pass num_classes to build a model"
        )
    model = models.build_model(ckpt.arch, n)
    raise_if_unfit(ckpt.state_dict, ckpt.arch, ckpt.path)
    cls_prefix = f"{models.classifier_name(ckpt.arch)}."
    keep_classifier = stored == n
    target = model.state_dict()
    absent = [k for k in target if k.startswith(cls_prefix) and k not in ckpt.state_dict]
    if keep_classifier and absent:
        raise BadInput(
            f"checkpoint {ckpt.path}: classifier entries {absent} are missing; pass a "
            f"num_classes other than {n} to build a fresh classifier instead"
        )
    if not keep_classifier:
        models.replace_classifier(model, ckpt.arch, n)
        target = model.state_dict()
    for k, v in ckpt.state_dict.items():
        if keep_classifier or not k.startswith(cls_prefix):
            target[k] = v
    model.load_state_dict(target, strict=True)
    return model


def backbone_masks(ckpt: LoadedCheckpoint) -> masks_lib.Masks:
    """The checkpoint's masks without the classifier's: what full finetuning keeps fixed
    once the classifier is replaced by a new dense layer."""
    cls_prefix = f"{ckpt.classifier}."
    return {k: m for k, m in ckpt.masks.items() if not k.startswith(cls_prefix)}
