"""Figure 2: accuracy of every method at 80 % per dataset, and alpha against sparsity; LTH-T
left out of the linear panels, as in the paper."""

from __future__ import annotations

from pathlib import Path

from common.columns import GROUP, MODE
from reports import figures
from reports.markdown import figure_md
from reports.prepare import TRANSFER_MODES
from reports.sections.base import (Context, Rendered, Section, coverage_md, select,
                                   without_linear_lth)

SPARSITY = 80
ACCURACY_CAPTION = (
    f"Figure 2 (top): accuracy of the dense baseline (grey) and each method at {SPARSITY} % "
    "sparsity per dataset, a panel per finetuning mode; error bars are standard errors over "
    "seeds; the y axis does not start at 0. LTH-T is left out of the linear panel, as in the "
    "paper."
)
ALPHA_CAPTION = (
    "Figure 2 (bottom): mean relative increase in error α over all datasets vs sparsity, one "
    "line per method, error bars are standard errors over datasets; lower is better, the dashed "
    "line is the dense baseline. LTH-T is left out of the linear panel."
)


def render(ctx: Context) -> Rendered:
    drawn: list[Path] = []
    out = ["## Figure 2: accuracy at 80 % and α vs sparsity", ""]
    rows = select(ctx.data, sparsities=(0, SPARSITY), drop_lth_linear=True)
    miss = select(ctx.missing, sparsities=(0, SPARSITY), drop_lth_linear=True)
    out += ["### Accuracy at 80 % sparsity per dataset", "", coverage_md(rows, miss), ""]
    cells = without_linear_lth(ctx.cells[ctx.cells[MODE].isin(TRANSFER_MODES)])
    path = figures.accuracy_bars(
        cells, SPARSITY, ctx.out_dir / "fig2_accuracy_80.png", ctx.colours,
        f"Transfer accuracy at {SPARSITY} % sparsity (mean ± SE over seeds)",
    )
    if path:
        drawn.append(path)
        out.append(figure_md(path, ctx.out_dir, ACCURACY_CAPTION))
    else:
        out.append(f"**No data** at {SPARSITY} % sparsity.")
    out += ["", "### α vs sparsity", "", coverage_md(select(ctx.data), ctx.missing), ""]
    alpha = ctx.alpha
    every = without_linear_lth(alpha[alpha[GROUP] == "all"]) if not alpha.empty else alpha
    path = figures.alpha_vs_sparsity(
        every, ctx.out_dir / "fig2_alpha_vs_sparsity.png", ctx.colours,
        "Relative increase in error over dense vs sparsity (all datasets)",
    )
    if path:
        drawn.append(path)
        out.append(figure_md(path, ctx.out_dir, ALPHA_CAPTION))
    else:
        out.append("**No data** for α.")
    return Rendered("\n".join(out), figures=tuple(drawn))


SECTION = Section("Figure 2", render)
