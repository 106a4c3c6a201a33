"""``rigl_tf_port``: RigL's ResNet50 as the reference's PyTorch port of the TensorFlow model
names it (``initial_conv.conv.weight``, ``layer1.block.0.shortcut.conv.weight``...), bare or
in a reference/SparseML container; recognised by its key names, whatever the container."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from common.errors import BadInput
from trainables.checkpoints.formats.base import (
    Parsed,
    format_entry,
    inner_state_dict,
    str_or_none,
    strip_module,
)

log = logging.getLogger(__name__)

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^initial_conv\.conv\.(.+)$"), r"conv1.\1"),
    (re.compile(r"^initial_conv\.bn\.(.+)$"), r"bn1.\1"),
    (re.compile(r"^(layer\d)\.block\.(\d+)\.conv(\d)\.conv\.(.+)$"), r"\1.\2.conv\3.\4"),
    (re.compile(r"^(layer\d)\.block\.(\d+)\.conv(\d)\.bn\.(.+)$"), r"\1.\2.bn\3.\4"),
    (re.compile(r"^(layer\d)\.block\.(\d+)\.shortcut\.conv\.(.+)$"), r"\1.\2.downsample.0.\3"),
    (re.compile(r"^(layer\d)\.block\.(\d+)\.shortcut\.bn\.(.+)$"), r"\1.\2.downsample.1.\3"),
    (re.compile(r"^(fc\.(?:weight|bias))$"), r"\1"),
]


def rename(key: str) -> str:
    """The torchvision ResNet50 name of a TF-port key."""
    for pattern, repl in _RULES:
        if pattern.match(key):
            return pattern.sub(repl, key)
    raise BadInput(f"RigL TF-port key {key!r} has no torchvision ResNet50 counterpart")


def detect(obj: Any) -> bool:
    inner = inner_state_dict(obj)
    return inner is not None and any(
        isinstance(k, str) and strip_module(k).startswith("initial_conv.") for k in inner
    )


def load(obj: Any) -> Parsed:
    config = obj.get("model_config") if isinstance(obj, Mapping) else None
    config = config if isinstance(config, Mapping) else {}
    log.warning(
        "RigL TF-port weights are loaded into torchvision's resnet50; its stem max-pool is "
        "aligned differently from the TF original, so features differ slightly"
    )
    return Parsed(
        state_dict=inner_state_dict(obj) or {},
        arch="resnet50",
        dataset=str_or_none(config.get("dataset")),
        rename=rename,
    )


ENTRY = format_entry(
    "rigl_tf_port", load, detect=detect,
    expects="weights named like the reference's ResnetTF port (initial_conv.conv.weight, "
    "layerN.block.I.convK.conv.weight, ...), bare or in model_state_dict/state_dict",
    description="RigL ResNet50 ported from TensorFlow. Keys map one-to-one onto torchvision's "
    "resnet50 (initial_conv->conv1/bn1, block.I.convK.{conv,bn}->I.{convK,bnK}, "
    "shortcut->downsample). Caveat: the port's stem max-pool pads like TF 'SAME' (one pixel "
    "right/bottom) where torchvision pads one pixel each side, so features computed by "
    "torchvision's resnet50 differ slightly from the reference's ResnetTF.",
)
