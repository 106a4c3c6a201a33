"""``reference``: the checkpoints of IST-DASLab/sparse-imagenet-transfer and this project's
upstream zoo, a dict with ``model_config`` = {``arch``, ``dataset``} and
``model_state_dict``."""

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
    return (
        isinstance(obj, Mapping)
        and isinstance(obj.get("model_config"), Mapping)
        and isinstance(obj.get("model_state_dict"), Mapping)
    )


def load(obj: Mapping[str, Any]) -> Parsed:
    config = obj["model_config"]
    arch = str_or_none(config.get("arch"))
    rename = prefix_renamer(*REFERENCE_MOBILENET_PREFIX) if arch == "mobilenet" else None
    return Parsed(
        state_dict=obj["model_state_dict"],
        arch=arch,
        dataset=str_or_none(config.get("dataset")),
        rename=rename,
    )


ENTRY = format_entry(
    "reference", load, detect=detect,
    expects="a dict with 'model_config' = {'arch', 'dataset'} and 'model_state_dict'",
    description="The reference study's checkpoints (IST-DASLab/sparse-imagenet-transfer), and "
    "this project's upstream zoo; layers may be wrapped (X._layer.weight + X._weight_mask).",
)
