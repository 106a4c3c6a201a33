"""Checkpoint formats by name, one module each, tried in this order; the first match wins.

The first four are recognised by their key names, whatever container holds them, because
their names, not their container, decide how they must be read:

1. ``rigl_tf_port``: RigL's ResNet50 as the reference's PyTorch port of TensorFlow names it.
2. ``mobilenet_model``: MobileNetV1 under ``model.N`` (the reference's and STR's layout).
3. ``mobilenet_amc``: MobileNetV1 as AMC names it.
4. ``lth_ticket``: torch.nn.utils.prune layers, as the LTH-T tickets of Chen et al.
5. ``reference``: ``model_config`` + ``model_state_dict`` (IST-DASLab/sparse-imagenet-transfer).
6. ``sparseml``: a dict with a ``state_dict`` entry.
7. ``torchvision``: a plain ``{name: tensor}`` state dict.

Each module declares its ``ENTRY`` (a ``detect`` rule, what it ``expects``, a description);
this package collects them into ``FORMATS``, so no format module imports its registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from common.errors import BadInput
from trainables.checkpoints.formats import (
    lth_ticket,
    mobilenet_amc,
    mobilenet_model,
    reference,
    rigl_tf_port,
    sparseml,
    torchvision_state_dict,
)
from trainables.checkpoints.formats.base import Parsed
from trainables.registry import Registry

FORMATS: Registry[Callable[[Any], Parsed]] = Registry.from_entries(
    "checkpoint format",
    (module.ENTRY for module in (rigl_tf_port, mobilenet_model, mobilenet_amc, lth_ticket,
                                 reference, sparseml, torchvision_state_dict)),
)


def detect_format(obj: Any, path: str = "<object>") -> str:
    """Name of the first ``FORMATS`` entry whose detector accepts ``obj``.

    Raises:
        BadInput: nothing matches; lists the object's top-level keys and what each known
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


def parse(obj: Any, path: str = "<object>") -> tuple[str, Parsed]:
    """The format that recognises ``obj`` and what its loader reads out of it."""
    name = detect_format(obj, path)
    return name, FORMATS.get(name).fn(obj)


__all__ = ["FORMATS", "Parsed", "detect_format", "parse"]
