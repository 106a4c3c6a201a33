"""The paper's findings, checked: findings 1-6 on this report's architecture, 7 (MobileNet) and
8 (ResNet50 speed) on the whole table, so the random-weight speed rows count for finding 8."""

from __future__ import annotations

from reports.findings import check_findings, findings_frame, findings_markdown
from reports.sections.base import Context, Rendered, Section


def render(ctx: Context) -> Rendered:
    verdicts = check_findings(ctx.whole, ctx.arch)
    return Rendered(findings_markdown(verdicts), {"findings": findings_frame(verdicts)})


SECTION = Section("The paper's findings, checked", render)
