"""Best vs last epoch: how far each mode's reported epoch (picked by the study's epoch rule)
is from its last epoch; left out when the table has no last-epoch accuracy."""

from __future__ import annotations

import pandas as pd

from common.columns import ACCURACY, ACCURACY_LAST, EPOCH_SELECTION, MODE
from reports.markdown import md_table, num
from reports.prepare import TRANSFER_MODES, usable
from reports.sections.base import Context, Rendered, Section, select

EPOCH_RULES = {"top1": "best by top-1", "metric": "best by the dataset's metric",
               "last": "last epoch"}


def render(ctx: Context) -> Rendered:
    d = select(ctx.data)
    if ACCURACY_LAST not in d.columns:
        return Rendered("")
    ok = usable(d) & pd.to_numeric(d[ACCURACY_LAST], errors="coerce").notna()
    if not ok.any():
        return Rendered("")
    gap = d.loc[ok, ACCURACY] - pd.to_numeric(d.loc[ok, ACCURACY_LAST])
    rules = (d.loc[ok, EPOCH_SELECTION].fillna("metric").astype(str)
             if EPOCH_SELECTION in d.columns else pd.Series("metric", index=gap.index))
    rows = []
    for mode in TRANSFER_MODES:
        in_mode = d.loc[ok, MODE] == mode
        for rule in sorted(rules[in_mode].unique()):
            g = gap[in_mode & (rules == rule)]
            if not g.empty:
                rows.append([mode, EPOCH_RULES.get(rule, rule), len(g), num(g.mean()),
                             num(g.max())])
    return Rendered("\n".join([
        "## Best vs last epoch", "",
        "Every number above is the dataset's metric at the epoch each trial reports, picked by "
        "the rule below (the study key `modes.<mode>.epoch_selection`; the reference code "
        "picked the best epoch by top-1). The last epoch's accuracy differs by (reported − "
        "last, percentage points):", "",
        md_table(["mode", "epoch picked", "trials", "mean gap", "largest gap"], rows), "",
        "Per-cell statistics of both are in `cells.csv` (`last_*` columns).",
    ]))


SECTION = Section("Best vs last epoch", render)
