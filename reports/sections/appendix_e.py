"""Appendix E: the share of fully pruned convolution filters per backbone
(``filters_pruned.csv``), and every sparse backbone's per-layer sparsity
(``layer_sparsity.csv``), from the checkpoint stage's rows (else the tiny study's upstream ones)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.columns import METHOD, MODE, SPARSITY, SPARSITY_MEASURED, STATUS
from reports import figures, tables
from reports.markdown import figure_md, md_table, num, pct
from reports.naming import name_key
from reports.prepare import CHECKPOINT, FINISHED
from reports.sections.base import Context, Rendered, Section, select

FILTERS_CAPTION = (
    "Appendix E: share of convolution filters whose weights are all zero, per method (colour) "
    "and sparsity (groups). More fully pruned filters leave fewer features to train in full "
    "finetuning."
)
LAYERS_CAPTION = (
    "Per-layer sparsity of every sparse backbone (from the checkpoint stage), layers in the "
    "network's order, one panel per global sparsity; all values in `layer_sparsity.csv`, with "
    "each convolution's share of fully pruned filters."
)


def render(ctx: Context) -> Rendered:
    filters = tables.filters_table(ctx.data)
    layers = tables.layer_table(ctx.data)
    csvs = {name: frame for name, frame in (("filters_pruned", filters),
                                             ("layer_sparsity", layers)) if not frame.empty}
    out = ["## Appendix E: fully pruned convolution filters", "", _coverage(ctx, filters), ""]
    if filters.empty:
        return Rendered("\n".join(out + ["**No data** (no rows with mode `checkpoint` or "
                                         "`upstream` and `filters_pruned_share`)."]), csvs)
    out.append(md_table(
        ["method", "sparsity", "fully pruned filters (%)", "measured sparsity (%)",
         "upstream accuracy (%)", "rows"],
        [[r[METHOD], pct(r[SPARSITY]), num(r["filters_pruned_pct"]),
          num(r[SPARSITY_MEASURED]), num(r["upstream_accuracy"]), int(r["n"])]
         for _, r in filters.iterrows()],
    ))
    out.append("")
    drawn: list[Path] = []
    path = figures.filters_bars(filters, ctx.out_dir / "appE_filters_pruned.png", ctx.colours,
                                "Convolution filters fully pruned in the upstream model")
    if path:
        drawn.append(path)
        out.append(figure_md(path, ctx.out_dir, FILTERS_CAPTION))
    path = figures.layer_sparsity_lines(layers, ctx.out_dir / "layer_sparsity.png",
                                        ctx.colours, "Sparsity per layer of each backbone")
    if path:
        drawn.append(path)
        out += ["", figure_md(path, ctx.out_dir, LAYERS_CAPTION)]
    return Rendered("\n".join(out), csvs, tuple(drawn))


def _coverage(ctx: Context, filters: pd.DataFrame) -> str:
    """The rows the filter shares rest on, the failed ones, the backbones without a share."""
    d = ctx.data
    source = tables.statistics_mode(d)
    rows_of = "checkpoint" if source == CHECKPOINT else "upstream"
    n_rows = int(filters["n"].sum()) if not filters.empty else 0
    text = f"**Coverage.** Rests on {n_rows} {rows_of} row(s) with `filters_pruned_share`"
    transfer = select(d)
    sparse = transfer[SPARSITY] > 0
    pairs = set(zip(transfer.loc[sparse, METHOD], transfer.loc[sparse, SPARSITY]))
    have = set(zip(filters[METHOD], filters[SPARSITY])) if not filters.empty else set()
    lacking = sorted(pairs - have, key=lambda p: (name_key(p[0]), p[1]))
    failed = int((d.loc[d[MODE] == source, STATUS] != FINISHED).sum())
    text += f"; {failed} failed {rows_of} row(s) excluded" if failed else ""
    if lacking:
        text += "; missing for " + ", ".join(f"{m} {pct(s)}" for m, s in lacking)
    return text + "."


SECTION = Section("Appendix E", render)
