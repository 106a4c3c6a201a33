"""The paper's method families (Section 2.1) and how a results table names them.

A method's family is the table's ``family`` column where it names one, else the paper's
grouping of the method's key or label (`method_family`). Reports list families in
`FAMILY_ORDER`, then any other family by name.
"""

from __future__ import annotations

import pandas as pd

from common.columns import FAMILY, METHOD
from reports.naming import is_lottery_ticket, name_key

DENSE = "dense"
PROGRESSIVE = "progressive"
REGULARIZATION = "regularization"
LOTTERY = "lottery"
STRUCTURED = "structured"  # Appendix J: channel-pruned models (AMC)
OTHER = "other"

# Method key -> family, for tables without a family column (the paper's Section 2.1 grouping).
_FAMILY_OF_KEY = {
    "dense": DENSE,
    "gmp": PROGRESSIVE,
    "gradualmagnitudepruning": PROGRESSIVE,
    "woodfisher": PROGRESSIVE,
    "wf": PROGRESSIVE,
    "acdc": REGULARIZATION,
    "str": REGULARIZATION,
    "mfac": PROGRESSIVE,  # M-FAC (MobileNetV1): second-order, progressive like WoodFisher
    "amc": STRUCTURED,
}


def method_family(name: object) -> str:
    """The paper's family of a method named by key or label (``"RigL ERK 5x"``: regularization).

    dense, progressive (GMP, WoodFisher), regularization (AC/DC, STR, RigL), lottery (LTH-T);
    ``"other"`` for anything else (e.g. random-weight speed rows).
    """
    if is_lottery_ticket(name):
        return LOTTERY
    key = name_key(name)
    if key.startswith("rigl"):
        return REGULARIZATION
    return _FAMILY_OF_KEY.get(key, OTHER)


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
FAMILY_ORDER = (DENSE, PROGRESSIVE, REGULARIZATION, LOTTERY, STRUCTURED)


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

