"""Missing trials: every cell of the grid with fewer usable seeds than expected
(``missing.csv``), and every trial that did not finish, failed on bad input or errored, with
the last line of its error (``failed.csv``): listed, never counted."""

from __future__ import annotations

import pandas as pd

from common.columns import ARCH, DATASET, ERROR, METHOD, MODE, SEED, SPARSITY, STATUS, TRIAL_ID
from reports.markdown import NO_NUMBER, md_table, pct
from reports.prepare import FINISHED, text_of
from reports.sections.base import Context, Rendered, Section

MAX_ROWS = 200
FAILED_COLUMNS = (ARCH, "stage", MODE, METHOD, SPARSITY, DATASET, SEED, STATUS, ERROR, TRIAL_ID)


def render(ctx: Context) -> Rendered:
    missing = ctx.missing
    failed = failed_trials(pd.concat([ctx.data, ctx.reference], ignore_index=True))
    out = ["## Missing trials", ""]
    if missing.empty:
        out.append("Every cell of the grid implied by the table has all its seeds.")
    else:
        out += _missing_md(missing)
    if not failed.empty:
        out += ["", *_failed_md(failed)]
    return Rendered("\n".join(out), {"missing": missing, "failed": failed})


def _missing_md(missing: pd.DataFrame) -> list[str]:
    out = [
        f"{len(missing)} cell(s) of the grid implied by the table (every method × sparsity "
        "× dataset seen, per finetuning mode) have fewer usable seeds than the most seen in "
        "that mode. All of them are in `missing.csv`.", ""]
    head = missing.head(MAX_ROWS)
    out.append(md_table(
        ["mode", "method", "sparsity", "dataset", "seeds", "expected", "failed", "not run"],
        [[r[MODE], r[METHOD], pct(r[SPARSITY]), r[DATASET], r["n_seeds"], r["n_expected"],
          r["failed_seeds"] or NO_NUMBER, r["missing_seeds"] or NO_NUMBER]
         for _, r in head.iterrows()],
    ))
    if len(missing) > len(head):
        out += ["", f"… and {len(missing) - len(head)} more."]
    return out


def failed_trials(rows: pd.DataFrame) -> pd.DataFrame:
    """Every row of a trial that did not finish, in the table's order, its error cut to the
    line that says what happened (a traceback's last line)."""
    bad = rows[rows[STATUS] != FINISHED]
    columns = [c for c in FAILED_COLUMNS if c in bad.columns or c == ERROR]
    if bad.empty:
        return pd.DataFrame(columns=columns)
    errors = text_of(bad[ERROR]) if ERROR in bad.columns else pd.Series("", index=bad.index)
    return bad.assign(**{ERROR: errors.map(_last_line)})[columns].reset_index(drop=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _failed_md(failed: pd.DataFrame) -> list[str]:
    out = ["### Failed and errored trials", "",
           f"{len(failed)} trial(s) did not finish: failed on bad input (rerun with "
           "`--retry-failed` once it is fixed) or errored (a crash or a bug; a rerun tries "
           "them again). They enter no table, mean or figure; all of them are in "
           "`failed.csv`, each whole error in the ledger (`trials/<trial_id>.json`).", ""]
    head = failed.head(MAX_ROWS)
    where = "stage" if "stage" in failed.columns else MODE
    out.append(md_table(
        [where, "method", "sparsity", "dataset", "seed", "status", "error"],
        [[r[where], r[METHOD], pct(r[SPARSITY]), r[DATASET], r[SEED], r[STATUS],
          r[ERROR] or NO_NUMBER] for _, r in head.iterrows()]))
    if len(failed) > len(head):
        out += ["", f"… and {len(failed) - len(head)} more."]
    return out


SECTION = Section("Missing trials", render)
