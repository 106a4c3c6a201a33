"""Upstream checkpoints: recognise a file's format, load it safely, normalise it, check sparsity.

Why one module: the study's sparse backbones come from several sources (the reference study's
own files, plain torchvision state dicts, SparseML, the TensorFlow port of RigL) and every
later stage (feature extraction, full finetuning, LTH-T, DeepSparse export) wants the same
thing: torchvision-named weights with the pruning masks already applied, the architecture, and
a sparsity figure that has been measured rather than trusted.

Formats are entries of ``FORMATS``; each declares a ``detect`` rule and what it ``expects``.
A file is tried against them in registration order, first match wins:

1. ``rigl_tf_port``: weights named like the reference's PyTorch port of the TensorFlow RigL
   ResNet50 (``initial_conv.conv.weight``, ``layer1.block.0.shortcut.conv.weight``...), bare
   or inside a reference/SparseML container. It and the next three come first because their
   key names, not their container, decide how they must be read.
2. ``mobilenet_model``: MobileNetV1 under ``model.N`` (the reference's own MobileNet, which
   holds the paper's dense, GMP, M-FAC and AC/DC MobileNets, and STR's MobileNet with its 1x1
   convolution classifier).
3. ``mobilenet_amc``: MobileNetV1 as AMC names it (``conv1``, ``features.I``,
   ``classifier.0``).
4. ``lth_ticket``: torch.nn.utils.prune layers (``X.weight_orig`` + ``X.weight_mask``), as
   the LTH-T tickets of Chen et al. are saved: the file as it is (its own weights under its
   masks), masks and sparsity over the layers it masks; a ticket of masks alone holds no
   weights and is read by ``load_mask_source`` (its mask goes on the dense weights).
5. ``reference``: a dict with ``model_config`` = {``arch``, ``dataset``} and
   ``model_state_dict`` (IST-DASLab/sparse-imagenet-transfer).
6. ``sparseml``: a dict with a ``state_dict`` entry (and optionally ``epoch``, ``arch_key``,
   ``optimizer``...).
7. ``torchvision``: a plain ``{name: tensor}`` state dict.

Every format goes through the same cleaning: a leading ``module.`` (DataParallel) is
dropped; wrapped pruned layers (``X._layer.weight`` with a ``X._weight_mask`` buffer, and
``X._bias_mask`` for a bias) become ``X.weight = weight * mask``; a classifier stored as a
1x1 convolution (STR ResNet50 and MobileNet) becomes a Linear weight, with a zero bias since
that convolution has none; STR's learned thresholds (``X.sparseThreshold``, in files not yet
converted) are applied as STR does, sign(w) * relu(|w| - sigmoid(s)); pruned layers of
torch.nn.utils.prune become ``X.weight = X.weight_orig * X.weight_mask``.

Files are read with ``torch.load(weights_only=True)``: a file that would need arbitrary code
to unpickle is refused, never executed.

Command line: ``python -m trainables.checkpoints FILE [--arch ARCH] [--expect-sparsity 90]
[--json]`` prints what a file holds.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import pickle
import re
import struct
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.atomic import atomic_path
from common.errors import BadInput, MissingInput, machine_error
from trainables.models import masks as masks_lib
from trainables import models
from trainables.registry import Registry

log = logging.getLogger("trainables.checkpoints")

StateDict = dict[str, torch.Tensor]

# |measured - declared| sparsity, in percentage points, above which a checkpoint is refused.
SPARSITY_TOLERANCE = 1.0

# Architecture names used by the reference study's model_config (and SparseML arch_key) that
# map onto a registered architecture; the optional function renames the file's keys to
# torchvision-style names. The reference's "mobilenet" nests its layers under ``model.``
# where ours uses ``features.`` with the same indices.
_REFERENCE_MOBILENET_PREFIX = ("model.", "features.")
ARCH_ALIASES: dict[str, str] = {
    "resnet50_torch": "resnet50",
    "resnet50_str": "resnet50",
    "resnet50_rigl": "resnet50",
    "mobilenet": "mobilenet_v1",
    "mobilenet_str": "mobilenet_v1",  # the reference's layout, classifier a 1x1 convolution
    "mobilenet_amc": "mobilenet_v1",  # AMC's layout (conv1, features, classifier)
}
# Reference architectures whose key layout has no mapping here (yet).
UNSUPPORTED_ARCHS: dict[str, str] = {}


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


@dataclass(frozen=True)
class _Parsed:
    """What a format loader extracts before the shared cleaning."""

    state_dict: Mapping[str, Any]
    arch: str | None = None
    dataset: str | None = None
    rename: Callable[[str], str] | None = None


FORMATS: Registry[Callable[[Any], _Parsed]] = Registry("checkpoint format")


def _inner_state_dict(obj: Any) -> Mapping[str, Any] | None:
    """The weights mapping of any known container, or the object itself if it is one."""
    if not isinstance(obj, Mapping):
        return None
    for key in ("model_state_dict", "state_dict"):
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            return inner
    return obj


def _is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


# ---- rigl_tf_port ----------------------------------------------------------------------------

_RIGL_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^initial_conv\.conv\.(.+)$"), r"conv1.\1"),
    (re.compile(r"^initial_conv\.bn\.(.+)$"), r"bn1.\1"),
    (re.compile(r"^(layer\d)\.block\.(\d+)\.conv(\d)\.conv\.(.+)$"), r"\1.\2.conv\3.\4"),
    (re.compile(r"^(layer\d)\.block\.(\d+)\.conv(\d)\.bn\.(.+)$"), r"\1.\2.bn\3.\4"),
    (re.compile(r"^(layer\d)\.block\.(\d+)\.shortcut\.conv\.(.+)$"), r"\1.\2.downsample.0.\3"),
    (re.compile(r"^(layer\d)\.block\.(\d+)\.shortcut\.bn\.(.+)$"), r"\1.\2.downsample.1.\3"),
    (re.compile(r"^(fc\.(?:weight|bias))$"), r"\1"),
]


def _rigl_key(key: str) -> str:
    for pattern, repl in _RIGL_RULES:
        if pattern.match(key):
            return pattern.sub(repl, key)
    raise BadInput(f"RigL TF-port key {key!r} has no torchvision ResNet50 counterpart")


def _detect_rigl(obj: Any) -> bool:
    inner = _inner_state_dict(obj)
    return inner is not None and any(
        isinstance(k, str) and _strip_module(k).startswith("initial_conv.") for k in inner
    )


@FORMATS.register(
    "rigl_tf_port",
    detect=_detect_rigl,
    expects="weights named like the reference's ResnetTF port (initial_conv.conv.weight, "
    "layerN.block.I.convK.conv.weight, ...), bare or in model_state_dict/state_dict",
    description="RigL ResNet50 ported from TensorFlow. Keys map one-to-one onto torchvision's "
    "resnet50 (initial_conv->conv1/bn1, block.I.convK.{conv,bn}->I.{convK,bnK}, "
    "shortcut->downsample). Caveat: the port's stem max-pool pads like TF 'SAME' (one pixel "
    "right/bottom) where torchvision pads one pixel each side, so features computed by "
    "torchvision's resnet50 differ slightly from the reference's ResnetTF.",
)
def _load_rigl(obj: Any) -> _Parsed:
    config = obj.get("model_config") if isinstance(obj, Mapping) else None
    config = config if isinstance(config, Mapping) else {}
    log.warning(
        "RigL TF-port weights are loaded into torchvision's resnet50; its stem max-pool is "
        "aligned differently from the TF original, so features differ slightly"
    )
    return _Parsed(
        state_dict=_inner_state_dict(obj) or {},
        arch="resnet50",
        dataset=_str_or_none(config.get("dataset")),
        rename=_rigl_key,
    )


# ---- MobileNetV1 layouts ---------------------------------------------------------------------
# The paper's MobileNetV1 checkpoints come in the layouts of the reference's three MobileNet
# classes (models/mobilenet.py, external/str/STR_mobilenet.py, external/amc/mobilenet_v1.py);
# they are recognised by their key names, whatever the container and whatever arch the file
# names, as rigl_tf_port is.


def _config_dataset(obj: Any) -> str | None:
    config = obj.get("model_config") if isinstance(obj, Mapping) else None
    return _str_or_none(config.get("dataset")) if isinstance(config, Mapping) else None


def _stripped_keys(obj: Any) -> set[str]:
    inner = _inner_state_dict(obj)
    if inner is None:
        return set()
    return {_drop_layer_segments(_strip_module(k)) for k in inner if isinstance(k, str)}


def _detect_mobilenet_model(obj: Any) -> bool:
    keys = _stripped_keys(obj)
    return "model.0.0.weight" in keys and "model.13.3.weight" in keys


@FORMATS.register(
    "mobilenet_model",
    detect=_detect_mobilenet_model,
    expects="MobileNetV1 weights under 'model.' (model.0.0.weight ... model.13.3.weight, fc), "
    "bare or in model_state_dict/state_dict",
    description="MobileNetV1 in the reference's layout (Distiller's MobileNet: dense, GMP, "
    "M-FAC, AC/DC, layers possibly wrapped with masks) or STR's (the same names, classifier a "
    "bias-free 1x1 convolution, soft thresholds 'sparseThreshold' possibly still beside the "
    "weights). 'model.N' becomes 'features.N' of mobilenet_v1 (same indices).",
)
def _load_mobilenet_model(obj: Any) -> _Parsed:
    return _Parsed(
        state_dict=_inner_state_dict(obj) or {},
        arch="mobilenet_v1",
        dataset=_config_dataset(obj),
        rename=_prefix_renamer(*_REFERENCE_MOBILENET_PREFIX),
    )


_AMC_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^conv1\.(\d)\.(.+)$"), lambda m: f"features.0.{m[1]}.{m[2]}"),
    (re.compile(r"^features\.(\d+)\.(.+)$"), lambda m: f"features.{int(m[1]) + 1}.{m[2]}"),
    (re.compile(r"^classifier\.0\.(weight|bias)$"), lambda m: f"fc.{m[1]}"),
]


def _amc_key(key: str) -> str:
    for pattern, repl in _AMC_RULES:
        match = pattern.match(key)
        if match:
            return repl(match)
    raise BadInput(f"AMC MobileNet key {key!r} has no mobilenet_v1 counterpart")


def _detect_mobilenet_amc(obj: Any) -> bool:
    keys = _stripped_keys(obj)
    return {"conv1.0.weight", "features.0.0.weight", "classifier.0.weight"} <= keys


@FORMATS.register(
    "mobilenet_amc",
    detect=_detect_mobilenet_amc,
    expects="MobileNetV1 weights named like AMC's (conv1.0.weight, features.I.J.weight, "
    "classifier.0.weight), bare or in model_state_dict/state_dict",
    description="MobileNetV1 as AMC (He et al. 2018) names it: conv1 -> features.0, "
    "features.I -> features.I+1, classifier.0 -> fc. Read at the full widths, as the "
    "reference builds it; a channel-pruned file of other widths is refused by the shape check.",
)
def _load_mobilenet_amc(obj: Any) -> _Parsed:
    return _Parsed(
        state_dict=_inner_state_dict(obj) or {},
        arch="mobilenet_v1",
        dataset=_config_dataset(obj),
        rename=_amc_key,
    )


# ---- LTH tickets (torch.nn.utils.prune) ------------------------------------------------------
_PRUNE_ORIG, _PRUNE_MASK = ".weight_orig", ".weight_mask"


def _detect_ticket(obj: Any) -> bool:
    return any(k.endswith((_PRUNE_ORIG, _PRUNE_MASK)) for k in _stripped_keys(obj))


@FORMATS.register(
    "lth_ticket",
    detect=_detect_ticket,
    expects="weights pruned with torch.nn.utils.prune (X.weight_orig + X.weight_mask), or a "
    "ticket's masks alone (X.weight_mask), bare or in model_state_dict/state_dict",
    description="The lottery tickets of Chen et al. (CVPR 2021), which the reference "
    "transferred as LTH-T as they are: X.weight = X.weight_orig * X.weight_mask, every other "
    "tensor from the file; masks and sparsity over the layers it masks (its authors' count). "
    "A file of masks alone is a mask source only (load_mask_source): LTH-T puts its mask on "
    "the study's dense weights.",
)
def _load_ticket(obj: Any) -> _Parsed:
    config = obj.get("model_config") if isinstance(obj, Mapping) else None
    arch = _str_or_none(config.get("arch")) if isinstance(config, Mapping) else None
    return _Parsed(state_dict=_inner_state_dict(obj) or {}, arch=arch,
                   dataset=_config_dataset(obj))


# ---- reference -------------------------------------------------------------------------------


def _detect_reference(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and isinstance(obj.get("model_config"), Mapping)
        and isinstance(obj.get("model_state_dict"), Mapping)
    )


@FORMATS.register(
    "reference",
    detect=_detect_reference,
    expects="a dict with 'model_config' = {'arch', 'dataset'} and 'model_state_dict'",
    description="The reference study's checkpoints (IST-DASLab/sparse-imagenet-transfer), and "
    "this project's upstream zoo; layers may be wrapped (X._layer.weight + X._weight_mask).",
)
def _load_reference(obj: Mapping[str, Any]) -> _Parsed:
    config = obj["model_config"]
    arch = _str_or_none(config.get("arch"))
    rename = _prefix_renamer(*_REFERENCE_MOBILENET_PREFIX) if arch == "mobilenet" else None
    return _Parsed(
        state_dict=obj["model_state_dict"],
        arch=arch,
        dataset=_str_or_none(config.get("dataset")),
        rename=rename,
    )


# ---- sparseml --------------------------------------------------------------------------------


def _detect_sparseml(obj: Any) -> bool:
    return isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping)


@FORMATS.register(
    "sparseml",
    detect=_detect_sparseml,
    expects="a dict with a 'state_dict' entry (optionally 'epoch', 'arch_key', 'optimizer')",
    description="SparseML-style training checkpoints; 'arch_key' is used as the architecture. "
    "SparseML's own model classes name layers differently from torchvision and are refused "
    "by the architecture check.",
)
def _load_sparseml(obj: Mapping[str, Any]) -> _Parsed:
    arch = _str_or_none(obj.get("arch_key"))
    rename = _prefix_renamer(*_REFERENCE_MOBILENET_PREFIX) if arch == "mobilenet" else None
    return _Parsed(
        state_dict=obj["state_dict"],
        arch=arch,
        dataset=_str_or_none(obj.get("dataset")),
        rename=rename,
    )


# ---- torchvision -----------------------------------------------------------------------------


@FORMATS.register(
    "torchvision",
    detect=_is_tensor_dict,
    expects="a plain non-empty {name: tensor} state dict with torchvision layer names",
    description="A bare state dict (torch.save(model.state_dict())); the architecture comes "
    "from the caller or is inferred from the key names and shapes.",
)
def _load_torchvision(obj: Mapping[str, torch.Tensor]) -> _Parsed:
    return _Parsed(state_dict=obj)


# ---- shared cleaning -------------------------------------------------------------------------


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _prefix_renamer(old: str, new: str) -> Callable[[str], str]:
    def rename(key: str) -> str:
        return new + key[len(old) :] if key.startswith(old) else key

    return rename


def _strip_module(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module.") :]
    return key


def _drop_layer_segments(key: str) -> str:
    return ".".join(part for part in key.split(".") if part != "_layer")


def _apply_prune_masks(tensors: StateDict, path: str) -> StateDict:
    """torch.nn.utils.prune's ``X.weight_orig`` + ``X.weight_mask`` become ``X.weight``."""
    if not any(k.endswith(_PRUNE_MASK) for k in tensors):
        return tensors
    out = {k: v for k, v in tensors.items() if not k.endswith((_PRUNE_ORIG, _PRUNE_MASK))}
    for key, mask in tensors.items():
        if not key.endswith(_PRUNE_MASK):
            continue
        name = key[: -len(_PRUNE_MASK)] + ".weight"
        orig = tensors.get(key[: -len(_PRUNE_MASK)] + _PRUNE_ORIG, tensors.get(name))
        if orig is None:
            raise BadInput(
                f"checkpoint {path} holds the mask {key!r} but no weights for it: a ticket of "
                "masks alone is a mask source (give it as LTH-T's 'tickets'), not a backbone")
        if orig.shape != mask.shape:
            raise BadInput(f"checkpoint {path}: mask {key!r} has shape {list(mask.shape)}, its "
                           f"weight {list(orig.shape)}")
        out[name] = orig * mask.to(orig.dtype)
    return out


