"""Names the reports recognise: the paper's datasets, their groups, and the lottery-ticket method.

Method and dataset names in a results table are free text (``"CIFAR-10"``, ``"cifar10"``,
``"Oxford Flowers 102"``), so they are matched on a key that ignores case, spaces and
punctuation. Names are never rewritten in the tables; the key only finds a dataset's group.
"""

from __future__ import annotations

import re

GENERAL = "general"
SPECIALIZED = "specialized"
UNKNOWN = "unknown"
GROUPS = (GENERAL, SPECIALIZED)

# Paper Table 2: the 12 downstream datasets, with common spellings (as keys, see `name_key`).
_DATASET_ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sun397": (GENERAL, ("sun", "sun397dataset")),
    "caltech101": (GENERAL, ("caltech101dataset",)),
    "caltech256": (GENERAL, ()),
    "cifar10": (GENERAL, ()),
    "cifar100": (GENERAL, ()),
    "dtd": (GENERAL, ("describabletextures", "describabletexturesdataset", "textures")),
    "aircraft": (SPECIALIZED, ("fgvcaircraft", "fgvcaircraft2013b", "aircrafts")),
    "birdsnap": (SPECIALIZED, ("birds",)),
    "cars": (SPECIALIZED, ("stanfordcars", "cars196", "stanfordcars196")),
    "flowers": (
        SPECIALIZED,
        ("flowers102", "oxfordflowers", "oxfordflowers102", "oxford102flowers", "oxford102"),
    ),
    "food101": (SPECIALIZED, ("food", "food101dataset")),
    "pets": (
        SPECIALIZED,
        ("oxfordpets", "oxfordiiitpets", "oxfordiiitpet", "oxfordiiit", "pet", "iiitpets"),
    ),
}

_CANONICAL: dict[str, str] = {}
for _name, (_group, _aliases) in _DATASET_ALIASES.items():
    for _alias in (_name, *_aliases):
        _CANONICAL[_alias] = _name


def name_key(name: object) -> str:
    """Lower-case letters and digits of ``name``: ``"CIFAR-10"`` gives ``"cifar10"``."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def canonical_dataset(name: object) -> str | None:
    """The paper's key of a dataset (``"flowers"`` for ``"Oxford Flowers 102"``), or None."""
    return _CANONICAL.get(name_key(name))


def dataset_group(name: object) -> str:
    """``"general"`` or ``"specialized"`` as in the paper, ``"unknown"`` for other datasets."""
    key = canonical_dataset(name)
    return _DATASET_ALIASES[key][0] if key is not None else UNKNOWN


def normalise_group(value: object) -> str | None:
    """A ``group`` cell as ``"general"``/``"specialized"``, or None when empty or unrecognised."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    key = name_key(value)
    if key in ("general", "generic"):
        return GENERAL
    if key in ("specialized", "specialised", "special"):
        return SPECIALIZED
    return None


def is_lottery_ticket(method: object) -> bool:
    """True for LTH-T style methods (``"LTH-T"``, ``"lth_t (GMP mask)"``, ``"Lottery ticket"``).

    The paper leaves LTH-T out of its linear-finetuning analysis (it is designed for full
    finetuning and transfers poorly with a frozen backbone), so the reports need to spot it.
    """
    key = name_key(method)
    return key.startswith("lth") or "lottery" in key


def dataset_sort_key(name: object) -> tuple[str, str]:
    """Alphabetical by the name's key, as the paper orders its tables."""
    return (name_key(name), str(name))
