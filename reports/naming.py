"""Names the reports recognise: the catalog's datasets, groups, method and arch labels, LTH-T.

Method and dataset names in a results table are free text (``"CIFAR-10"``, ``"cifar10"``,
``"Oxford Flowers 102"``), so they are matched on a key that ignores case, spaces and
punctuation against the keys, labels and aliases of ``common.catalog``. Names are never
rewritten in the tables' data columns; the key finds a dataset's group and a method's label
(what a reader of the paper calls it: ``acdc`` is "AC/DC").
"""

from __future__ import annotations

import functools
import re
from typing import Iterable, Mapping

from common import catalog
from common.catalog import Catalog

GENERAL = catalog.GENERAL
SPECIALIZED = catalog.SPECIALIZED
UNKNOWN = "unknown"
# What separates the methods of a joined list (Table 1's ``best_methods``); never in a label.
LIST_SEPARATOR = "; "
# The random-weight speed references (the speed stage's ``random_<profile>`` rows): timing
# baselines of the speed section, not methods of a study, so not in the catalog.
_SPEED_REFERENCE_LABELS = {
    "randomuniform": "Random, uniform per layer",
    "randomglobal": "Random, global magnitude",
}


def name_key(name: object) -> str:
    """Lower-case letters and digits of ``name``: ``"CIFAR-10"`` gives ``"cifar10"``."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


@functools.lru_cache(maxsize=4)
def _spellings(cat: Catalog) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Name keys of every spelling -> the catalog key: paper datasets, methods, archs."""
    datasets = {name_key(s): d.key for d in cat.datasets if d.paper
                for s in (d.key, d.label, *d.aliases)}
    methods = {name_key(s): m.key for m in cat.methods for s in (m.key, m.label, *m.aliases)}
    archs = {name_key(a.key): a.key for a in cat.archs}
    return datasets, methods, archs


def canonical_dataset(name: object) -> str | None:
    """The paper's key of a dataset (``"flowers"`` for ``"Oxford Flowers 102"``), or None."""
    return _spellings(catalog.CATALOG)[0].get(name_key(name))


def dataset_group(name: object) -> str:
    """``"general"`` or ``"specialized"`` as in the paper, ``"unknown"`` for other datasets."""
    key = canonical_dataset(name)
    return catalog.CATALOG.dataset(key).group if key is not None else UNKNOWN


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


def catalog_method(name: object) -> str | None:
    """The catalog key of a method named by key, label or alias (``"AC/DC"``: ``acdc``)."""
    return _spellings(catalog.CATALOG)[1].get(name_key(name))


def default_method_label(method: object) -> str:
    """The paper's label of a method key (``"rigl_erk5x"`` gives ``"RigL ERK 5x"``), else itself."""
    key = catalog_method(method)
    if key is not None:
        return catalog.CATALOG.method(key).label
    return _SPEED_REFERENCE_LABELS.get(name_key(method), str(method))


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


def arch_label(arch: object) -> str:
    """How the paper writes an architecture (``"resnet50"`` gives ``"ResNet50"``), else itself."""
    key = _spellings(catalog.CATALOG)[2].get(name_key(arch))
    return catalog.CATALOG.arch(key).label if key is not None else str(arch)


def is_random_reference(method: object) -> bool:
    """True for the random-weight speed references (``random_uniform``, ``random_global``)."""
    return name_key(method).startswith("random")
