"""``sparseml``: SparseML-style training checkpoints, a dict with a ``state_dict`` entry
(and optionally ``epoch``, ``arch_key``, ``optimizer``...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainables.checkpoints.formats.base import (
    REFERENCE_MOBILENET_PREFIX,
    Parsed,
    format_entry,
    prefix_renamer,
    str_or_none,
)


def detect(obj: Any) -> bool:
    return isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping)


def load(obj: Mapping[str, Any]) -> Parsed:
    arch = str_or_none(obj.get("arch_key"))
    rename = prefix_renamer(*REFERENCE_MOBILENET_PREFIX) if arch == "mobilenet" else None
    return Parsed(
        state_dict=obj["state_dict"],
        arch=arch,
        dataset=str_or_none(obj.get("dataset")),
        rename=rename,
    )


ENTRY = format_entry(
    "sparseml", load, detect=detect,
    expects="a dict with a 'state_dict' entry (optionally 'epoch', 'arch_key', 'optimizer')",
    description="SparseML-style training checkpoints; 'arch_key' is used as the architecture. "
    "SparseML's own model classes name layers differently from torchvision and are refused "
    "by the architecture check.",
)
