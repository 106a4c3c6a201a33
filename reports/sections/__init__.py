"""The sections of report.md, one module each, in the order the report shows them.

Each module declares ``SECTION``: its title (its name in the report's contents line) and
``render(ctx)``, which returns the section's Markdown, the tables it writes as CSVs and the
figures it drew (`reports.sections.base`). To add a section, write its module and put it in
`SECTIONS`.
"""

from reports.sections import (alpha, appendix_e, data, figure2, figure3, findings, last_epoch,
                              missing, paper, per_mode, speed, table1, table3)
from reports.sections.base import Context, Rendered, Section

SECTIONS: tuple[Section, ...] = (
    data.SECTION,
    findings.SECTION,
    paper.SECTION,
    table1.SECTION,
    per_mode.SECTION,
    alpha.SECTION,
    figure2.SECTION,
    figure3.SECTION,
    speed.SECTION,
    appendix_e.SECTION,
    table3.SECTION,
    last_epoch.SECTION,
    missing.SECTION,
)

__all__ = ["SECTIONS", "Context", "Rendered", "Section"]