def _pruned_layers(raw: Mapping[str, Any], rename: Callable[[str], str] | None) -> list[str]:
    """The weights a torch.nn.utils.prune file masks (``X.weight_mask``), by clean names."""
    names = [_drop_layer_segments(_strip_module(k)[: -len(_PRUNE_MASK)]) + ".weight"
             for k in raw if isinstance(k, str) and k.endswith(_PRUNE_MASK)]
    return [rename(n) for n in names] if rename else names


def _apply_soft_thresholds(tensors: StateDict, path: str) -> StateDict:
    """STR's layers keep a learned threshold ``X.sparseThreshold`` beside dense ``X.weight``;
    the weight STR uses is sign(w) * relu(|w| - sigmoid(s)) (Kusupati et al. 2020)."""
    suffix = ".sparseThreshold"
    if not any(k.endswith(suffix) for k in tensors):
        return tensors
    out = {k: v for k, v in tensors.items() if not k.endswith(suffix)}
    for key, s in tensors.items():
        if not key.endswith(suffix):
            continue
        name = key[: -len(suffix)] + ".weight"
        w = tensors.get(name)
        if w is None or s.numel() != 1:
            raise BadInput(f"checkpoint {path}: STR threshold {key!r} has no weight {name!r} "
                           "or is not a single value")
        out[name] = torch.sign(w) * torch.relu(w.abs() - torch.sigmoid(s.reshape(())))
    log.info("%s: STR soft thresholds applied to %d layers", path,
             sum(k.endswith(suffix) for k in tensors))
    return out


