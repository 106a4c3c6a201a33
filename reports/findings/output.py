"""The findings as a table (``findings.csv``) and as the report's Markdown section."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from reports.findings.check import check_findings
from reports.findings.verdicts import DOES_NOT_HOLD, HOLDS, NOT_TESTABLE, VERDICTS, Verdict
from reports.markdown import md_cell

FINDINGS_COLUMNS = ("finding", "title", "verdict", "why", "supporting", "against", "untested",
                    "notes", "details", "paper", "arch")


def findings_table(df: pd.DataFrame, arch: str | None = None) -> pd.DataFrame:
    """One row per finding: verdict, why, the numbers for and against, notes, the paper's words.

    List columns are joined with `` | ``; ``untested`` lists the checks that could not run.
    """
    return findings_frame(check_findings(df, arch))


def findings_frame(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """The verdicts as `findings_table` gives them (``findings.csv``)."""
    rows = []
    for v in verdicts:
        untested = [c.line() for c in v.checks if c.result is None]
        rows.append(dict(finding=v.number, title=v.title, verdict=v.verdict, why=v.why,
                         supporting=" | ".join(v.supporting), against=" | ".join(v.against),
                         untested=" | ".join(untested), notes=" | ".join(v.notes),
                         details=" | ".join(d for c in v.checks for d in c.details),
                         paper=v.paper, arch=v.arch or ""))
    return pd.DataFrame(rows, columns=list(FINDINGS_COLUMNS))


def findings_markdown(verdicts: Sequence[Verdict]) -> str:
    """The report's section "The paper's findings, checked": a summary table, then each
    finding with the paper's sentences, its checks and their numbers."""
    counts = {v: sum(x.verdict == v for x in verdicts) for v in VERDICTS}
    archs = sorted({v.arch for v in verdicts[:6] if v.arch})
    out = ["## The paper's findings, checked", ""]
    out.append(
        (f"Architecture `{archs[0]}` (findings 1-6). " if archs else "")
        + f"Of {len(verdicts)} findings: {counts[HOLDS]} hold, {counts[DOES_NOT_HOLD]} do not "
        f"hold, {counts[NOT_TESTABLE]} not testable with this grid. Each finding is a few "
        "checks (✓ holds, ✗ does not, – not testable); it holds when every check holds. The "
        "rules and thresholds are in `reports/findings/`; the same verdicts are in "
        "`findings.csv`."
    )
    out += ["", "| # | finding | verdict | evidence |", "|---|---|---|---|"]
    for v in verdicts:
        evidence = "<br>".join(md_cell(c.line()) for c in v.checks)
        out.append(f"| {v.number} | {md_cell(v.title)} | **{v.verdict}** | {evidence} |")
    for v in verdicts:
        out += ["", f"### {v.number}. {v.title}: {v.verdict}", "", f"> {v.paper}", ""]
        if v.verdict != HOLDS:
            out += [f"Why: {v.why}", ""]
        for c in v.checks:
            out.append(f"- {c.line()}")
            out += [f"  - {d}" for d in c.details]
        out += [f"- note: {n}" for n in v.notes]
    return "\n".join(out)


def write_findings(df: pd.DataFrame, arch: str | None = None) -> str:
    """`findings_markdown` of the verdicts for ``arch`` (default: the main architecture)."""
    return findings_markdown(check_findings(df, arch))

