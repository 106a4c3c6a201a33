"""Missing trials: every cell of the grid with fewer usable seeds than expected
(``missing.csv``)."""

from __future__ import annotations

from common.columns import DATASET, METHOD, MODE, SPARSITY
from reports.markdown import NO_NUMBER, md_table, pct
from reports.sections.base import Context, Rendered, Section

MAX_ROWS = 200


def render(ctx: Context) -> Rendered:
    missing = ctx.missing
    out = ["## Missing trials", ""]
    if missing.empty:
        out.append("Every cell of the grid implied by the table has all its seeds.")
        return Rendered("\n".join(out), {"missing": missing})
    out.append(
        f"{len(missing)} cell(s) of the grid implied by the table (every method × sparsity "
        "× dataset seen, per finetuning mode) have fewer usable seeds than the most seen in "
        "that mode. All of them are in `missing.csv`."
    )
    out.append("")
    head = missing.head(MAX_ROWS)
    out.append(md_table(
        ["mode", "method", "sparsity", "dataset", "seeds", "expected", "failed", "not run"],
        [[r[MODE], r[METHOD], pct(r[SPARSITY]), r[DATASET], r["n_seeds"], r["n_expected"],
          r["failed_seeds"] or NO_NUMBER, r["missing_seeds"] or NO_NUMBER]
         for _, r in head.iterrows()],
    ))
    if len(missing) > len(head):
        out += ["", f"… and {len(missing) - len(head)} more."]
    return Rendered("\n".join(out), {"missing": missing})


SECTION = Section("Missing trials", render)
