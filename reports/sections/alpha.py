"""The relative increase in error alpha over the dense baseline, per method, sparsity, mode and
dataset group (``alpha.csv``; per dataset in ``alpha_by_dataset.csv``)."""

from __future__ import annotations

import pandas as pd

from common.columns import ARCH, DATASET, GROUP, METHOD, MODE, SPARSITY
from reports import tables
from reports.markdown import NO_NUMBER, md_table, pct, pm
from reports.naming import UNKNOWN, is_lottery_ticket, name_key
from reports.prepare import TRANSFER_MODES, usable
from reports.sections.base import Context, Rendered, Section, coverage_md, select

NOTE = (
    "α(D,S) = (err(D,S) − err(D,B)) / err(D,B) with err = 100 − accuracy, accuracies "
    "averaged over seeds first; cells give mean ± standard error over datasets and, in "
    "brackets, the number of datasets. Negative α: fewer errors than dense. "
    "‡ LTH-T: kept here and in `alpha.csv`, but left out of the linear-finetuning figures "
    "as in the paper. Written to `alpha.csv`; per-dataset values in `alpha_by_dataset.csv`."
)


def render(ctx: Context) -> Rendered:
    alpha, per_dataset = ctx.alpha, ctx.alpha_by_dataset
    csvs = {"alpha": alpha_csv(alpha), "alpha_by_dataset": per_dataset}
    out = ["## Relative increase in error α over the dense baseline", ""]
    out += [coverage_md(select(ctx.data), ctx.missing), ""]
    if alpha.empty:
        out.append("**No data** (α needs sparse and dense trials of the same dataset and mode).")
        return Rendered("\n".join(out), csvs)
    lacking = _without_dense(select(ctx.data))
    if lacking:
        out += ["No dense baseline, so no α, for: "
                + ", ".join(f"{d} ({m})" for d, m in lacking) + ".", ""]
    out += [_markdown(alpha), "", NOTE]
    if (per_dataset[GROUP] == UNKNOWN).any():
        out += ["", "Datasets of unknown group count in 'all' only."]
    return Rendered("\n".join(out), csvs)


def alpha_csv(alpha: pd.DataFrame) -> pd.DataFrame:
    """`reports.tables.alpha_table` of one architecture: its columns exactly, no ``arch``."""
    alpha = alpha.drop(columns=[ARCH], errors="ignore")
    if list(alpha.columns) != list(tables.ALPHA_COLUMNS):
        alpha = alpha.reindex(columns=tables.ALPHA_COLUMNS)
    return alpha


def _without_dense(transfer: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, mode) pairs with usable sparse trials but no usable dense one."""
    sparse_cells = transfer[(transfer[SPARSITY] > 0) & usable(transfer)]
    dense_cells = transfer[(transfer[SPARSITY] == 0) & usable(transfer)]
    return sorted(
        set(zip(sparse_cells[DATASET], sparse_cells[MODE]))
        - set(zip(dense_cells[DATASET], dense_cells[MODE]))
    )


def _markdown(alpha: pd.DataFrame) -> str:
    """A row per (method, sparsity), a column per mode and group: mean ± SE (datasets)."""
    modes = [m for m in TRANSFER_MODES if (alpha[MODE] == m).any()]
    groups = [g for g in tables.ALPHA_GROUPS if (alpha[GROUP] == g).any()]
    headers = ["method", "sparsity"] + [f"{m}: {g}" for m in modes for g in groups]
    pairs = alpha[[METHOD, SPARSITY]].drop_duplicates()
    pairs = pairs.assign(_k=pairs[METHOD].map(name_key)).sort_values(["_k", SPARSITY])
    body = []
    indexed = alpha.set_index([METHOD, SPARSITY, MODE, GROUP])
    for _, pair in pairs.iterrows():
        name = pair[METHOD] + (" ‡" if is_lottery_ticket(pair[METHOD]) else "")
        row = [name, pct(pair[SPARSITY])]
        for m in modes:
            for g in groups:
                key = (pair[METHOD], pair[SPARSITY], m, g)
                if key not in indexed.index:
                    row.append(NO_NUMBER)
                    continue
                r = indexed.loc[key]
                row.append(f"{pm(r['alpha_mean'], r['alpha_se'], 3)} ({int(r['n_datasets'])})")
        body.append(row)
    return md_table(headers, body)


SECTION = Section("Relative increase in error α", render)
