"""Names the reports recognise: the paper's datasets and groups, method labels, LTH-T.

Method and dataset names in a results table are free text (``"CIFAR-10"``, ``"cifar10"``,
``"Oxford Flowers 102"``), so they are matched on a key that ignores case, spaces and
punctuation. Names are never rewritten in the tables' data columns; the key finds a dataset's
group and a method's label (what a reader of the paper calls it: ``acdc`` is "AC/DC").
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

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


# The paper's methods by key (see `name_key`), as the paper and the study files label them. A
# study's own labels (its ``label:`` per method, a ``method_label`` column) take precedence.
_METHOD_LABELS: dict[str, str] = {
    "dense": "Dense",
    "gmp": "GMP",
    "woodfisher": "WoodFisher",
    "wf": "WoodFisher",
    "acdc": "AC/DC",
    "str": "STR",
    "riglerk1x": "RigL ERK 1x",
    "riglerk5x": "RigL ERK 5x",
    "ltht": "LTH-T",
    "lth": "LTH-T",
    "mfac": "M-FAC",
    "amc": "AMC",
    # random-weight speed references (trainables.speed: ``random_<profile>``)
    "randomuniform": "Random, uniform per layer",
    "randomglobal": "Random, global magnitude",
}
# What separates the methods of a joined list (Table 1's ``best_methods``); never in a label.
LIST_SEPARATOR = "; "


def default_method_label(method: object) -> str:
    """The paper's label of a method key (``"rigl_erk5x"`` gives ``"RigL ERK 5x"``), else itself."""
    return _METHOD_LABELS.get(name_key(method), str(method))


def method_labels(
    methods: Iterable[object], given: Mapping[str, object] | None = None
) -> dict[str, str]:
    """Label of each method key: ``given`` first, then the paper's labels, else the key.

    Labels are made unique (a repeated one gets `` (<key>)``) and free of `LIST_SEPARATOR`,
    so a label names exactly one key and tables can be mapped back and forth.
    """
    given = given or {}
    keys = sorted({str(m) for m in methods}, key=lambda k: (name_key(k), k))
    labels: dict[str, str] = {}
    for key in keys:
        label = given.get(key)
        if not isinstance(label, str) or not label.strip():
            label = default_method_label(key)
        labels[key] = str(label).strip().replace(LIST_SEPARATOR, ", ") or key
    taken: dict[str, int] = {}
    for label in labels.values():
        taken[label] = taken.get(label, 0) + 1
    return {k: (v if taken[v] == 1 else f"{v} ({k})") for k, v in labels.items()}


_ARCH_LABELS = {
    "resnet50": "ResNet50",
    "resnet34": "ResNet34",
    "resnet18": "ResNet18",
    "mobilenetv1": "MobileNetV1",
}


def arch_label(arch: object) -> str:
    """How the paper writes an architecture (``"resnet50"`` gives ``"ResNet50"``), else itself."""
    return _ARCH_LABELS.get(name_key(arch), str(arch))


def is_random_reference(method: object) -> bool:
    """True for the random-weight speed references (``random_uniform``, ``random_global``)."""
    return name_key(method).startswith("random")
