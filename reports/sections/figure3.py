"""Figure 3: each method's alpha on each dataset against the dataset's task difficulty (dense
full - dense linear accuracy), at 80 and 90 % (``difficulty.csv``)."""

from __future__ import annotations

from common.columns import DATASET, GROUP
from reports import figures, tables
from reports.markdown import figure_md, md_table, num, pct
from reports.sections.base import (Context, Rendered, Section, coverage_md, select,
                                   without_linear_lth)

SPARSITIES = (80, 90)
CAPTION = (
    "Figure 3: α of each method on each dataset vs the dataset's task difficulty, at "
    f"{' and '.join(pct(s) for s in SPARSITIES)} sparsity (columns); top row linear finetuning "
    "as in the paper, a second row full finetuning when present. Circles: general datasets, "
    "triangles: specialized; dashed lines: least-squares trend per method; below 0 the sparse "
    "model errs less than dense. LTH-T is left out of the linear row."
)


def render(ctx: Context) -> Rendered:
    out = ["## Figure 3: α vs task difficulty", ""]
    diff = tables.difficulty(ctx.data)
    rows = select(ctx.data, sparsities=(0, *SPARSITIES), drop_lth_linear=True)
    miss = select(ctx.missing, sparsities=(0, *SPARSITIES), drop_lth_linear=True)
    out += [coverage_md(rows, miss), ""]
    if diff.empty:
        return Rendered("\n".join(out + ["**No data** (no dense trials)."]),
                        {"difficulty": diff})
    out.append(md_table(
        ["dataset", "group", "dense linear (%)", "dense full (%)", "difficulty (pp)"],
        [[r[DATASET], r[GROUP], num(r["dense_linear"]), num(r["dense_full"]),
          num(r["difficulty"])] for _, r in diff.iterrows()],
    ))
    out += ["", "Task difficulty = dense full-finetuning accuracy − dense linear-finetuning "
            "accuracy (means over seeds); a larger gap means the ImageNet features fit the task "
            "less well.", ""]
    no_diff = diff.loc[diff["difficulty"].isna(), DATASET].tolist()
    if no_diff:
        out += ["Left out (no dense baseline in both modes): " + ", ".join(no_diff) + ".", ""]
    per_dataset = ctx.alpha_by_dataset
    data = without_linear_lth(per_dataset) if not per_dataset.empty else per_dataset
    path = None
    if not data.empty:
        path = figures.alpha_vs_difficulty(
            data, diff, SPARSITIES, ctx.out_dir / "fig3_alpha_vs_difficulty.png",
            ctx.colours, "Relative increase in error vs task difficulty",
        )
    if path is None:
        out.append("**No data** (α and difficulty need dense trials in both modes and sparse "
                   f"trials at {' or '.join(pct(s) for s in SPARSITIES)}).")
        return Rendered("\n".join(out), {"difficulty": diff})
    out.append(figure_md(path, ctx.out_dir, CAPTION))
    return Rendered("\n".join(out), {"difficulty": diff}, (path,))


SECTION = Section("Figure 3", render)
