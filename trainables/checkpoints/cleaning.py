"""The cleaning every format goes through: what a file holds becomes torchvision-style names
with the pruning masks multiplied in.

- A leading ``module.`` (DataParallel) is dropped.
- Wrapped pruned layers (``X._layer.weight`` with a ``X._weight_mask`` buffer, and
  ``X._bias_mask`` for a bias) become ``X.weight = weight * mask``.
- Layers of torch.nn.utils.prune become ``X.weight = X.weight_orig * X.weight_mask``.
- STR's learned thresholds (``X.sparseThreshold``, in files not yet converted) are applied as
  STR does, sign(w) * relu(|w| - sigmoid(s)).
- A classifier stored as a 1x1 convolution (STR's ResNet50 and MobileNet) becomes a Linear
  weight, with a zero bias since that convolution has none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch

from common.errors import BadInput
from trainables.checkpoints.formats.base import (
    PRUNE_MASK,
    PRUNE_ORIG,
    StateDict,
    drop_layer_segments,
    strip_module,
)

log = logging.getLogger(__name__)


def clean_state_dict(
    raw: Mapping[str, Any], path: str, rename: Callable[[str], str] | None
) -> StateDict:
    """Drop ``module.``, unwrap masked layers (weight * mask), apply a format's renames."""
    tensors = _tensors(raw, path)
    tensors = _apply_prune_masks(tensors, path)
    tensors = _apply_soft_thresholds(tensors, path)
    plain = _unwrap_layers(tensors, path)
    return plain if rename is None else _renamed(plain, rename, path)


def _tensors(raw: Mapping[str, Any], path: str) -> StateDict:
    """The file's entries without ``module.``, sparse tensors made dense (the same values);
    anything but a named tensor is refused, and so are integer or quantized weights."""
    tensors: StateDict = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise BadInput(
                f"checkpoint {path}: state dict entry {key!r} is a {type(value).__name__}, "
                "expected a tensor"
            )
        if value.layout != torch.strided:  # sparse COO/CSR: a sparse model saved as such
            value = value.to_dense()
        tensors[strip_module(key)] = value
    _refuse_integer_weights(tensors, path)
    return tensors


def _refuse_integer_weights(tensors: StateDict, path: str) -> None:
    """Weights stored as integers (an int8-quantized model) would be read as if they were
    floats: their zero points counted as pruned weights ("99.98 % sparse") and finetuned
    as nonsense. Masks and counters (``*_mask``, ``num_batches_tracked``) may be integers."""
    bad = [(k, v.dtype) for k, v in tensors.items()
           if k.endswith(("weight", "weight_orig")) and not v.is_floating_point()]
    if bad:
        shown = ", ".join(f"{k} ({str(d).replace('torch.', '')})" for k, d in bad[:3])
        raise BadInput(
            f"checkpoint {path} holds integer or quantized weights in {len(bad)} tensor(s) "
            f"({shown}{', ...' if len(bad) > 3 else ''}): a quantized model, which this study "
            "cannot finetune or measure; give the float checkpoint it was quantized from")


def _apply_prune_masks(tensors: StateDict, path: str) -> StateDict:
    """torch.nn.utils.prune's ``X.weight_orig`` + ``X.weight_mask`` become ``X.weight``."""
    if not any(k.endswith(PRUNE_MASK) for k in tensors):
        return tensors
    out = {k: v for k, v in tensors.items() if not k.endswith((PRUNE_ORIG, PRUNE_MASK))}
    for key, mask in tensors.items():
        if not key.endswith(PRUNE_MASK):
            continue
        name = key[: -len(PRUNE_MASK)] + ".weight"
        orig = tensors.get(key[: -len(PRUNE_MASK)] + PRUNE_ORIG, tensors.get(name))
        if orig is None:
            raise BadInput(
                f"checkpoint {path} holds the mask {key!r} but no weights for it: a ticket of "
                "masks alone is a mask source (give it as LTH-T's 'tickets'), not a backbone")
        if orig.shape != mask.shape:
            raise BadInput(f"checkpoint {path}: mask {key!r} has shape {list(mask.shape)}, its "
                           f"weight {list(orig.shape)}")
        out[name] = orig * mask.to(orig.dtype)
    return out


def pruned_layers(raw: Mapping[str, Any], rename: Callable[[str], str] | None) -> list[str]:
    """The weights a torch.nn.utils.prune file masks (``X.weight_mask``), by clean names."""
    names = [drop_layer_segments(strip_module(k)[: -len(PRUNE_MASK)]) + ".weight"
             for k in raw if isinstance(k, str) and k.endswith(PRUNE_MASK)]
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


def _unwrap_layers(tensors: StateDict, path: str) -> StateDict:
    """The reference's wrapped layers (``X._layer.weight`` + ``X._weight_mask``, and
    ``X._bias_mask``) become plain ``X.weight`` / ``X.bias`` with their masks multiplied in."""
    wrapped_masks: dict[str, torch.Tensor] = {}
    plain: StateDict = {}
    for key, value in tensors.items():
        for suffix, param in (("._weight_mask", "weight"), ("._bias_mask", "bias")):
            if key.endswith(suffix):
                module = drop_layer_segments(key[: -len(suffix)])
                wrapped_masks[f"{module}.{param}"] = value
                break
        else:
            plain[drop_layer_segments(key)] = value

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
    return plain


def _renamed(plain: StateDict, rename: Callable[[str], str], path: str) -> StateDict:
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


def conv_classifier_to_linear(sd: StateDict, classifier: str, path: str) -> None:
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
    exactly the names ``trainables.models.masks.prunable_names`` yields, without a model."""
    return [k for k, v in state_dict.items() if k.endswith(".weight") and v.dim() in (2, 4)]
