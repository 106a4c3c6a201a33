"""Data: what the report rests on, per mode; the datasets by group, the methods by family, and
what preparing the table changed."""

from __future__ import annotations

import pandas as pd

from common import columns as C
from common.columns import DATASET, GROUP, LTH_SOURCE, METHOD, MODE, SPARSITY, STATUS
from reports.findings import family_sort_key, method_families
from reports.markdown import md_table, pct
from reports.naming import dataset_sort_key, name_key
from reports.prepare import FINISHED, MODE_ORDER, TRANSFER_MODES, usable
from reports.sections.base import Context, Rendered, Section


def render(ctx: Context) -> Rendered:
    d = ctx.data
    out = ["## Data", ""]
    out.append(f"Source: {ctx.source}" + (f", architecture `{ctx.arch}`." if ctx.arch else "."))
    rows = _mode_rows(d)
    out += ["", md_table(["mode", "rows", "usable", "failed", "methods", "datasets",
                          "seeds per cell"], rows) if rows else "No rows: **no data**."]
    transfer = d[d[MODE].isin(TRANSFER_MODES)]
    if not transfer.empty:
        out += _grid_lines(transfer)
    out += _provenance_lines(d)
    if ctx.notes:
        out += ["", "Notes on the input:", ""] + [f"- {n}" for n in ctx.notes]
    return Rendered("\n".join(out))


def _mode_rows(d: pd.DataFrame) -> list[list[object]]:
    """One row per mode: rows, usable, failed, methods, datasets, seeds per cell."""
    rows = []
    for mode in sorted(d[MODE].unique(), key=lambda m: MODE_ORDER.index(m)
                       if m in MODE_ORDER else 99):
        part = d[d[MODE] == mode]
        ok = usable(part) if mode in TRANSFER_MODES else part[STATUS] == FINISHED
        seeds = ""
        if mode in TRANSFER_MODES and ok.any():
            per_cell = part[ok].groupby([METHOD, SPARSITY, DATASET])["seed"].nunique()
            seeds = f"{per_cell.min()}–{per_cell.max()}" if per_cell.min() != per_cell.max() \
                else str(per_cell.max())
        rows.append([mode, len(part), int(ok.sum()), int((part[STATUS] != FINISHED).sum()),
                     part[METHOD].nunique(), part[DATASET].nunique(), seeds])
    return rows


def _grid_lines(transfer: pd.DataFrame) -> list[str]:
    """The datasets by group, the methods with their sparsities and family, LTH-T's weights."""
    groups = transfer.drop_duplicates(DATASET).set_index(DATASET)[GROUP]
    by_group: dict[str, list[str]] = {}
    for dataset in sorted(groups.index, key=dataset_sort_key):
        by_group.setdefault(groups[dataset], []).append(str(dataset))
    out = ["", "Datasets by group (paper Table 2): " + "; ".join(
        f"**{g}**: {', '.join(v)}" for g, v in sorted(by_group.items())) + "."]
    methods = transfer[[METHOD, SPARSITY]].drop_duplicates()
    families = method_families(transfer)
    listing = []
    for method in sorted(methods[METHOD].unique(),
                         key=lambda m: (family_sort_key(families[m]), name_key(m))):
        levels = sorted(methods.loc[methods[METHOD] == method, SPARSITY])
        listing.append(f"{method} ({', '.join(pct(s) for s in levels)}; {families[method]})")
    out += ["", "Methods (sparsities; family): " + "; ".join(listing) + "."]
    out += _lth_source_lines(transfer)
    return out + ["", "The dense baseline is every row with sparsity 0 of a dataset and mode."]


def _lth_source_lines(transfer: pd.DataFrame) -> list[str]:
    """Where each LTH-T backbone came from (column ``lth_source``): a ticket of Chen et al.
    as it is (the reference code's LTH-T), or a mask on the dense weights (from a ticket of
    masks alone, or from another method)."""
    if LTH_SOURCE not in transfer.columns:
        return []
    rows = transfer[transfer[LTH_SOURCE].notna() & (transfer[LTH_SOURCE].astype(str) != "")]
    if rows.empty:
        return []
    parts = []
    for (method, source), group in rows.groupby([METHOD, LTH_SOURCE], sort=True):
        levels = ", ".join(pct(s) for s in sorted(group[SPARSITY].unique()))
        parts.append(f"{method}: {source} ({levels})")
    return ["", "LTH-T weights (`lth_source`): " + "; ".join(parts) + ". \"ticket weights\": "
            "the reference code's LTH-T, a ticket of Chen et al. (CVPR 2021) as it is; \"ticket "
            "mask on dense weights\", \"mask from\": a mask on the dense ImageNet weights."]


# How the provenance columns are named in the report, in its order (common.columns.PROVENANCE).
_CODE = ((C.PROJECT_VERSION, "sparse-transfer"), (C.CODE_DIGEST, "code"),
         (C.PYTHON_VERSION, "Python"), (C.TORCH_VERSION, "torch"), (C.RAY_VERSION, "Ray"),
         (C.DEEPSPARSE_VERSION, "DeepSparse"), (C.MLFLOW_VERSION, "MLflow"))


def _provenance_lines(d: pd.DataFrame) -> list[str]:
    """Which code and libraries made the rows, and on which machines (the provenance
    columns): each distinct combination with its row count, then the rows without them."""
    if d.empty or not any(c in d.columns for c, _ in _CODE):
        return []
    code = [(c, name) for c, name in _CODE if c in d.columns]
    facts = d[[c for c, _ in code]].astype("string").fillna("")
    known = facts.ne("").any(axis=1)
    out = []
    for values, group in facts[known].groupby([c for c, _ in code], sort=True):
        values = values if isinstance(values, tuple) else (values,)
        text = ", ".join(f"{name} `{v}`" for (_, name), v in zip(code, values) if v)
        out.append(f"- {text}: {len(group)} row(s)")
    machines = [c for c in (C.HOSTNAME, C.CPU_MODEL) if c in d.columns]
    if machines:
        where = d[machines].astype("string").fillna("")
        for values, group in where[where.ne("").any(axis=1)].groupby(machines, sort=True):
            values = values if isinstance(values, tuple) else (values,)
            host = dict(zip(machines, values))
            out.append(f"- host `{host.get(C.HOSTNAME, '')}`, CPU "
                       f"`{host.get(C.CPU_MODEL, '')}`: {len(group)} row(s)")
    if not known.all():
        out.append(f"- {int((~known).sum())} row(s) recorded without provenance (before the "
                   "sweep kept it, or from another table)")
    return ["", "Made by (code, libraries and machines of the sweep runs that recorded the "
            "rows; a speed row's machine is the node that timed it):", ""] + out


SECTION = Section("Data", render)
