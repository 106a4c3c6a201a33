"""Table 3: every backbone's upstream validation accuracy (top-1, ReaL, ImageNetV2 as the
paper's average of its three variants, then each variant), from the checkpoint stage
(``table3.csv``)."""

from __future__ import annotations

import pandas as pd

from common.columns import ACCURACY_V2_VARIANTS, METHOD, SPARSITY, UPSTREAM_EVAL
from reports import tables
from reports.markdown import md_table, num, pct
from reports.prepare import text_of
from reports.sections.base import Context, Rendered, Section


def render(ctx: Context) -> Rendered:
    out = ["## Table 3: upstream validation accuracy of each backbone", ""]
    t3 = tables.upstream_table(ctx.data)
    if t3.empty:
        return Rendered("\n".join(out + ["**No data** (no rows with mode `checkpoint`: the "
                                         "study ran no checkpoint stage)."]))
    measured = t3["top1"].notna()
    notes = sorted(set(text_of(t3.loc[~measured, UPSTREAM_EVAL])) - {""})
    out += [f"**Coverage.** {int(measured.sum())} of {len(t3)} backbone(s) have an upstream "
            "accuracy.", ""]
    if notes:
        out += ["Not measured: " + " · ".join(notes[:3])
                + (f" (and {len(notes) - 3} more)" if len(notes) > 3 else ""), ""]
    if not measured.any():
        return Rendered("\n".join(out), {"table3": t3})
    sets = sorted(set(text_of(t3.loc[measured, UPSTREAM_EVAL])) - {""})
    out += ["Measured: " + " · ".join(sets[:3]), ""]
    out += _accuracy_table(t3, measured)
    out += ["", "Written to `table3.csv`. Finding 3's note compares these accuracies with each "
            "backbone's mean α (\"transfer tracks upstream accuracy\")."]
    return Rendered("\n".join(out), {"table3": t3})


def _accuracy_table(t3: pd.DataFrame, measured: pd.Series) -> list[str]:
    """The measured backbones' accuracies, with the columns that have a number; a line on
    ImageNetV2's average when its variants were measured."""
    real = {"real": "ReaL top-1 (%)"} if t3["real"].notna().any() else {}
    v2 = {tables.TABLE3_VALUES[c]: f"V2 {name} (%)" for c, name in ACCURACY_V2_VARIANTS.items()}
    v2 = {c: head for c, head in v2.items() if t3[c].notna().any()}
    average = {"v2": "ImageNetV2 (average) (%)"} if v2 or t3["v2"].notna().any() else {}
    shown = {"top1": "top-1 (%)", **real, **average, **v2}
    out = [md_table(["method", "sparsity", *shown.values()],
                    [[r[METHOD], pct(r[SPARSITY]), *(num(r[c]) for c in shown)]
                     for _, r in t3[measured].iterrows()])]
    if v2:
        partial = int((measured & t3["v2"].isna() & t3[list(v2)].notna().any(axis=1)).sum())
        out += ["", f"ImageNetV2 (average) is the mean of its three variants "
                f"({', '.join(ACCURACY_V2_VARIANTS.values())}), as the paper's Table 3 reports "
                "it, shown beside each." + (
                    f" **It is left empty for {partial} backbone(s)** that lack a variant; "
                    "`upstream_eval` in `table3.csv` names the missing ones." if partial else "")]
    return out


SECTION = Section("Table 3", render)