def _clean_state_dict(
    raw: Mapping[str, Any], path: str, rename: Callable[[str], str] | None
) -> StateDict:
    """Drop ``module.``, unwrap masked layers (weight * mask), apply a format's renames."""
    tensors: StateDict = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise BadInput(
                f"checkpoint {path}: state dict entry {key!r} is a {type(value).__name__}, "
                "expected a tensor"
            )
        tensors[_strip_module(key)] = value

    tensors = _apply_prune_masks(tensors, path)
    tensors = _apply_soft_thresholds(tensors, path)
    wrapped_masks: dict[str, torch.Tensor] = {}
    plain: StateDict = {}
    for key, value in tensors.items():
        for suffix, param in (("._weight_mask", "weight"), ("._bias_mask", "bias")):
            if key.endswith(suffix):
                module = _drop_layer_segments(key[: -len(suffix)])
                wrapped_masks[f"{module}.{param}"] = value
                break
        else:
            plain[_drop_layer_segments(key)] = value

    for name, mask in wrapped_masks.items():
        if name not in plain:
            raise BadInput(
                f"checkpoint {path}: mask for {name!r} found but no such weight in the file"
            )
        weight = plain[name]
        if mask.shape != weight.shape:
            raise BadInput(
                f"checkpoint {path}: mask for {name!r} has shape {list(mask.shape)}, "
                f"weight has {list(weight.shape)}"
            )
        plain[name] = weight * mask.to(weight.dtype)

    if rename is None:
        return plain
    out: StateDict = {}
    for key, value in plain.items():
        try:
            new = rename(key)
        except ValueError as err:
            raise BadInput(f"checkpoint {path}: {err}") from None
        if new in out:
            raise BadInput(f"checkpoint {path}: two keys map onto {new!r}")
        out[new] = value
    return out


