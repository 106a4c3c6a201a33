"""Accuracy per method and sparsity, one table per finetuning mode, as the paper's appendix
C.1 / C.2 tables (``cells.csv``)."""

from __future__ import annotations

import pandas as pd

from common.columns import DATASET, METHOD, MODE, SPARSITY
from reports.markdown import NO_NUMBER, md_table, pct, pm
from reports.naming import dataset_sort_key, name_key
from reports.prepare import FULL, LINEAR, TRANSFER_MODES
from reports.sections.base import Context, Rendered, Section, coverage_md, select

MODE_TITLES = {LINEAR: "Linear finetuning (as table C.1)", FULL: "Full finetuning (as table C.2)"}
NOTE = ("Mean ± standard error (std ddof=1 / √n) over seeds, in percent. "
        "† fewer seeds than the other cells of this mode; — no usable trial.")


def render(ctx: Context) -> Rendered:
    out = ["## Accuracy per method and sparsity (paper appendix C.1 / C.2)", ""]
    cells = ctx.cells[ctx.cells[MODE].isin(TRANSFER_MODES)]
    if cells.empty:
        return Rendered("\n".join(out + ["**No data.**"]), {"cells": ctx.cells})
    short = set(
        zip(ctx.missing[MODE], ctx.missing[METHOD], ctx.missing[SPARSITY], ctx.missing[DATASET])
    )
    for mode in TRANSFER_MODES:
        part = cells[cells[MODE] == mode]
        out += [f"### {MODE_TITLES[mode]}", ""]
        out += [coverage_md(select(ctx.data, (mode,)), select(ctx.missing, (mode,))), ""]
        if part.empty:
            out += ["**No data.**", ""]
            continue
        out += [_mode_table(part, mode, short), "", NOTE, ""]
    return Rendered("\n".join(out), {"cells": ctx.cells})


def _mode_table(part: pd.DataFrame, mode: str, short: set[tuple]) -> str:
    """A row per (sparsity, method), a column per dataset: mean ± SE, † where seeds are short."""
    datasets = sorted(part[DATASET].unique(), key=dataset_sort_key)
    pairs = part[[SPARSITY, METHOD]].drop_duplicates()
    pairs = pairs.assign(_k=pairs[METHOD].map(name_key)).sort_values([SPARSITY, "_k"])
    body = []
    for _, pair in pairs.iterrows():
        sel = part[(part[METHOD] == pair[METHOD]) & (part[SPARSITY] == pair[SPARSITY])]
        sel = sel.set_index(DATASET)
        row = [pair[METHOD], pct(pair[SPARSITY])]
        for dataset in datasets:
            if dataset not in sel.index:
                row.append(NO_NUMBER)
                continue
            c = sel.loc[dataset]
            mark = " †" if (mode, pair[METHOD], pair[SPARSITY], dataset) in short else ""
            row.append(pm(c["mean"], c["se"]) + mark)
        counts = sel["count"]
        row.append(str(counts.min()) if counts.min() == counts.max()
                   else f"{counts.min()}–{counts.max()}")
        body.append(row)
    return md_table(["method", "sparsity", *datasets, "seeds"], body)


SECTION = Section("Accuracy per method and sparsity", render)
