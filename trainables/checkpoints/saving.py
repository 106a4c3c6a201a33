"""Writing a checkpoint in the reference's format, the one the upstream zoo is kept in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from common import storage
from trainables.checkpoints.cleaning import prunable_weight_names
from trainables.checkpoints.fitting import resolve_arch
from trainables.checkpoints.formats.base import StateDict
from trainables.models import masks as masks_lib


def save_reference_checkpoint(
    path: str | os.PathLike[str],
    state_dict_or_model: Mapping[str, torch.Tensor] | nn.Module,
    arch: str,
    dataset: str,
    wrapped: bool = False,
    module_prefix: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint in the reference format, atomically (``common.storage.publish``).

    Args:
        path: destination file (its folder is created if needed), or a storage URI.
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
        sd = _wrapped(sd, prunable)
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
    # torch.save(path) says only "RuntimeError: unexpected pos 64 vs 0". A storage URI (the
    # zoo under --storage) is uploaded whole once written.
    label = f"checkpoint {storage.masked(path)}"
    with storage.publish(path, label=label) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)


def _wrapped(sd: StateDict, prunable: list[str]) -> StateDict:
    """Every prunable layer as the reference's pruning wrapper stores it."""
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
    return out
