"""``lth_ticket``: layers pruned with torch.nn.utils.prune (``X.weight_orig`` and
``X.weight_mask``), as the LTH-T tickets of Chen et al. are saved. The file is read as it is:
its own weights under its masks; a ticket of masks alone holds no weights and is read as a
mask source instead (``mask_sources.load_mask_source``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainables.checkpoints.formats.base import (
    PRUNE_MASK,
    PRUNE_ORIG,
    Parsed,
    config_dataset,
    format_entry,
    inner_state_dict,
    str_or_none,
    stripped_keys,
)


def detect(obj: Any) -> bool:
    return any(k.endswith((PRUNE_ORIG, PRUNE_MASK)) for k in stripped_keys(obj))


def load(obj: Any) -> Parsed:
    config = obj.get("model_config") if isinstance(obj, Mapping) else None
    arch = str_or_none(config.get("arch")) if isinstance(config, Mapping) else None
    return Parsed(state_dict=inner_state_dict(obj) or {}, arch=arch,
                  dataset=config_dataset(obj))


ENTRY = format_entry(
    "lth_ticket", load, detect=detect,
    expects="weights pruned with torch.nn.utils.prune (X.weight_orig + X.weight_mask), or a "
    "ticket's masks alone (X.weight_mask), bare or in model_state_dict/state_dict",
    description="The lottery tickets of Chen et al. (CVPR 2021), which the reference "
    "transferred as LTH-T as they are: X.weight = X.weight_orig * X.weight_mask, every other "
    "tensor from the file; masks and sparsity over the layers it masks (its authors' count). "
    "A file of masks alone is a mask source only (load_mask_source): LTH-T puts its mask on "
    "the study's dense weights.",
)