def _conv_classifier_to_linear(sd: StateDict, classifier: str, path: str) -> None:
    """STR ResNet50 stores its classifier as a bias-free 1x1 convolution: make it a Linear."""
    key = f"{classifier}.weight"
    w = sd.get(key)
    if w is None or w.dim() != 4:
        return
    if tuple(w.shape[2:]) != (1, 1):
        raise BadInput(
            f"checkpoint {path}: classifier {key} has shape {list(w.shape)}; only a 1x1 "
            "convolution can be read as a linear layer"
        )
    sd[key] = w.reshape(w.shape[0], w.shape[1])
    if f"{classifier}.bias" not in sd:
        sd[f"{classifier}.bias"] = torch.zeros(w.shape[0], dtype=w.dtype)
    log.info("%s: classifier stored as a 1x1 convolution, read as a Linear", path)


def prunable_weight_names(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Conv (4-D) and linear (2-D) ``.weight`` entries: for every registered architecture
    exactly the names ``trainables.models.masks.prunable_names`` yields, without building a model."""
    return [k for k, v in state_dict.items() if k.endswith(".weight") and v.dim() in (2, 4)]


# ---- architectures ---------------------------------------------------------------------------


def resolve_arch(name: str, source: str) -> str:
    """A registered architecture name for ``name`` (registered or a known reference alias).

    Args:
        name: the name as given.
        source: who gave it, for the error message (e.g. "file x.pt declares").
    """
    if name in models.ARCHITECTURES:
        return name
    if name in ARCH_ALIASES:
        return ARCH_ALIASES[name]
    if name in UNSUPPORTED_ARCHS:
        raise BadInput(f"{source} architecture {name!r}: {UNSUPPORTED_ARCHS[name]}")
    raise BadInput(
        f"{source} architecture {name!r}, which is not registered; known: "
        f"{', '.join(models.ARCHITECTURES.names())}; reference names understood: "
        f"{', '.join(f'{k}->{v}' for k, v in ARCH_ALIASES.items())}"
    )


@functools.lru_cache(maxsize=None)
def _arch_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an architecture's state dict, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = models.build_model(arch, 1)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _fit_problems(
    sd: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], classifier: str
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, shape mismatches) of ``sd`` against an architecture's shapes.

    The classifier may have any number of outputs, but its input width must fit. A missing
    BatchNorm ``num_batches_tracked`` counter is not a problem (older files lack it).
    """
    cls_prefix = f"{classifier}."
    missing = [
        k
        for k in expected
        if k not in sd and not k.startswith(cls_prefix) and not k.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in sd if k not in expected]
    mismatched = []
    for k, v in sd.items():
        if k not in expected:
            continue
        got, want = tuple(v.shape), expected[k]
        if k.startswith(cls_prefix):
            ok = len(got) == len(want) and got[1:] == want[1:]
        else:
            ok = got == want
        if not ok:
            mismatched.append(f"{k}: checkpoint {list(got)} vs model {list(want)}")
    return missing, unexpected, mismatched


def _raise_if_unfit(
    sd: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], arch: str, path: str
) -> None:
    missing, unexpected, mismatched = _fit_problems(sd, expected, models.classifier_name(arch))
    if not (missing or unexpected or mismatched):
        return

    def few(items: list[str]) -> str:
        shown = "; ".join(items[:5])
        return shown + (f"; ... {len(items) - 5} more" if len(items) > 5 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({few(unexpected)})")
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatches ({few(mismatched)})")
    raise BadInput(
        f"checkpoint {path} does not fit architecture {arch!r}: " + "; ".join(parts)
    )


def _infer_arch(sd: Mapping[str, torch.Tensor]) -> str | None:
    """The one registered architecture whose keys and shapes the state dict matches."""
    fits = [
        arch
        for arch in models.ARCHITECTURES.names()
        if not any(_fit_problems(sd, _arch_shapes(arch), models.classifier_name(arch)))
    ]
    return fits[0] if len(fits) == 1 else None


# ---- loading ---------------------------------------------------------------------------------


# What torch.load reads (the zip format of torch >= 1.6, or the legacy pickle whose first
# object is torch's magic number), and what other weight files begin with.
_TORCH_ZIP = b"PK\x03\x04"
_TORCH_LEGACY = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_OTHER_FILES = (
    (b"\x93NUMPY", "a NumPy array file (.npy)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras or TensorFlow .h5 weights?)"),
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
    (b"BZh", "bzip2-compressed; decompress it first"),
    (b"\xfd7zXZ\x00", "xz-compressed; decompress it first"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed; decompress it first"),
)
ACCEPTED_FILES = ("a file written by torch.save (zip or legacy format) holding tensors, in one "
                  "of the formats " + "{formats}" + ", or a .safetensors file")
# safetensors dtype names -> torch dtypes (https://github.com/huggingface/safetensors).
_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def _accepted() -> str:
    return ACCEPTED_FILES.format(formats=", ".join(FORMATS.names()))


def _sniff(path: Path, head: bytes, size: int) -> str | None:
    """What a file that torch cannot read is, from its first bytes; None if it may be a
    torch file. Why: random bytes read as a pickle whose first opcode is unknown, which torch
    reports as an unsafe file; a safetensors or NumPy file was called corrupt."""
    if size == 0:
        return "is empty (0 bytes)"
    if head.startswith(_TORCH_ZIP) or _TORCH_LEGACY[4:] in head:  # any pickle protocol
        return None
    if _is_safetensors(head, size):
        return "safetensors"
    for magic, what in _OTHER_FILES:
        if head.startswith(magic):
            return f"is {what}"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return ("is a plain Python pickle, not a file written by torch.save (no torch "
                "header); it was NOT executed (it was not unpickled: unpickling can run code). "
                "Save the weights with torch.save(model.state_dict(), path)")
    if head.startswith(b"PK"):
        return None  # another zip: let torch say what is missing in it
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"is a text file (it starts with {first!r}), not a checkpoint"
    return (f"is not a checkpoint: its first bytes ({head[:8].hex(' ')}) match no known file "
            "type (random or damaged data?)")


def _is_safetensors(head: bytes, size: int) -> bool:
    """8 bytes of header length (little-endian), then a JSON header."""
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _load_safetensors(path: Path) -> StateDict:
    """A ``.safetensors`` file as a state dict, read here: the format is a JSON header of
    names, dtypes, shapes and byte ranges, then the raw bytes, so no code can run."""
    bad = f"checkpoint {path} is a damaged safetensors file"
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise BadInput(f"{bad}: its header is not JSON ({e})") from None
        data = f.read()
    if not isinstance(header, dict):
        raise BadInput(f"{bad}: its header is not a mapping")
    header.pop("__metadata__", None)
    out: StateDict = {}
    for name, info in header.items():
        try:
            dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            start, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise BadInput(f"{bad}: tensor {name!r} has dtype {info.get('dtype')!r} or a "
                           "header entry this reader does not know (it reads "
                           f"{', '.join(_SAFETENSORS_DTYPES)})" if isinstance(info, dict) else
                           f"{bad}: tensor {name!r} has no header entry") from None
        numel = 1
        for d in shape:
            numel *= d
        if not 0 <= start <= end <= len(data) or end - start != numel * dtype.itemsize:
            raise BadInput(f"{bad}: tensor {name!r} ({info['dtype']} {shape}) does not fit "
                           f"bytes {start}-{end} of {len(data)} (truncated?)")
        out[name] = torch.frombuffer(bytearray(data[start:end]), dtype=dtype).reshape(shape) \
            if numel else torch.empty(shape, dtype=dtype)
    return out


def _torch_load(path: Path) -> Any:
    if not path.exists():
        raise MissingInput(f"checkpoint file {path} does not exist")
    if path.is_dir():
        raise BadInput(f"checkpoint path {path} is a directory, expected a file")
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(64)
        kind = _sniff(path, head, size)
        if kind == "safetensors":
            return _load_safetensors(path)
    except OSError as err:
        if machine_error(err):
            raise
        raise BadInput(f"checkpoint {path} cannot be read: {err.strerror or err}") from None
    if kind is not None:
        raise BadInput(f"checkpoint {path} {kind}. Accepted: {_accepted()}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol notices from old files
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            raise BadInput(
                f"checkpoint {path} was refused: it holds a pickled Python object "
                f"({found.group(1)}), and unpickling one could run code; it was NOT executed. "
                "Only tensors and plain containers are read: save a model's weights with "
                "torch.save(model.state_dict(), path), not the model object."
            ) from None
        if _TORCH_LEGACY[4:] in head and not head.startswith(_TORCH_LEGACY):
            raise BadInput(
                f"checkpoint {path} is a legacy-format torch file written with pickle protocol "
                f"{head[1]}, which torch's safe reader cannot read (it reads protocol 2, the "
                "legacy default); load it in a trusted session and save it again with "
                "torch.save(obj, path), which writes the current zip format") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|Check the|$)", str(err),
                           re.S)
        raise BadInput(
            f"checkpoint {path} is corrupt: torch's reader stopped at "
            f"{(detail.group(1) if detail else str(err).splitlines()[0]).strip()!r}. "
            f"Accepted: {_accepted()}") from None
    except Exception as err:  # truncated zip, EOF: torch raises many kinds
        if machine_error(err):
            raise  # EIO, a stale NFS handle: the machine's fault, not the file's; Tune retries
        raise BadInput(
            f"checkpoint {path} could not be read (truncated, corrupt or not a torch file): "
            f"{type(err).__name__}: {err}"
        ) from None


def detect_format(obj: Any, path: str = "<object>") -> str:
    """Name of the first ``FORMATS`` entry whose detector accepts ``obj``.

    Raises:
        ValueError: nothing matches; lists the object's top-level keys and what each known
            format expects.
    """
    for entry in FORMATS:
        if entry.meta["detect"](obj):
            return entry.name
    if isinstance(obj, Mapping):
        keys = [repr(k) for k in list(obj)[:8]]
        more = f" (+{len(obj) - 8} more)" if len(obj) > 8 else ""
        found = f"top-level keys {', '.join(keys) or '(none)'}{more}"
    else:
        found = f"a top-level {type(obj).__name__}, not a dict"
    known = "; ".join(f"{e.name}: {e.meta['expects']}" for e in FORMATS)
    raise BadInput(
        f"checkpoint {path} is in no known format: found {found}. Known formats, tried in "
        f"order: {known}"
    )


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
        FileNotFoundError: no such file.
        ValueError: unsafe, corrupt or unrecognised file; architectures disagree or do not
            fit the weights; sparsity differs from ``expect_sparsity``.
    """
    p = Path(path)
    # NaN fails every "differs by more than" test, so a NaN expectation always passed.
    if expect_sparsity is not None and not (
            isinstance(expect_sparsity, (int, float)) and 0 <= expect_sparsity <= 100):
        raise BadInput(f"checkpoint {p}: expected sparsity must be a percent in [0, 100], got "
                       f"{expect_sparsity}")
    obj = _torch_load(p)
    fmt = detect_format(obj, str(p))
    parsed: _Parsed = FORMATS.get(fmt).fn(obj)
    sd = _clean_state_dict(parsed.state_dict, str(p), parsed.rename)

    file_arch = resolve_arch(parsed.arch, f"file {p} declares") if parsed.arch else None
    caller_arch = resolve_arch(arch, "caller asked for") if arch else None
    if file_arch and caller_arch and file_arch != caller_arch:
        raise BadInput(
            f"checkpoint {p} declares architecture {parsed.arch!r} ({file_arch}) but the "
            f"caller asked for {arch!r} ({caller_arch})"
        )
    resolved = file_arch or caller_arch

    _conv_classifier_to_linear(sd, models.classifier_name(resolved) if resolved else "fc", str(p))
    if resolved:
        _raise_if_unfit(sd, _arch_shapes(resolved), resolved, str(p))
    else:
        resolved = _infer_arch(sd)
        if resolved:
            log.info("%s: architecture inferred from keys and shapes: %s", p, resolved)

    # NaN in a BatchNorm statistic does not even make the finetuning loss NaN (train-mode BN):
    # the trial would "finish" at chance accuracy. Refuse the file instead.
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise BadInput(
            f"checkpoint {p} holds NaN or infinite values in {len(bad)} tensor(s) "
            f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); expected finite weights"
        )

    # A ticket (torch.nn.utils.prune) counts over the layers it masks, as its authors do
    # (Chen et al. leave the classifier dense); any other file over every prunable weight.
    pruned = _pruned_layers(parsed.state_dict, parsed.rename)
    names = pruned or prunable_weight_names(sd)
    masks = masks_lib.masks_from_weights(sd, names)
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
        path=str(p),
        format=fmt,
        arch=resolved,
        state_dict=sd,
        masks=masks,
        sparsity=sparsity,
        layer_sparsity=per_layer,
        upstream_dataset=parsed.dataset,
    )


def build_backbone_model(ckpt: LoadedCheckpoint, num_classes: int | None = None) -> nn.Module:
    """A model of ``ckpt.arch`` carrying the checkpoint's weights (train mode, as built).

    Every non-classifier key is checked strictly. With ``num_classes`` equal to the stored
    classifier's width (or None), the classifier is loaded too; otherwise it is a fresh dense
    ``nn.Linear`` (``models.replace_classifier``) and only the backbone comes from the file.

    Raises:
        ValueError: unknown architecture, no class count to build with, or a key/shape
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
    target = model.state_dict()
    _raise_if_unfit(
        ckpt.state_dict, {k: tuple(v.shape) for k, v in target.items()}, ckpt.arch, ckpt.path
    )
    cls_prefix = f"{models.classifier_name(ckpt.arch)}."
    keep_classifier = stored == n
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


def save_reference_checkpoint(
    path: str | os.PathLike[str],
    state_dict_or_model: Mapping[str, torch.Tensor] | nn.Module,
    arch: str,
    dataset: str,
    wrapped: bool = False,
    module_prefix: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint in the reference format, atomically (``common.atomic``).

    Args:
        path: destination file; its folder is created if needed.
        state_dict_or_model: the weights.
        arch: ``model_config.arch`` (a registered name or a reference alias).
        dataset: ``model_config.dataset`` (``"imagenet"`` for upstream models).
        wrapped: store every conv/linear layer as the reference's pruning wrapper does:
            ``X._layer.weight`` (and ``X._layer.bias``), ``X._weight_mask`` = (weight != 0)
            and ``X._bias_mask`` = ones.
        module_prefix: prefix every key with ``module.`` (as DataParallel does).
        extra: more top-level entries (``epoch``, ``method``...), plain Python values only.
    """
    resolve_arch(arch, "save_reference_checkpoint got")
    if isinstance(state_dict_or_model, nn.Module):
        sd = dict(state_dict_or_model.state_dict())
        prunable = [n for n in masks_lib.prunable_names(state_dict_or_model) if n in sd]
    else:
        sd = dict(state_dict_or_model)
        prunable = prunable_weight_names(sd)
    sd = {k: v.detach().cpu().clone() for k, v in sd.items()}

    if wrapped:
        out: StateDict = {}
        modules = {n[: -len(".weight")] for n in prunable}
        for key, value in sd.items():
            module, _, param = key.rpartition(".")
            if module in modules and param in ("weight", "bias"):
                out[f"{module}._layer.{param}"] = value
                if param == "weight":
                    out[f"{module}._weight_mask"] = (value != 0).to(value.dtype)
                else:
                    out[f"{module}._bias_mask"] = torch.ones_like(value)
            else:
                out[key] = value
        sd = out
    if module_prefix:
        sd = {f"module.{k}": v for k, v in sd.items()}

    payload: dict[str, Any] = {
        "model_config": {"arch": arch, "dataset": dataset},
        "model_state_dict": sd,
    }
    for key, value in (extra or {}).items():
        if key in payload:
            raise ValueError(f"extra entry {key!r} would overwrite the checkpoint's own {key}")
        payload[key] = value

    # Through a Python file object: a full disk is then an OSError(ENOSPC), where
    # torch.save(path) says only "RuntimeError: unexpected pos 64 vs 0".
    dest = Path(path)
    with atomic_path(dest, label=f"checkpoint {dest}") as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)


MASKS_ONLY = "lth_ticket masks"  # the format of a ticket of masks alone (load_mask_source)


def ticket_holds_weights(path: str | os.PathLike[str]) -> bool:
    """Whether a file given as LTH-T's ticket holds weights, so that LTH-T uses it as it is.

    False only for a ticket of masks alone (``X.weight_mask`` and no ``X.weight_orig`` or
    ``X.weight`` for any of them), whose masks go on the study's dense weights; any other
    checkpoint is its own weights.
    """
    inner = _inner_state_dict(_torch_load(Path(path))) or {}
    keys = {_strip_module(k) for k in inner if isinstance(k, str)}
    masked = [k[: -len(_PRUNE_MASK)] for k in keys if k.endswith(_PRUNE_MASK)]
    return not masked or any(f"{m}{_PRUNE_ORIG}" in keys or f"{m}.weight" in keys
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
    p = Path(path)
    obj = _torch_load(p)
    inner = _inner_state_dict(obj)
    entries = {_strip_module(k): v for k, v in (inner or {}).items() if isinstance(k, str)}
    masks_raw = {k[: -len(_PRUNE_MASK)] + ".weight": v for k, v in entries.items()
                 if k.endswith(_PRUNE_MASK) and isinstance(v, torch.Tensor)}
    if not masks_raw:
        return load_checkpoint(p, arch=arch, expect_sparsity=expect_sparsity)
    # A ticket in another layout's names (the reference's MobileNet 'model.N', AMC's...) is
    # renamed as a checkpoint of that layout would be.
    rename = FORMATS.get(detect_format(masks_raw, str(p))).fn(masks_raw).rename
    if rename is not None:
        masks_raw = {rename(k): v for k, v in masks_raw.items()}
    resolved = resolve_arch(arch, "caller asked for") if arch else None
    if resolved:
        shapes = _arch_shapes(resolved)
        bad = [f"{k}: {list(v.shape)}" + (f" vs model {list(shapes[k])}" if k in shapes else
                                          " (no such layer)")
               for k, v in masks_raw.items() if shapes.get(k) != tuple(v.shape)]
        if bad:
            raise BadInput(f"ticket {p} does not fit architecture {resolved!r}: "
                           f"{'; '.join(bad[:5])}")
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
        upstream_dataset=_config_dataset(obj),
    )


def per_layer_filters_pruned(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, int]]:
    """``{conv weight name: (fully zero filters, filters)}``; a filter is one output channel
    ``weight[o]`` of a 4-D convolution weight."""
    out = {}
    for name, w in state_dict.items():
        if name.endswith(".weight") and w.dim() == 4:
            zero = int((w.reshape(w.shape[0], -1) == 0).all(dim=1).sum())
            out[name] = (zero, int(w.shape[0]))
    return out


def filters_pruned_share(state_dict: Mapping[str, torch.Tensor]) -> float:
    """Fraction in [0, 1] of all convolution filters that are entirely zero (paper App. E)."""
    counts = per_layer_filters_pruned(state_dict).values()
    total = sum(t for _, t in counts)
    return sum(z for z, _ in counts) / total if total else 0.0


def file_sha256(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (checkpoints can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- command line ----------------------------------------------------------------------------


def describe(ckpt: LoadedCheckpoint) -> dict[str, Any]:
    """A JSON-ready summary of a loaded checkpoint (what the CLI prints)."""
    filters = per_layer_filters_pruned(ckpt.state_dict)
    layers = []
    for name in ckpt.masks:
        w = ckpt.state_dict[name]
        row: dict[str, Any] = {
            "name": name,
            "shape": list(w.shape),
            "params": w.numel(),
            "sparsity": round(ckpt.layer_sparsity[name], 4),
        }
        if name in filters:
            row["filters_pruned"], row["filters"] = filters[name]
        layers.append(row)
    return {
        "path": ckpt.path,
        "sha256": file_sha256(ckpt.path),
        "format": ckpt.format,
        "arch": ckpt.arch,
        "upstream_dataset": ckpt.upstream_dataset,
        "num_classes": ckpt.num_classes,
        "global_sparsity": round(ckpt.sparsity, 4),
        "filters_fully_pruned": round(100.0 * filters_pruned_share(ckpt.state_dict), 4),
        "carries_weights": ckpt.format != MASKS_ONLY,
        # what LTH-T takes from the file when a study gives it as a ticket (``tickets:``)
        "as_lth_ticket": "its masks on the study's dense weights (it holds no weights)"
        if ckpt.format == MASKS_ONLY else "the file as it is: its own weights under its own "
        "masks, BatchNorm, biases and every other tensor from it",
        "layers": layers,
    }


def _table(info: Mapping[str, Any]) -> str:
    lines = [
        f"file:                 {info['path']}",
        f"sha256:               {info['sha256']}",
        f"format:               {info['format']}",
        f"architecture:         {info['arch'] or 'unknown (pass --arch)'}",
        f"upstream dataset:     {info['upstream_dataset'] or 'not stated'}",
        f"classes:              {info['num_classes']}",
        f"global sparsity:      {info['global_sparsity']:.2f} % (over the layers below)",
        f"filters fully pruned: {info['filters_fully_pruned']:.2f} %",
        f"carries weights:      {'yes' if info['carries_weights'] else 'no, masks only'}",
        f"as LTH-T's ticket:    {info['as_lth_ticket']}",
        "",
    ]
    rows = [
        (
            r["name"],
            "x".join(map(str, r["shape"])),
            str(r["params"]),
            f"{r['sparsity']:.2f}",
            f"{r['filters_pruned']}/{r['filters']}" if "filters" in r else "-",
        )
        for r in info["layers"]
    ]
    header = ("layer", "shape", "params", "sparsity %", "zero filters")
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    for i, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m trainables.checkpoints``: print what a checkpoint holds. Returns the exit
    code (2 on any error, with the message on stderr)."""
    parser = argparse.ArgumentParser(
        prog="python -m trainables.checkpoints",
        description="Recognise a checkpoint's format (safely: weights-only unpickling),\n"
        "normalise it and report architecture, upstream dataset, global and per-layer\n"
        "sparsity and the share of fully pruned convolution filters.\n"
        f"Formats, tried in order: {', '.join(FORMATS.names())}.",
        epilog="example:\n  python -m trainables.checkpoints runs/paper/zoo/gmp-90.pt "
        "--expect-sparsity 90\n  python -m trainables.checkpoints resnet50.pth --arch resnet50 "
        "--json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="checkpoint file to inspect")
    parser.add_argument(
        "--arch",
        help="architecture, when the file does not name it "
        f"({', '.join(models.ARCHITECTURES.names())})",
    )
    parser.add_argument(
        "--expect-sparsity",
        type=float,
        metavar="PERCENT",
        help=f"fail unless measured global sparsity is within {SPARSITY_TOLERANCE:g} point",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        # A ticket of masks alone is shown as load_mask_source reads it (its masks as the
        # weights, sparsity over its layers); any other file as load_checkpoint does.
        load = load_checkpoint if ticket_holds_weights(args.file) else load_mask_source
        ckpt = load(args.file, arch=args.arch, expect_sparsity=args.expect_sparsity)
        info = describe(ckpt)
    except (ValueError, OSError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(json.dumps(info) if args.json else _table(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
