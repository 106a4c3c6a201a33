"""The eight findings in the paper's order, and `check_findings`, which runs them all."""

from __future__ import annotations

from typing import Callable

import pandas as pd

from reports.findings.mobilenet import finding_7
from reports.findings.speed import finding_8
from reports.findings.study import study_tables
from reports.findings.transfer import (finding_1, finding_2, finding_3, finding_4, finding_5,
                                       finding_6)
from reports.findings.verdicts import Verdict

FINDINGS: tuple[Callable[..., Verdict], ...] = (
    finding_1, finding_2, finding_3, finding_4, finding_5, finding_6, finding_7, finding_8,
)


def check_findings(df: pd.DataFrame, arch: str | None = None) -> tuple[Verdict, ...]:
    """The eight verdicts, in order, for ``arch`` (default: the main architecture)."""
    t = study_tables(df, arch)
    return tuple(finding(t) for finding in FINDINGS)

