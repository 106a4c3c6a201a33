"""This study next to the paper: every cell both measured, compared on the seeds' spread
(`reports.paper_comparison`), and this study's alpha against the paper's."""

from __future__ import annotations

import pandas as pd

from reports import paper_comparison
from reports.markdown import figure_md
from reports.sections.base import Context, Rendered, Section

CAPTION = ("This study's α against the paper's: mean over the shared datasets per method, "
           "sparsity (the number beside each point) and mode; on the dashed line they agree.")


def render(ctx: Context) -> Rendered:
    if not ctx.compare_paper:
        empty = pd.DataFrame(columns=list(paper_comparison.COLUMNS))
        return Rendered(f"## {paper_comparison.TITLE}\n\nThese are the paper's own published "
                        "results: there is no study to compare with them.",
                        {"paper_comparison": empty})
    comparison = paper_comparison.compare(ctx.data, default_arch=ctx.arch)
    figure = None
    if not comparison.empty:
        pairs = paper_comparison.alpha_pairs(ctx.data, comparison, default_arch=ctx.arch)
        figure = paper_comparison.alpha_figure(
            pairs, ctx.out_dir / "paper_alpha.png", ctx.colours,
            "α: this study against the paper, on the cells both measured")
    text = paper_comparison.section(
        comparison, figure_md(figure, ctx.out_dir, CAPTION) if figure else "")
    return Rendered(text, {"paper_comparison": comparison},
                    (figure,) if figure is not None else ())


SECTION = Section(paper_comparison.TITLE, render)
