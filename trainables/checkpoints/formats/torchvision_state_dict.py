"""``torchvision``: a plain ``{name: tensor}`` state dict with torchvision layer names, as
``torch.save(model.state_dict(), path)`` writes it."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from trainables.checkpoints.formats.base import Parsed, format_entry, is_tensor_dict


def load(obj: Mapping[str, torch.Tensor]) -> Parsed:
    return Parsed(state_dict=obj)


ENTRY = format_entry(
    "torchvision", load, detect=is_tensor_dict,
    expects="a plain non-empty {name: tensor} state dict with torchvision layer names",
    description="A bare state dict (torch.save(model.state_dict())); the architecture comes "
    "from the caller or is inferred from the key names and shapes.",
)
