"""The paper's findings, checked: a verdict per finding from a long results table.

``docs/protocol.md`` ("The paper's findings") numbers eight of the paper's conclusions.
``finding_<n>`` tests finding n and says in its docstring exactly how, no stricter than the
paper's sentence (on the paper's own published results every finding holds); the thresholds
are in `reports.findings.thresholds`. A finding is a few `Check`\\ s and **holds** when every
check holds, **does not hold** when one fails, and is **not testable** with this grid when none
fails but one cannot run, with the reason.

Findings 1-6 read one architecture: ``arch`` when given, else the main one
(`reports.prepare.pick_main_arch`, the rule the report uses; rows with no arch count as it).
Finding 7 reads any MobileNet architecture of the table, finding 8 the ResNet50 speed rows, so
a whole study's table checks every finding at once. Methods are recognised by key or label; a
``family`` column, where present, names a method's family.

Modules: `verdicts` (checks, verdicts, the paper's words), `thresholds`, `families`, `study`
(one architecture's tables and their readers), `checks` (checks several findings share),
`transfer` (findings 1-6), `mobilenet` (7), `speed` (8), `check` (all eight in order),
`output` (``findings.csv`` and the report's Markdown).
"""

from reports.findings.check import FINDINGS, check_findings
from reports.findings.families import (DENSE, FAMILY_ORDER, LOTTERY, OTHER, PROGRESSIVE,
                                       REGULARIZATION, STRUCTURED, family_sort_key,
                                       method_families, method_family)
from reports.findings.mobilenet import finding_7
from reports.findings.output import (FINDINGS_COLUMNS, findings_frame, findings_markdown,
                                     findings_table, write_findings)
from reports.findings.speed import finding_8
from reports.findings.study import StudyTables, study_tables
from reports.findings.transfer import (finding_1, finding_2, finding_3, finding_4, finding_5,
                                       finding_6)
from reports.findings.verdicts import (DOES_NOT_HOLD, HOLDS, NOT_TESTABLE, PAPER, VERDICTS,
                                       Check, Verdict, verdict_of)

__all__ = [
    "DENSE", "DOES_NOT_HOLD", "FAMILY_ORDER", "FINDINGS", "FINDINGS_COLUMNS", "HOLDS",
    "LOTTERY", "NOT_TESTABLE", "OTHER", "PAPER", "PROGRESSIVE", "REGULARIZATION", "STRUCTURED",
    "VERDICTS", "Check", "StudyTables", "Verdict", "check_findings", "family_sort_key",
    "finding_1", "finding_2", "finding_3", "finding_4", "finding_5", "finding_6", "finding_7",
    "finding_8", "findings_frame", "findings_markdown", "findings_table", "method_families",
    "method_family", "study_tables", "verdict_of", "write_findings",
]
