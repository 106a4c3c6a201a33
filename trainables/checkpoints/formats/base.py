"""What a checkpoint format reads out of a file, and the key conventions formats share.

A format's loader returns a ``Parsed``: the raw weights mapping, and what the file says of
its architecture and upstream dataset, with a rename into torchvision-style names where its
keys differ. The helpers below see through the containers (``model_state_dict``,
``state_dict``), DataParallel's ``module.`` prefix and the reference's ``_layer`` wrappers,
so every format and the shared cleaning read keys the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from trainables.registry import Entry

StateDict = dict[str, torch.Tensor]

# torch.nn.utils.prune keeps a pruned weight as X.weight_orig and its mask as X.weight_mask.
PRUNE_ORIG, PRUNE_MASK = ".weight_orig", ".weight_mask"
# The reference's MobileNet nests its layers under ``model.`` where ``mobilenet_v1`` uses
# ``features.`` with the same indices.
REFERENCE_MOBILENET_PREFIX = ("model.", "features.")


@dataclass(frozen=True)
class Parsed:
    """What a format loader extracts before the shared cleaning."""

    state_dict: Mapping[str, Any]
    arch: str | None = None
    dataset: str | None = None
    rename: Callable[[str], str] | None = None


def format_entry(name: str, load: Callable[[Any], Parsed], *, detect: Callable[[Any], bool],
                 expects: str, description: str) -> Entry[Callable[[Any], Parsed]]:
    """The ``FORMATS`` entry of one format: its loader, the rule that recognises a file's
    object, what it expects (named when nothing matches) and a description."""
    return Entry(name=name, fn=load,
                 meta={"detect": detect, "expects": expects, "description": description})


def inner_state_dict(obj: Any) -> Mapping[str, Any] | None:
    """The weights mapping of any known container, or the object itself if it is one."""
    if not isinstance(obj, Mapping):
        return None
    for key in ("model_state_dict", "state_dict"):
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            return inner
    return obj


def is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def config_dataset(obj: Any) -> str | None:
    """The upstream dataset a reference-style ``model_config`` names, if any."""
    config = obj.get("model_config") if isinstance(obj, Mapping) else None
    return str_or_none(config.get("dataset")) if isinstance(config, Mapping) else None


def prefix_renamer(old: str, new: str) -> Callable[[str], str]:
    def rename(key: str) -> str:
        return new + key[len(old) :] if key.startswith(old) else key

    return rename


def strip_module(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module.") :]
    return key


def drop_layer_segments(key: str) -> str:
    return ".".join(part for part in key.split(".") if part != "_layer")


def stripped_keys(obj: Any) -> set[str]:
    """The container's keys without ``module.`` prefixes and ``_layer`` wrapper segments."""
    inner = inner_state_dict(obj)
    if inner is None:
        return set()
    return {drop_layer_segments(strip_module(k)) for k in inner if isinstance(k, str)}
