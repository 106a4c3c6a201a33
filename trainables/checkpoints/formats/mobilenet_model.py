"""``mobilenet_model``: MobileNetV1 under ``model.N``, the layout of the reference's own
MobileNet (the paper's dense, GMP, M-FAC and AC/DC MobileNets) and of STR's MobileNet (its
classifier a 1x1 convolution); recognised by its key names, whatever the container."""

from __future__ import annotations

from typing import Any

from trainables.checkpoints.formats.base import (
    REFERENCE_MOBILENET_PREFIX,
    Parsed,
    config_dataset,
    format_entry,
    inner_state_dict,
    prefix_renamer,
    stripped_keys,
)


def detect(obj: Any) -> bool:
    keys = stripped_keys(obj)
    return "model.0.0.weight" in keys and "model.13.3.weight" in keys


def load(obj: Any) -> Parsed:
    return Parsed(
        state_dict=inner_state_dict(obj) or {},
        arch="mobilenet_v1",
        dataset=config_dataset(obj),
        rename=prefix_renamer(*REFERENCE_MOBILENET_PREFIX),
    )


ENTRY = format_entry(
    "mobilenet_model", load, detect=detect,
    expects="MobileNetV1 weights under 'model.' (model.0.0.weight ... model.13.3.weight, fc), "
    "bare or in model_state_dict/state_dict",
    description="MobileNetV1 in the reference's layout (Distiller's MobileNet: dense, GMP, "
    "M-FAC, AC/DC, layers possibly wrapped with masks) or STR's (the same names, classifier a "
    "bias-free 1x1 convolution, soft thresholds 'sparseThreshold' possibly still beside the "
    "weights). 'model.N' becomes 'features.N' of mobilenet_v1 (same indices).",
)
