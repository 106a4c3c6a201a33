"""``mobilenet_amc``: MobileNetV1 as AMC names it (``conv1``, ``features.I``,
``classifier.0``), the layout of the reference's AMC MobileNet; recognised by its key names,
whatever the container."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from common.errors import BadInput
from trainables.checkpoints.formats.base import (
    Parsed,
    config_dataset,
    format_entry,
    inner_state_dict,
    stripped_keys,
)

_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^conv1\.(\d)\.(.+)$"), lambda m: f"features.0.{m[1]}.{m[2]}"),
    (re.compile(r"^features\.(\d+)\.(.+)$"), lambda m: f"features.{int(m[1]) + 1}.{m[2]}"),
    (re.compile(r"^classifier\.0\.(weight|bias)$"), lambda m: f"fc.{m[1]}"),
]


def rename(key: str) -> str:
    """The ``mobilenet_v1`` name of an AMC key."""
    for pattern, repl in _RULES:
        match = pattern.match(key)
        if match:
            return repl(match)
    raise BadInput(f"AMC MobileNet key {key!r} has no mobilenet_v1 counterpart")


def detect(obj: Any) -> bool:
    keys = stripped_keys(obj)
    return {"conv1.0.weight", "features.0.0.weight", "classifier.0.weight"} <= keys


def load(obj: Any) -> Parsed:
    return Parsed(
        state_dict=inner_state_dict(obj) or {},
        arch="mobilenet_v1",
        dataset=config_dataset(obj),
        rename=rename,
    )


ENTRY = format_entry(
    "mobilenet_amc", load, detect=detect,
    expects="MobileNetV1 weights named like AMC's (conv1.0.weight, features.I.J.weight, "
    "classifier.0.weight), bare or in model_state_dict/state_dict",
    description="MobileNetV1 as AMC (He et al. 2018) names it: conv1 -> features.0, "
    "features.I -> features.I+1, classifier.0 -> fc. Read at the full widths, as the "
    "reference builds it; a channel-pruned file of other widths is refused by the shape check.",
)
