"""The paper's method families (Section 2.1) and how a results table names them.

A method's family is the table's ``family`` column where it names one, else the catalog's
family of the method's key or label (`method_family`). Reports list families in
`FAMILY_ORDER` (the catalog's), then any other family by name.
"""

from __future__ import annotations

import pandas as pd

from common import catalog
from common.columns import FAMILY, METHOD
from reports.naming import catalog_method, is_lottery_ticket, name_key

DENSE = catalog.DENSE
PROGRESSIVE = catalog.PROGRESSIVE
REGULARIZATION = catalog.REGULARIZATION
LOTTERY = catalog.LOTTERY
STRUCTURED = catalog.STRUCTURED  # Appendix J: channel-pruned models (AMC)
OTHER = "other"


def method_family(name: object) -> str:
    """The paper's family of a method named by key or label (``"RigL ERK 5x"``: regularization).

    A catalog method's family; else lottery for LTH-T style names, regularization for RigL
    variants; ``"other"`` for anything else (e.g. random-weight speed rows).
    """
    key = catalog_method(name)
    if key is not None:
        return catalog.CATALOG.method(key).family
    if is_lottery_ticket(name):
        return LOTTERY
    return REGULARIZATION if name_key(name).startswith("rigl") else OTHER


def _family_value(value: object) -> str | None:
    """A ``family`` cell as a family name: the paper's, spelled loosely, or a study's own
    (``"structured"``, ``"distillation"``...) as its key; None when empty."""
    key = name_key(value) if value is not None and not pd.isna(value) else ""
    for prefix, family in (("prog", PROGRESSIVE), ("reg", REGULARIZATION), ("lott", LOTTERY),
                           ("lth", LOTTERY), ("dense", DENSE), ("struct", STRUCTURED)):
        if key.startswith(prefix):
            return family
    return key or None


# The order reports list families in; any other family (a study's own) follows, by name.
FAMILY_ORDER = catalog.FAMILIES


def family_sort_key(family: str) -> tuple[int, str]:
    return (FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER),
            str(family))


def method_families(rows: pd.DataFrame) -> dict[str, str]:
    """Method -> family of a results table (its ``family`` column where it names one, else
    the paper's grouping by name, else ``"other"``)."""
    return _families(rows)


def _families(rows: pd.DataFrame) -> dict[str, str]:
    """Method -> family: the ``family`` column where it names one, else `method_family`."""
    out = {m: method_family(m) for m in rows[METHOD].unique()}
    if FAMILY in rows.columns:
        for method, value in zip(rows[METHOD], rows[FAMILY]):
            family = _family_value(value)
            if family is not None:
                out[method] = family
    return out

