"""Table 1: per dataset and mode, the dense baseline against the best sparse methods at 80 and
90 %; every method whose mean ± std overlaps the top one is named (``table1.csv``)."""

from __future__ import annotations

import pandas as pd

from common.columns import ARCH, DATASET, GROUP, MODE, SPARSITY
from reports import tables
from reports.markdown import NO_NUMBER, md_table, pct, pm
from reports.naming import dataset_sort_key
from reports.prepare import TRANSFER_MODES
from reports.sections.base import Context, Rendered, Section, coverage_md, select

SPARSITIES = (80, 90)
NOTE = (
    "Mean ± sample standard deviation (ddof=1) over seeds. Each sparse cell gives the top "
    "sparse method's accuracy and names every method whose interval (mean ± std) overlaps "
    "the top one's, best first. **Bold**: the best sparse mean is at least the dense mean. "
    "As in the paper, LTH-T competes in full finetuning only (it is designed for full "
    "finetuning and left out of the paper's linear analysis). Written to `table1.csv`."
)


def render(ctx: Context) -> Rendered:
    out = [f"## Table 1: dense vs best sparse model at "
           f"{' and '.join(pct(s) for s in SPARSITIES)}", ""]
    rows = select(ctx.data, sparsities=(0, *SPARSITIES), drop_lth_linear=True)
    miss = select(ctx.missing, sparsities=(0, *SPARSITIES), drop_lth_linear=True)
    out += [coverage_md(rows, miss), ""]
    detail = tables.table1_detail(ctx.data, SPARSITIES)
    if detail.empty:
        out.append("**No data** (no linear or full finetuning trials).")
    else:
        out += [_markdown(detail), "", NOTE]
    return Rendered("\n".join(out), {"table1": table1_csv(ctx.data)})


def table1_csv(data: pd.DataFrame) -> pd.DataFrame:
    """`reports.tables.table1` of one architecture: its columns exactly, no ``arch``."""
    table = tables.table1(data, SPARSITIES).drop(columns=[ARCH], errors="ignore")
    if list(table.columns) != list(tables.TABLE1_COLUMNS):
        table = table.reindex(columns=tables.TABLE1_COLUMNS)
    return table


def _markdown(detail: pd.DataFrame) -> str:
    """A row per dataset: per mode, dense mean ± std, then the best sparse cell per sparsity."""
    modes = [m for m in TRANSFER_MODES if (detail[MODE] == m).any()]
    headers = ["dataset", "group"]
    for mode in modes:
        headers += [f"{mode} dense"] + [f"{mode} {pct(s)}" for s in SPARSITIES]
    body = []
    for dataset in sorted(detail[DATASET].unique(), key=dataset_sort_key):
        part = detail[detail[DATASET] == dataset]
        row = [dataset, part[GROUP].iloc[0]]
        for mode in modes:
            in_mode = part[part[MODE] == mode]
            if in_mode.empty:
                row += [NO_NUMBER] * (1 + len(SPARSITIES))
                continue
            first = in_mode.iloc[0]
            row.append(pm(first["dense_mean"], first["dense_std"]))
            row += [_best_cell(in_mode[in_mode[SPARSITY] == s]) for s in SPARSITIES]
        body.append(row)
    return md_table(headers, body)


def _best_cell(hit: pd.DataFrame) -> str:
    """The best sparse mean ± std and the methods tied with it; bold when at least dense."""
    if hit.empty or not hit.iloc[0]["best_methods"]:
        return NO_NUMBER
    h = hit.iloc[0]
    value = pm(h["best_mean"], h["best_std"])
    if pd.notna(h["dense_mean"]) and h["best_mean"] >= h["dense_mean"]:
        value = f"**{value}**"
    return f"{value} {h['best_methods']}"


SECTION = Section("Table 1", render)
