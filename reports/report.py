"""`write_report`: a study's long results table -> report.md, CSV tables and PNG figures.

The report answers what a reader of the paper looks for (Table 1, the appendix C tables, the
relative increase in error alpha, Figures 2-4, Appendix E) and says, section by section, how
many trials each number rests on and which cells of the grid are missing, so that a partial
sweep still gives a truthful report. A section without data says "no data".

``report.md`` is about the study's own results: its main architecture is the one with
finetuning (linear/full) rows, the caller's ``main_arch`` when that one has them, else ResNet50
when it has them, else the one with most finetuning rows. Each other architecture gets its own
report in ``out_dir/arch-<name>/``, linked from the main one. Random-weight speed rows
(``weights == "random"``: the paper's ResNet50 speed setting, timed without training) belong
to no architecture's results: they are the speed section's "Speed reference" part.

Methods are shown by their labels (the caller's ``method_labels``, else a ``method_label``
column, else the paper's labels of known keys); every CSV keeps the key in ``method`` and adds
``method_label``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from common.atomic import atomic_write_text
from common.columns import (
    ACCURACY,
    ACCURACY_LAST,
    ACCURACY_V2_VARIANTS,
    ARCH,
    BATCH,
    DATASET,
    DENSE_EPOCH_TIME_S,
    DENSE_LOADER_SHARE,
    DENSE_ONLINE_ACCURACY,
    DS_DENSE_MS_B64,
    DS_MS_B64,
    EPOCH_EXTRAPOLATED,
    EPOCH_SELECTION,
    EPOCH_TIME_S,
    GROUP,
    LOADER_SHARE,
    LTH_SOURCE,
    MACS_SHARE,
    METHOD,
    METHOD_LABEL,
    MODE,
    ONLINE_ACCURACY,
    REHEARSAL,
    SPARSITY,
    SPARSITY_MEASURED,
    SPARSITY_PROFILE,
    SPEEDUP_EPOCH,
    SPEEDUP_INFERENCE,
    STATUS,
    UPSTREAM_EVAL,
    WEIGHTS,
)
from reports import figures, findings, paper_comparison, tables
from reports.naming import (
    LIST_SEPARATOR,
    UNKNOWN,
    arch_label,
    dataset_sort_key,
    is_lottery_ticket,
    is_random_reference,
    name_key,
)
from reports.naming import (
    method_labels as _method_labels,
)
from reports.prepare import (
    CHECKPOINT,
    FAILED,
    FULL,
    LINEAR,
    SPEED,
    TRANSFER_MODES,
    pick_main_arch,
    prepare_with_notes,
    usable,
)

DEFAULT_TITLE = "How well do sparse ImageNet models transfer? Study report"
TABLE1_SPARSITIES = (80, 90)
FIG2_SPARSITY = 80
FIG3_SPARSITIES = (80, 90)
MAX_LISTED = 15
MODE_NAMES = {LINEAR: "linear finetuning", FULL: "full finetuning"}


@dataclass(frozen=True)
class ReportPaths:
    """What `write_report` wrote. Figures list only the PNGs that had data to draw."""

    out_dir: Path
    report_md: Path
    table1_csv: Path
    alpha_csv: Path
    cells_csv: Path
    missing_csv: Path
    csvs: tuple[Path, ...]
    figures: tuple[Path, ...]
    arch: str | None = None
    other_archs: tuple["ReportPaths", ...] = field(default_factory=tuple)
    speed_reference_csv: Path | None = None

    @property
    def markdown(self) -> Path:
        """Same as ``report_md``."""
        return self.report_md


# ----------------------------------------------------------------------------- formatting


def _num(value: object, digits: int = 2) -> str:
    if value is None or pd.isna(value):
        return "—"
    return f"{float(value):.{digits}f}"


def _pm(mean: object, spread: object, digits: int = 2) -> str:
    if mean is None or pd.isna(mean):
        return "—"
    if spread is None or pd.isna(spread):
        return _num(mean, digits)
    return f"{float(mean):.{digits}f} ± {float(spread):.{digits}f}"


def _pct(sparsity: object) -> str:
    return f"{float(sparsity):g} %"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def _figure_md(path: Path | None, out_dir: Path, caption: str) -> str:
    if path is None:
        return "_No data to draw this figure._"
    rel = os.path.relpath(path, out_dir)
    return f"![{caption.split(':')[0]}]({rel})\n\n*{caption}*"


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "-", text).strip("-").lower() or "unnamed"


# ----------------------------------------------------------------------------- coverage


def _select(
    frame: pd.DataFrame,
    modes: Iterable[str] = TRANSFER_MODES,
    sparsities: Iterable[float] | None = None,
    drop_lth_linear: bool = False,
) -> pd.DataFrame:
    """Rows of ``frame`` (prepared table or missing cells) in a section's part of the grid."""
    keep = frame[MODE].isin(list(modes))
    if sparsities is not None:
        keep &= frame[SPARSITY].isin(list(sparsities))
    if drop_lth_linear:
        keep &= ~((frame[MODE] == LINEAR) & frame[METHOD].map(is_lottery_ticket))
    return frame[keep]


def _missing_line(row: pd.Series) -> str:
    text = (
        f"{row[MODE]} · {row[METHOD]} · {_pct(row[SPARSITY])} · {row[DATASET]}: "
        f"{row['n_seeds']} of {row['n_expected']} seeds"
    )
    details = []
    if row["failed_seeds"]:
        details.append(f"failed: {row['failed_seeds']}")
    if row["missing_seeds"]:
        details.append(f"not run: {row['missing_seeds']}")
    return text + (f" ({'; '.join(details)})" if details else "")


def coverage_md(rows: pd.DataFrame, missing: pd.DataFrame, what: str = "trials") -> str:
    """How many usable trials a section rests on, how many failed, which cells lack seeds."""
    ok = usable(rows)
    per_mode = [
        f"{m}: {int((ok & (rows[MODE] == m)).sum())}"
        for m in TRANSFER_MODES
        if (rows[MODE] == m).any()
    ]
    failed = int((rows[STATUS] == FAILED).sum())
    empty = int((~ok & (rows[STATUS] != FAILED)).sum())
    text = f"**Coverage.** Rests on {int(ok.sum())} usable {what}"
    text += f" ({', '.join(per_mode)})." if per_mode else "."
    if failed:
        text += f" {failed} failed trial(s) excluded."
    if empty:
        text += f" {empty} trial(s) without an accuracy excluded."
    if missing.empty:
        return text + " No cell of this part of the grid is missing seeds."
    text += f" {len(missing)} cell(s) have fewer seeds than expected:\n"
    lines = [f"- {_missing_line(r)}" for _, r in missing.head(MAX_LISTED).iterrows()]
    if len(missing) > MAX_LISTED:
        lines.append(f"- … and {len(missing) - MAX_LISTED} more (see `missing.csv`).")
    return text + "\n".join(lines)


# ----------------------------------------------------------------------------- sections


@dataclass
class _Context:
    data: pd.DataFrame  # prepared table of one arch
    out_dir: Path
    notes: list[str]
    missing: pd.DataFrame
    cells: pd.DataFrame
    colours: dict
    figures: list[Path] = field(default_factory=list)


def _section_data(ctx: _Context, source: str, arch: str | None) -> str:
    d = ctx.data
    out = ["## Data", ""]
    out.append(f"Source: {source}" + (f", architecture `{arch}`." if arch else "."))
    rows = []
    for mode in sorted(d[MODE].unique(), key=lambda m: tables.MODE_ORDER.index(m)
                       if m in tables.MODE_ORDER else 99):
        part = d[d[MODE] == mode]
        ok = usable(part) if mode in TRANSFER_MODES else part[STATUS] != FAILED
        seeds = ""
        if mode in TRANSFER_MODES and ok.any():
            per_cell = part[ok].groupby([METHOD, SPARSITY, DATASET])["seed"].nunique()
            seeds = f"{per_cell.min()}–{per_cell.max()}" if per_cell.min() != per_cell.max() \
                else str(per_cell.max())
        rows.append([mode, len(part), int(ok.sum()), int((part[STATUS] == FAILED).sum()),
                     part[METHOD].nunique(), part[DATASET].nunique(), seeds])
    out += ["", md_table(["mode", "rows", "usable", "failed", "methods", "datasets",
                          "seeds per cell"], rows) if rows else "No rows: **no data**."]
    transfer = d[d[MODE].isin(TRANSFER_MODES)]
    if not transfer.empty:
        groups = transfer.drop_duplicates(DATASET).set_index(DATASET)[GROUP]
        by_group = {}
        for dataset in sorted(groups.index, key=dataset_sort_key):
            by_group.setdefault(groups[dataset], []).append(str(dataset))
        out += ["", "Datasets by group (paper Table 2): " + "; ".join(
            f"**{g}**: {', '.join(v)}" for g, v in sorted(by_group.items()))+ "."]
        methods = transfer[[METHOD, SPARSITY]].drop_duplicates()
        families = findings.method_families(transfer)
        listing = []
        for method in sorted(methods[METHOD].unique(),
                             key=lambda m: (findings.family_sort_key(families[m]), name_key(m))):
            levels = sorted(methods.loc[methods[METHOD] == method, SPARSITY])
            listing.append(f"{method} ({', '.join(_pct(s) for s in levels)}; {families[method]})")
        out += ["", "Methods (sparsities; family): " + "; ".join(listing) + "."]
        out += _lth_source_lines(transfer)
        out += ["", "The dense baseline is every row with sparsity 0 of a dataset and mode."]
    if ctx.notes:
        out += ["", "Notes on the input:", ""] + [f"- {n}" for n in ctx.notes]
    return "\n".join(out)


def _lth_source_lines(transfer: pd.DataFrame) -> list[str]:
    """Where each LTH-T backbone came from (column ``lth_source``): a ticket of Chen et al.
    as it is (the reference code's LTH-T), or a mask on the dense weights (from a ticket of
    masks alone, or from another method)."""
    if LTH_SOURCE not in transfer.columns:
        return []
    rows = transfer[transfer[LTH_SOURCE].notna() & (transfer[LTH_SOURCE].astype(str) != "")]
    if rows.empty:
        return []
    parts = []
    for (method, source), group in rows.groupby([METHOD, LTH_SOURCE], sort=True):
        levels = ", ".join(_pct(s) for s in sorted(group[SPARSITY].unique()))
        parts.append(f"{method}: {source} ({levels})")
    return ["", "LTH-T weights (`lth_source`): " + "; ".join(parts) + ". \"ticket weights\": "
            "the reference code's LTH-T, a ticket of Chen et al. (CVPR 2021) as it is; \"ticket "
            "mask on dense weights\", \"mask from\": a mask on the dense ImageNet weights."]


def _section_paper(ctx: _Context, arch: str | None,
                   compare: bool) -> tuple[str, pd.DataFrame]:
    """This study's cells next to the paper's published ones (`reports.paper_comparison`)."""
    empty = pd.DataFrame(columns=list(paper_comparison.COLUMNS))
    if not compare:
        return (f"## {paper_comparison.TITLE}\n\nThese are the paper's own published results: "
                "there is no study to compare with them.", empty)
    comparison = paper_comparison.compare(ctx.data, default_arch=arch)
    figure = None
    if not comparison.empty:
        pairs = paper_comparison.alpha_pairs(ctx.data, comparison, default_arch=arch)
        figure = paper_comparison.alpha_figure(
            pairs, ctx.out_dir / "paper_alpha.png", ctx.colours,
            "α: this study against the paper, on the cells both measured")
        if figure is not None:
            ctx.figures.append(figure)
    caption = ("This study's α against the paper's: mean over the shared datasets per method, "
               "sparsity (the number beside each point) and mode; on the dashed line they agree.")
    text = paper_comparison.section(
        comparison, _figure_md(figure, ctx.out_dir, caption) if figure else "", md_table)
    return text, comparison


def _section_table1(ctx: _Context) -> tuple[str, pd.DataFrame]:
    detail = tables.table1_detail(ctx.data, TABLE1_SPARSITIES)
    out = [f"## Table 1: dense vs best sparse model at "
           f"{' and '.join(_pct(s) for s in TABLE1_SPARSITIES)}", ""]
    rows = _select(ctx.data, sparsities=(0, *TABLE1_SPARSITIES), drop_lth_linear=True)
    miss = _select(ctx.missing, sparsities=(0, *TABLE1_SPARSITIES), drop_lth_linear=True)
    out += [coverage_md(rows, miss), ""]
    if detail.empty:
        out.append("**No data** (no linear or full finetuning trials).")
        return "\n".join(out), detail
    modes = [m for m in TRANSFER_MODES if (detail[MODE] == m).any()]
    headers = ["dataset", "group"]
    for mode in modes:
        headers += [f"{mode} dense"] + [f"{mode} {_pct(s)}" for s in TABLE1_SPARSITIES]
    body = []
    for dataset in sorted(detail[DATASET].unique(), key=dataset_sort_key):
        part = detail[detail[DATASET] == dataset]
        row = [dataset, part[GROUP].iloc[0]]
        for mode in modes:
            in_mode = part[part[MODE] == mode]
            if in_mode.empty:
                row += ["—"] * (1 + len(TABLE1_SPARSITIES))
                continue
            first = in_mode.iloc[0]
            row.append(_pm(first["dense_mean"], first["dense_std"]))
            for s in TABLE1_SPARSITIES:
                hit = in_mode[in_mode[SPARSITY] == s]
                if hit.empty or not hit.iloc[0]["best_methods"]:
                    row.append("—")
                    continue
                h = hit.iloc[0]
                text = f"{_pm(h['best_mean'], h['best_std'])} {h['best_methods']}"
                if pd.notna(h["dense_mean"]) and h["best_mean"] >= h["dense_mean"]:
                    text = f"**{_pm(h['best_mean'], h['best_std'])}** {h['best_methods']}"
                row.append(text)
        body.append(row)
    out.append(md_table(headers, body))
    out += [
        "",
        "Mean ± sample standard deviation (ddof=1) over seeds. Each sparse cell gives the top "
        "sparse method's accuracy and names every method whose interval (mean ± std) overlaps "
        "the top one's, best first. **Bold**: the best sparse mean is at least the dense mean. "
        "As in the paper, LTH-T competes in full finetuning only (it is designed for full "
        "finetuning and left out of the paper's linear analysis). Written to `table1.csv`.",
    ]
    return "\n".join(out), detail


def _section_per_mode(ctx: _Context) -> str:
    out = ["## Accuracy per method and sparsity (paper appendix C.1 / C.2)", ""]
    cells = ctx.cells[ctx.cells[MODE].isin(TRANSFER_MODES)]
    if cells.empty:
        return "\n".join(out + ["**No data.**"])
    short = set(
        zip(ctx.missing[MODE], ctx.missing[METHOD], ctx.missing[SPARSITY], ctx.missing[DATASET])
    )
    for mode in TRANSFER_MODES:
        part = cells[cells[MODE] == mode]
        title = {"linear": "C.1", "full": "C.2"}[mode]
        out += [f"### {MODE_NAMES[mode].capitalize()} (as table {title})", ""]
        out += [coverage_md(_select(ctx.data, (mode,)), _select(ctx.missing, (mode,))), ""]
        if part.empty:
            out += ["**No data.**", ""]
            continue
        datasets = sorted(part[DATASET].unique(), key=dataset_sort_key)
        pairs = part[[SPARSITY, METHOD]].drop_duplicates()
        pairs = pairs.assign(_k=pairs[METHOD].map(name_key)).sort_values([SPARSITY, "_k"])
        body = []
        for _, pair in pairs.iterrows():
            sel = part[(part[METHOD] == pair[METHOD]) & (part[SPARSITY] == pair[SPARSITY])]
            sel = sel.set_index(DATASET)
            row = [pair[METHOD], _pct(pair[SPARSITY])]
            for dataset in datasets:
                if dataset not in sel.index:
                    row.append("—")
                    continue
                c = sel.loc[dataset]
                mark = " †" if (mode, pair[METHOD], pair[SPARSITY], dataset) in short else ""
                row.append(_pm(c["mean"], c["se"]) + mark)
            counts = sel["count"]
            row.append(str(counts.min()) if counts.min() == counts.max()
                       else f"{counts.min()}–{counts.max()}")
            body.append(row)
        out.append(md_table(["method", "sparsity", *datasets, "seeds"], body))
        out += ["", "Mean ± standard error (std ddof=1 / √n) over seeds, in percent. "
                "† fewer seeds than the other cells of this mode; — no usable trial.", ""]
    return "\n".join(out)


def _section_alpha(ctx: _Context) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    alpha = tables.alpha_table(ctx.data)
    per_dataset = tables.alpha_by_dataset(ctx.data)
    out = ["## Relative increase in error α over the dense baseline", ""]
    out += [coverage_md(_select(ctx.data), ctx.missing), ""]
    if alpha.empty:
        out.append("**No data** (α needs sparse and dense trials of the same dataset and mode).")
        return "\n".join(out), alpha, per_dataset
    transfer = _select(ctx.data)
    sparse_cells = transfer[(transfer[SPARSITY] > 0) & usable(transfer)]
    dense_cells = transfer[(transfer[SPARSITY] == 0) & usable(transfer)]
    lacking = sorted(
        set(zip(sparse_cells[DATASET], sparse_cells[MODE]))
        - set(zip(dense_cells[DATASET], dense_cells[MODE]))
    )
    if lacking:
        out += ["No dense baseline, so no α, for: "
                + ", ".join(f"{d} ({m})" for d, m in lacking) + ".", ""]
    modes = [m for m in TRANSFER_MODES if (alpha[MODE] == m).any()]
    groups = [g for g in tables.ALPHA_GROUPS if (alpha[GROUP] == g).any()]
    headers = ["method", "sparsity"] + [f"{m}: {g}" for m in modes for g in groups]
    pairs = alpha[[METHOD, SPARSITY]].drop_duplicates()
    pairs = pairs.assign(_k=pairs[METHOD].map(name_key)).sort_values(["_k", SPARSITY])
    body = []
    indexed = alpha.set_index([METHOD, SPARSITY, MODE, GROUP])
    for _, pair in pairs.iterrows():
        name = pair[METHOD] + (" ‡" if is_lottery_ticket(pair[METHOD]) else "")
        row = [name, _pct(pair[SPARSITY])]
        for m in modes:
            for g in groups:
                key = (pair[METHOD], pair[SPARSITY], m, g)
                if key not in indexed.index:
                    row.append("—")
                    continue
                r = indexed.loc[key]
                row.append(f"{_pm(r['alpha_mean'], r['alpha_se'], 3)} ({int(r['n_datasets'])})")
        body.append(row)
    out.append(md_table(headers, body))
    out += [
        "",
        "α(D,S) = (err(D,S) − err(D,B)) / err(D,B) with err = 100 − accuracy, accuracies "
        "averaged over seeds first; cells give mean ± standard error over datasets and, in "
        "brackets, the number of datasets. Negative α: fewer errors than dense. "
        "‡ LTH-T: kept here and in `alpha.csv`, but left out of the linear-finetuning figures "
        "as in the paper. Written to `alpha.csv`; per-dataset values in `alpha_by_dataset.csv`.",
    ]
    if (per_dataset[GROUP] == UNKNOWN).any():
        out += ["", "Datasets of unknown group count in 'all' only."]
    return "\n".join(out), alpha, per_dataset


def _linear_without_lth(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~((frame[MODE] == LINEAR) & frame[METHOD].map(is_lottery_ticket))]


def _section_fig2(ctx: _Context, alpha: pd.DataFrame) -> str:
    out = ["## Figure 2: accuracy at 80 % and α vs sparsity", ""]
    rows = _select(ctx.data, sparsities=(0, FIG2_SPARSITY), drop_lth_linear=True)
    miss = _select(ctx.missing, sparsities=(0, FIG2_SPARSITY), drop_lth_linear=True)
    out += ["### Accuracy at 80 % sparsity per dataset", "", coverage_md(rows, miss), ""]
    cells = _linear_without_lth(ctx.cells[ctx.cells[MODE].isin(TRANSFER_MODES)])
    path = figures.accuracy_bars(
        cells, FIG2_SPARSITY, ctx.out_dir / "fig2_accuracy_80.png", ctx.colours,
        f"Transfer accuracy at {FIG2_SPARSITY} % sparsity (mean ± SE over seeds)",
    )
    if path:
        ctx.figures.append(path)
        out.append(_figure_md(
            path, ctx.out_dir,
            f"Figure 2 (top): accuracy of the dense baseline (grey) and each method at "
            f"{FIG2_SPARSITY} % sparsity per dataset, a panel per finetuning mode; error bars "
            "are standard errors over seeds; the y axis does not start at 0. LTH-T is left out "
            "of the linear panel, as in the paper.",
        ))
    else:
        out.append(f"**No data** at {FIG2_SPARSITY} % sparsity.")
    out += ["", "### α vs sparsity", "", coverage_md(_select(ctx.data), ctx.missing), ""]
    all_groups = _linear_without_lth(alpha[alpha[GROUP] == "all"]) if not alpha.empty else alpha
    path = figures.alpha_vs_sparsity(
        all_groups, ctx.out_dir / "fig2_alpha_vs_sparsity.png", ctx.colours,
        "Relative increase in error over dense vs sparsity (all datasets)",
    )
    if path:
        ctx.figures.append(path)
        out.append(_figure_md(
            path, ctx.out_dir,
            "Figure 2 (bottom): mean relative increase in error α over all datasets vs sparsity, "
            "one line per method, error bars are standard errors over datasets; lower is "
            "better, the dashed line is the dense baseline. LTH-T is left out of the linear "
            "panel.",
        ))
    else:
        out.append("**No data** for α.")
    return "\n".join(out)


def _section_fig3(ctx: _Context, per_dataset: pd.DataFrame) -> str:
    out = ["## Figure 3: α vs task difficulty", ""]
    diff = tables.difficulty(ctx.data)
    rows = _select(ctx.data, sparsities=(0, *FIG3_SPARSITIES), drop_lth_linear=True)
    miss = _select(ctx.missing, sparsities=(0, *FIG3_SPARSITIES), drop_lth_linear=True)
    out += [coverage_md(rows, miss), ""]
    if diff.empty:
        return "\n".join(out + ["**No data** (no dense trials)."])
    out.append(md_table(
        ["dataset", "group", "dense linear (%)", "dense full (%)", "difficulty (pp)"],
        [[r[DATASET], r[GROUP], _num(r["dense_linear"]), _num(r["dense_full"]),
          _num(r["difficulty"])] for _, r in diff.iterrows()],
    ))
    out += ["", "Task difficulty = dense full-finetuning accuracy − dense linear-finetuning "
            "accuracy (means over seeds); a larger gap means the ImageNet features fit the task "
            "less well.", ""]
    no_diff = diff.loc[diff["difficulty"].isna(), DATASET].tolist()
    if no_diff:
        out += ["Left out (no dense baseline in both modes): " + ", ".join(no_diff) + ".", ""]
    data = _linear_without_lth(per_dataset) if not per_dataset.empty else per_dataset
    path = None
    if not data.empty:
        path = figures.alpha_vs_difficulty(
            data, diff, FIG3_SPARSITIES, ctx.out_dir / "fig3_alpha_vs_difficulty.png",
            ctx.colours, "Relative increase in error vs task difficulty",
        )
    if path:
        ctx.figures.append(path)
        out.append(_figure_md(
            path, ctx.out_dir,
            "Figure 3: α of each method on each dataset vs the dataset's task difficulty, at "
            f"{' and '.join(_pct(s) for s in FIG3_SPARSITIES)} sparsity (columns); top row "
            "linear finetuning as in the paper, a second row full finetuning when present. "
            "Circles: general datasets, triangles: specialized; dashed lines: least-squares "
            "trend per method; below 0 the sparse model errs less than dense. LTH-T is left out "
            "of the linear row.",
        ))
    else:
        out.append("**No data** (α and difficulty need dense trials in both modes and sparse "
                   f"trials at {' or '.join(_pct(s) for s in FIG3_SPARSITIES)}).")
    return "\n".join(out)


def _speed_coverage(speed: pd.DataFrame, rows: int, failed: int) -> str:
    """What Figure 4 rests on: rows, rows without online accuracy, extrapolated epochs, the
    datasets, and what the loader share measures."""
    text = f"**Coverage.** Rests on {rows - failed} speed row(s)"
    text += f"; {failed} failed speed trial(s) excluded." if failed else "."
    unmatched = speed[speed["gap"].isna()]
    if not unmatched.empty:
        text += (" No online test accuracy (synthetic images have no test split, or no dense "
                 "run) for: " + ", ".join(
                     f"{r[METHOD]} {_pct(r[SPARSITY])}" + (f" on {r[DATASET]}" if r[DATASET]
                                                           else "")
                     for _, r in unmatched.iterrows()) + ".")
    flags = speed[EPOCH_EXTRAPOLATED]
    extrapolated = int((flags == True).sum())  # noqa: E712 - NaN, True or False
    if extrapolated:
        text += (f" {extrapolated} of {len(speed)} epoch time(s) are **extrapolated** from the "
                 "epoch's first batches (the first, which carries the loader's start, then the "
                 "later ones' median pace for the rest of the epoch; the study key "
                 "`speed.online_batches`, null for whole epochs), marked below; their "
                 "classifier trained on those batches only.")
    elif (flags == False).any():  # noqa: E712
        text += " Every epoch time is a whole online epoch, timed."
    datasets = sorted({str(x) for x in speed[DATASET] if str(x)}, key=name_key)
    if datasets:
        text += f" Online epochs on: {', '.join(datasets)}."
    if speed[LOADER_SHARE].notna().any():
        text += (" Loader share: the time the training loop waited on its DataLoader (worker "
                 "processes, study key `speed.loader_workers`) / the epoch's time; loading is "
                 "the same work for both backbones, so a sparse run that mostly waits on it "
                 "times the loader, not DeepSparse.")
    return text


def _speed_fig4(ctx: _Context, arch: str | None) -> str:
    on = f" (backbones of `{arch}`)" if arch else ""
    out = [f"### Figure 4: speed vs accuracy{on}", ""]
    d = ctx.data
    speed_rows = d[d[MODE] == SPEED]
    failed = int((speed_rows[STATUS] == FAILED).sum())
    speed = tables.speed_vs_accuracy(d)
    if speed.empty:
        text = f"**Coverage.** Rests on {len(speed_rows) - failed} speed row(s)."
        return "\n".join(out + [text, "", "**No data** (no rows with mode `speed` and timings)."])
    out += [_speed_coverage(speed, len(speed_rows), failed), ""]
    body = []
    for _, r in speed.iterrows():
        epoch = {True: "extrapolated", False: "whole"}.get(r[EPOCH_EXTRAPOLATED], "—")
        body.append([r[METHOD], _pct(r[SPARSITY]), r[DATASET] or "—", _num(r[EPOCH_TIME_S]),
                     _num(r[DENSE_EPOCH_TIME_S]), epoch, _num(r[SPEEDUP_EPOCH]),
                     _num(r[SPEEDUP_INFERENCE]), _num(r[LOADER_SHARE]),
                     _num(r[DENSE_LOADER_SHARE]), _num(r[ONLINE_ACCURACY], 1),
                     _num(r[DENSE_ONLINE_ACCURACY], 1), _pm(r["gap"], r["gap_se"]), int(r["n"])])
    out.append(md_table(
        ["method", "sparsity", "dataset", "epoch time (s)", "dense epoch time (s)", "epoch",
         "epoch speed-up (×)", "inference speed-up (×)", "loader share", "dense loader share",
         "online accuracy (%)", "dense online accuracy (%)", "accuracy gap to dense (pp)",
         "rows"],
        body,
    ))
    out.append("")
    path = figures.speed_vs_gap(speed, ctx.out_dir / "fig4_speed_vs_accuracy.png", ctx.colours,
                                "Online linear finetuning: speed-up vs accuracy gap to dense")
    if path:
        ctx.figures.append(path)
        out.append(_figure_md(
            path, ctx.out_dir,
            "Figure 4: training speed-up of online linear finetuning in DeepSparse (dense "
            "epoch time / sparse epoch time) vs the gap in test accuracy between the "
            "classifiers those same runs trained (sparse − dense, percentage points), one "
            "panel per dataset, one marker per method; the star is the dense backbone.",
        ))
        return "\n".join(out)
    return "\n".join(out + [_speed_fallback(ctx, speed)])


def _speed_fallback(ctx: _Context, speed: pd.DataFrame) -> str:
    """Speed-up vs sparsity, when no speed row has an online accuracy gap to plot against."""
    path = figures.speedup_vs_sparsity(
        speed, ctx.out_dir / "fig4_speedup_vs_sparsity.png", ctx.colours,
        "DeepSparse speed-up over dense vs sparsity",
    )
    if not path:
        return "**No data** to draw: the speed rows carry no speed-up or epoch time."
    ctx.figures.append(path)
    return "\n".join([
        "No speed row has an online test accuracy for its sparse and dense runs (synthetic "
        "images have no test split), so Figure 4 shows speed-up vs sparsity instead of speed "
        "vs accuracy gap.\n",
        _figure_md(
            path, ctx.out_dir,
            "Figure 4 (fallback): speed-up of the sparse backbone over the dense one vs "
            "sparsity, one line per method, averaged over datasets; the dashed line is no "
            "speed-up.",
        ),
    ])


REFERENCE_VALUES = (SPEEDUP_INFERENCE, MACS_SHARE, SPEEDUP_EPOCH, LOADER_SHARE,
                    DENSE_LOADER_SHARE, DS_MS_B64, DS_DENSE_MS_B64, BATCH)


def reference_rows(data: pd.DataFrame) -> pd.Series:
    """Rows of the random-weight speed reference: ``weights == "random"`` (or, in tables
    without that column, speed rows of a ``random_*`` method)."""
    speed = data[MODE] == SPEED
    if WEIGHTS in data.columns:
        weights = data[WEIGHTS].astype(object).where(data[WEIGHTS].notna(), "")
        return weights.astype(str).str.strip().str.lower() == "random"
    return speed & data[METHOD].map(is_random_reference)


def reference_table(reference: pd.DataFrame) -> pd.DataFrame:
    """Random-weight speed rows averaged per (arch,) method, sparsity and sparsity profile.

    Returns columns (arch,) method, sparsity, sparsity_profile, the means of the timing columns
    present (speed-ups, ``macs_share``, DeepSparse ms) plus ideal_speedup = 1 / macs_share, n.
    """
    d = reference[reference[STATUS] != FAILED].copy()
    keys = [c for c in (ARCH, METHOD, SPARSITY) if c in d.columns]
    d[SPARSITY_PROFILE] = (d[SPARSITY_PROFILE].astype(object).fillna("").astype(str)
                           if SPARSITY_PROFILE in d.columns else "")
    keys.append(SPARSITY_PROFILE)
    values = [c for c in REFERENCE_VALUES if c in d.columns]
    for column in values:
        d[column] = pd.to_numeric(d[column], errors="coerce")
    if d.empty:
        return pd.DataFrame(columns=keys + values + ["ideal_speedup", "n"])
    grouped = d.groupby(keys, dropna=False, sort=False)
    out = grouped[values].mean() if values else grouped.size().to_frame("n").iloc[:, :0]
    out["n"] = grouped.size()
    out = out.reset_index()
    if MACS_SHARE in out.columns:
        share = out[MACS_SHARE]
        out.insert(list(out.columns).index(MACS_SHARE) + 1, "ideal_speedup",
                   (1.0 / share).where(share > 0))
    return tables.sort_rows(out)


def _speed_reference(ctx: _Context, reference: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    table = reference_table(reference)
    if reference.empty:
        return "", table
    out: list[str] = []
    archs = (sorted(reference[ARCH].unique(), key=name_key) if ARCH in reference.columns
             else [None])
    for arch in archs:
        rows = reference if arch is None else reference[reference[ARCH] == arch]
        part = table if arch is None else table[table[ARCH] == arch]
        name = arch_label(arch) if arch else "network"
        failed = int((rows[STATUS] == FAILED).sum())
        out += [f"### Speed reference: random-weight {name}", ""]
        text = (f"DeepSparse timings of {name} with random weights pruned to each sparsity: the "
                "paper's speed setting, run on this machine beside the study. These networks "
                "are not trained, so they have no accuracy and enter no other table of this "
                f"report. **Coverage.** {len(rows) - failed} speed row(s)")
        text += f"; {failed} failed speed trial(s) excluded." if failed else "."
        out += [text, ""]
        if part.empty:
            out += ["**No data** (every random-weight speed trial failed).", ""]
            continue
        columns = [(SPARSITY_PROFILE, "profile", str),
                   (SPEEDUP_INFERENCE, "inference speed-up (×)", _num),
                   ("ideal_speedup", "ideal speed-up: 1 / MACs share (×)", _num),
                   (SPEEDUP_EPOCH, "online epoch speed-up (×)", _num),
                   (LOADER_SHARE, "loader share", _num),
                   (DENSE_LOADER_SHARE, "dense loader share", _num),
                   (DS_MS_B64, "DeepSparse sparse (ms/batch)", _num),
                   (DS_DENSE_MS_B64, "DeepSparse dense (ms/batch)", _num),
                   (BATCH, "batch", lambda v: "—" if pd.isna(v) else f"{float(v):g}")]
        columns = [c for c in columns if c[0] in part.columns]
        out.append(md_table(
            ["method", "sparsity", *(c[1] for c in columns), "rows"],
            [[r[METHOD], _pct(r[SPARSITY]), *(fmt(r[c]) or "—" for c, _, fmt in columns),
              int(r["n"])] for _, r in part.iterrows()],
        ))
        out.append("")
        slug = _slug(str(arch)) if arch else "network"
        path = figures.speedup_vs_sparsity(
            part, ctx.out_dir / f"speed_reference_{slug}.png", ctx.colours,
            f"DeepSparse speed-up of random-weight {name} over dense vs sparsity",
        )
        if path:
            ctx.figures.append(path)
            out.append(_figure_md(
                path, ctx.out_dir,
                f"Speed reference: speed-up of random-weight {name} pruned to each sparsity over "
                "the dense network (DeepSparse, same machine); the dashed line is no speed-up.",
            ))
            out.append("")
    out.append("Written to `speed_reference.csv`.")
    return "\n".join(out), table


def _section_speed(
    ctx: _Context, arch: str | None, reference: pd.DataFrame
) -> tuple[str, pd.DataFrame]:
    """Figure 4 for the study's own backbones, then the random-weight reference, apart."""
    text, table = _speed_reference(ctx, reference)
    parts = ["## Speed", "", _speed_fig4(ctx, arch)]
    if text:
        parts += ["", text]
    return "\n".join(parts), table


def _section_filters(ctx: _Context) -> tuple[str, pd.DataFrame]:
    out = ["## Appendix E: fully pruned convolution filters", ""]
    filters = tables.filters_table(ctx.data)
    d = ctx.data
    source = tables.statistics_mode(d)
    rows_of = "checkpoint" if source == CHECKPOINT else "upstream"
    upstream = d[d[MODE] == source]
    n_rows = int(filters["n"].sum()) if not filters.empty else 0
    text = f"**Coverage.** Rests on {n_rows} {rows_of} row(s) with `filters_pruned_share`"
    transfer = _select(d)
    pairs = set(zip(transfer.loc[transfer[SPARSITY] > 0, METHOD],
                    transfer.loc[transfer[SPARSITY] > 0, SPARSITY]))
    have = set(zip(filters[METHOD], filters[SPARSITY])) if not filters.empty else set()
    lacking = sorted(pairs - have, key=lambda p: (name_key(p[0]), p[1]))
    failed = int((upstream[STATUS] == FAILED).sum())
    text += f"; {failed} failed {rows_of} row(s) excluded" if failed else ""
    if lacking:
        text += "; missing for " + ", ".join(f"{m} {_pct(s)}" for m, s in lacking)
    out += [text + ".", ""]
    if filters.empty:
        return "\n".join(out + ["**No data** (no rows with mode `checkpoint` or `upstream` "
                                "and `filters_pruned_share`)."]), filters
    out.append(md_table(
        ["method", "sparsity", "fully pruned filters (%)", "measured sparsity (%)",
         "upstream accuracy (%)", "rows"],
        [[r[METHOD], _pct(r[SPARSITY]), _num(r["filters_pruned_pct"]),
          _num(r[SPARSITY_MEASURED]), _num(r["upstream_accuracy"]), int(r["n"])]
         for _, r in filters.iterrows()],
    ))
    out.append("")
    path = figures.filters_bars(filters, ctx.out_dir / "appE_filters_pruned.png", ctx.colours,
                                "Convolution filters fully pruned in the upstream model")
    if path:
        ctx.figures.append(path)
        out.append(_figure_md(
            path, ctx.out_dir,
            "Appendix E: share of convolution filters whose weights are all zero, per method "
            "(colour) and sparsity (groups). More fully pruned filters leave fewer features to "
            "train in full finetuning.",
        ))
    layers = tables.layer_table(d)
    path = figures.layer_sparsity_lines(layers, ctx.out_dir / "layer_sparsity.png",
                                        ctx.colours, "Sparsity per layer of each backbone")
    if path:
        ctx.figures.append(path)
        out += ["", _figure_md(
            path, ctx.out_dir,
            "Per-layer sparsity of every sparse backbone (from the checkpoint stage), layers in "
            "the network's order, one panel per global sparsity; all values in "
            "`layer_sparsity.csv`, with each convolution's share of fully pruned filters.",
        )]
    return "\n".join(out), filters


def _section_table3(ctx: _Context) -> tuple[str, pd.DataFrame]:
    """Table 3: upstream validation accuracy of every backbone, from the checkpoint stage."""
    out = ["## Table 3: upstream validation accuracy of each backbone", ""]
    t3 = tables.upstream_table(ctx.data)
    if t3.empty:
        return "\n".join(out + ["**No data** (no rows with mode `checkpoint`: the study ran "
                                "no checkpoint stage)."]), t3
    measured = t3["top1"].notna()
    notes = sorted(set(t3.loc[~measured, UPSTREAM_EVAL].astype(str)) - {""})
    text = (f"**Coverage.** {int(measured.sum())} of {len(t3)} backbone(s) have an upstream "
            "accuracy")
    out += [text + ".", ""]
    if notes:
        out += ["Not measured: " + " · ".join(notes[:3])
                + (f" (and {len(notes) - 3} more)" if len(notes) > 3 else ""), ""]
    if not measured.any():
        return "\n".join(out), t3
    sets = sorted(set(t3.loc[measured, UPSTREAM_EVAL].astype(str)))
    out += ["Measured: " + " · ".join(sets[:3]), ""]
    real = {"real": "ReaL top-1 (%)"} if t3["real"].notna().any() else {}
    v2 = {tables.TABLE3_VALUES[c]: f"V2 {name} (%)" for c, name in ACCURACY_V2_VARIANTS.items()}
    v2 = {c: head for c, head in v2.items() if t3[c].notna().any()}
    average = {"v2": "ImageNetV2 (average) (%)"} if v2 or t3["v2"].notna().any() else {}
    shown = {"top1": "top-1 (%)", **real, **average, **v2}
    out.append(md_table(["method", "sparsity", *shown.values()],
                        [[r[METHOD], _pct(r[SPARSITY]), *(_num(r[c]) for c in shown)]
                         for _, r in t3[measured].iterrows()]))
    if v2:
        partial = int((measured & t3["v2"].isna() & t3[list(v2)].notna().any(axis=1)).sum())
        out += ["", f"ImageNetV2 (average) is the mean of its three variants "
                f"({', '.join(ACCURACY_V2_VARIANTS.values())}), as the paper's Table 3 reports "
                "it, shown beside each." + (
                    f" **It is left empty for {partial} backbone(s)** that lack a variant; "
                    "`upstream_eval` in `table3.csv` names the missing ones." if partial else "")]
    out += ["", "Written to `table3.csv`. Finding 3's note compares these accuracies with each "
            "backbone's mean α (\"transfer tracks upstream accuracy\")."]
    return "\n".join(out), t3


EPOCH_RULES = {"top1": "best by top-1", "metric": "best by the dataset's metric",
               "last": "last epoch"}


def _section_last_epoch(ctx: _Context) -> str:
    d = _select(ctx.data)
    if ACCURACY_LAST not in d.columns:
        return ""
    ok = usable(d) & pd.to_numeric(d[ACCURACY_LAST], errors="coerce").notna()
    if not ok.any():
        return ""
    gap = d.loc[ok, ACCURACY] - pd.to_numeric(d.loc[ok, ACCURACY_LAST])
    rules = (d.loc[ok, EPOCH_SELECTION].fillna("metric").astype(str)
             if EPOCH_SELECTION in d.columns else pd.Series("metric", index=gap.index))
    rows = []
    for mode in TRANSFER_MODES:
        in_mode = d.loc[ok, MODE] == mode
        for rule in sorted(rules[in_mode].unique()):
            g = gap[in_mode & (rules == rule)]
            if not g.empty:
                rows.append([mode, EPOCH_RULES.get(rule, rule), len(g), _num(g.mean()),
                             _num(g.max())])
    return "\n".join([
        "## Best vs last epoch", "",
        "Every number above is the dataset's metric at the epoch each trial reports, picked by "
        "the rule below (the study key `modes.<mode>.epoch_selection`; the reference code "
        "picked the best epoch by top-1). The last epoch's accuracy differs by (reported − "
        "last, percentage points):", "",
        md_table(["mode", "epoch picked", "trials", "mean gap", "largest gap"], rows), "",
        "Per-cell statistics of both are in `cells.csv` (`last_*` columns).",
    ])


def _section_missing(ctx: _Context) -> str:
    out = ["## Missing trials", ""]
    if ctx.missing.empty:
        return "\n".join(out + ["Every cell of the grid implied by the table has all its seeds."])
    out.append(
        f"{len(ctx.missing)} cell(s) of the grid implied by the table (every method × sparsity "
        "× dataset seen, per finetuning mode) have fewer usable seeds than the most seen in "
        "that mode. All of them are in `missing.csv`."
    )
    out.append("")
    head = ctx.missing.head(200)
    out.append(md_table(
        ["mode", "method", "sparsity", "dataset", "seeds", "expected", "failed", "not run"],
        [[r[MODE], r[METHOD], _pct(r[SPARSITY]), r[DATASET], r["n_seeds"], r["n_expected"],
          r["failed_seeds"] or "—", r["missing_seeds"] or "—"] for _, r in head.iterrows()],
    ))
    if len(ctx.missing) > len(head):
        out += ["", f"… and {len(ctx.missing) - len(head)} more."]
    return "\n".join(out)


# ----------------------------------------------------------------------------- entry point


def _cells_with_last(data: pd.DataFrame) -> pd.DataFrame:
    cells = tables.cell_stats(data)
    if ACCURACY_LAST not in data.columns or cells.empty:
        return cells
    last = tables.cell_stats(data, ACCURACY_LAST)
    if last.empty:
        return cells
    keys = [c for c in ([ARCH] if ARCH in cells.columns else []) + [METHOD, SPARSITY, DATASET,
                                                                     MODE]]
    last = last[keys + ["mean", "std", "se", "count"]].rename(
        columns={"mean": "last_mean", "std": "last_std", "se": "last_se", "count": "last_count"}
    )
    merged = cells.merge(last, on=keys, how="left")
    merged["last_count"] = merged["last_count"].astype("Int64")
    return merged


def resolve_labels(data: pd.DataFrame, given: Mapping[str, str] | None = None) -> dict[str, str]:
    """Method key -> label: ``given``, else the table's ``method_label`` column, else the
    paper's label (`reports.naming.method_labels`)."""
    from_column: dict[str, str] = {}
    if METHOD_LABEL in data.columns:
        pairs = data[[METHOD, METHOD_LABEL]].dropna()
        for key, label in zip(pairs[METHOD], pairs[METHOD_LABEL]):
            if str(label).strip():
                from_column.setdefault(str(key), str(label).strip())
    return _method_labels(data[METHOD].unique(), {**from_column, **dict(given or {})})


def with_keys(frame: pd.DataFrame, keys: Mapping[str, str]) -> pd.DataFrame:
    """A table computed on labels, as a CSV keeps it: the key in ``method`` and the label in
    ``method_label`` beside it; Table 1's ``best_methods`` (keys) gets ``best_methods_label``."""
    out = frame.drop(columns=[METHOD_LABEL], errors="ignore")
    if METHOD in out.columns:
        label = out[METHOD]
        out = out.assign(**{METHOD: label.map(lambda v: keys.get(v, v))})
        out.insert(list(out.columns).index(METHOD) + 1, METHOD_LABEL, label)
    if "best_methods" in out.columns:
        label = out["best_methods"]

        def to_keys(text: object) -> object:
            if not isinstance(text, str) or not text:
                return text
            return LIST_SEPARATOR.join(keys.get(v, v) for v in text.split(LIST_SEPARATOR))

        out = out.assign(best_methods=label.map(to_keys))
        out.insert(list(out.columns).index("best_methods") + 1, "best_methods_label", label)
    return out


def _insert_after(columns: Sequence[str], after: str, name: str) -> tuple[str, ...]:
    columns = list(columns)
    columns.insert(columns.index(after) + 1, name)
    return tuple(columns)


TABLE1_CSV_COLUMNS = _insert_after(tables.TABLE1_COLUMNS, "best_methods", "best_methods_label")
ALPHA_CSV_COLUMNS = _insert_after(tables.ALPHA_COLUMNS, METHOD, METHOD_LABEL)


def write_report(
    results: pd.DataFrame,
    out_dir: Path,
    title: str = DEFAULT_TITLE,
    source: str = "results table passed by the caller",
    *,
    main_arch: str | None = None,
    method_labels: Mapping[str, str] | None = None,
    rehearsal: bool = False,
    compare_paper: bool = True,
    expected_seeds: Mapping[str, Mapping[str, int]] | None = None,
) -> ReportPaths:
    """Write report.md, the CSV tables and the figures of a study into ``out_dir``.

    Args:
        results: long results table (columns of `common.columns`; at least method, sparsity,
            dataset, mode, seed, accuracy). Sparsity in percent or as fractions.
        out_dir: folder to write into (created); files are replaced atomically.
        title: first heading of report.md.
        source: where the table came from, quoted in the report.
        main_arch: the study's main architecture (the sweep passes its study's ``arch``);
            used when it has finetuning rows, see `pick_main_arch`.
        method_labels: method key -> label shown in tables and figures (the sweep passes its
            study's labels); over a ``method_label`` column and the paper's labels.
        rehearsal: the numbers are a rehearsal's (synthetic); also so when any row of
            ``results`` has a true ``rehearsal`` column. Every page then opens with a
            REHEARSAL banner, every figure is stamped and every CSV starts with a
            ``rehearsal`` column (see `is_rehearsal`).
        compare_paper: add the section comparing each cell shared with the paper's published
            results (`reports.paper_comparison`); False for the paper's own results.
        expected_seeds: arch -> mode -> seeds each cell should have (what was run); without
            it a mode expects the most seeds any of its cells has (see `missing_cells`).

    Returns:
        The paths written. Files: report.md, table1.csv, alpha.csv, alpha_by_dataset.csv,
        cells.csv, missing.csv, difficulty.csv, plus speed.csv, speed_reference.csv,
        filters_pruned.csv and the PNG figures where there is data. Other architectures go to
        ``out_dir/arch-<name>/``.

    Raises:
        ValueError: the table lacks a required column or has an unreadable sparsity.
    """
    out_dir = Path(out_dir)
    if rehearsal or is_rehearsal(results):
        with figures.stamped(REHEARSAL_STAMP):
            return _write_all(results, out_dir, f"REHEARSAL: {title}", source, main_arch,
                              method_labels, rehearsal=True, compare_paper=compare_paper,
                              expected_seeds=expected_seeds)
    return _write_all(results, out_dir, title, source, main_arch, method_labels,
                      compare_paper=compare_paper, expected_seeds=expected_seeds)


REHEARSAL_STAMP = "REHEARSAL\nsynthetic numbers"
REHEARSAL_BANNER = (
    "> **REHEARSAL — synthetic numbers, not results.** Every trial behind this page ran the "
    "rehearsal stand-in (`trainables/rehearsal.py`, `python -m orchestrator.sweep "
    "--rehearsal`), which makes its numbers up from the trial id: nothing here was measured. "
    "It checks the orchestration at the study's size (grid, Ray Tune, ledger, MLflow, this "
    "report) and says nothing about sparse transfer. Every figure is stamped REHEARSAL and "
    "every CSV starts with a `rehearsal` column."
)


def is_rehearsal(results: pd.DataFrame) -> bool:
    """True when any row is a rehearsal's: a ``rehearsal`` column holding True (a bool from
    results.parquet, the text ``True`` from an MLflow tag)."""
    if REHEARSAL not in results.columns:
        return False
    return bool(results[REHEARSAL].map(
        lambda v: v is True or str(v).strip().lower() in ("true", "1", "1.0")).any())


def _marked(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a first column ``rehearsal`` = True (a rehearsal's CSVs)."""
    rest = frame.drop(columns=[REHEARSAL], errors="ignore")
    return rest.assign(**{REHEARSAL: True})[[REHEARSAL, *rest.columns]]


def _write_all(
    results: pd.DataFrame,
    out_dir: Path,
    title: str,
    source: str,
    main_arch: str | None,
    method_labels: Mapping[str, str] | None,
    rehearsal: bool = False,
    compare_paper: bool = True,
    expected_seeds: Mapping[str, Mapping[str, int]] | None = None,
) -> ReportPaths:
    data, notes = prepare_with_notes(results, source)
    seeds = expected_seeds or {}
    labels = resolve_labels(data, method_labels)
    keys = {label: key for key, label in labels.items()}
    is_reference = reference_rows(data)
    # Everything is computed on labels, so tables and figures show them; CSVs map back.
    shown = data.drop(columns=[METHOD_LABEL], errors="ignore")
    shown = shown.assign(**{METHOD: shown[METHOD].map(labels)})
    reference = shown[is_reference].reset_index(drop=True)
    rest = shown[~is_reference].reset_index(drop=True)
    main = pick_main_arch(rest, main_arch)
    if main is None:
        whole = pd.concat([rest, reference], ignore_index=True)
        return _write_one(rest, notes, out_dir, title, source, None, (), reference, keys, whole,
                          rehearsal=rehearsal, compare_paper=compare_paper,
                          expected=seeds.get(main_arch or ""))
    rest = rest.assign(**{ARCH: rest[ARCH].replace("", main)})
    whole = pd.concat([rest, reference], ignore_index=True)
    others = sorted((a for a in rest[ARCH].unique() if a != main), key=name_key)
    sub = tuple(
        _write_one(rest[rest[ARCH] == a].reset_index(drop=True), notes,
                   out_dir / f"arch-{_slug(a)}", f"{title} ({a})", source, a, (),
                   reference.iloc[0:0], keys, whole, parent=out_dir / "report.md",
                   rehearsal=rehearsal, compare_paper=compare_paper, expected=seeds.get(a))
        for a in others
    )
    return _write_one(rest[rest[ARCH] == main].reset_index(drop=True), notes, out_dir, title,
                      source, main, sub, reference, keys, whole, rehearsal=rehearsal,
                      compare_paper=compare_paper, expected=seeds.get(main))


def _write_one(
    data: pd.DataFrame,
    notes: list[str],
    out_dir: Path,
    title: str,
    source: str,
    arch: str | None,
    others: tuple[ReportPaths, ...],
    reference: pd.DataFrame,
    keys: Mapping[str, str],
    whole: pd.DataFrame,
    parent: Path | None = None,
    rehearsal: bool = False,
    compare_paper: bool = True,
    expected: Mapping[str, int] | None = None,
) -> ReportPaths:
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = _cells_with_last(data)
    missing = tables.missing_cells(data, expected)
    shown_methods = [*data.loc[data[SPARSITY] > 0, METHOD].unique(), *reference[METHOD].unique()]
    ctx = _Context(
        data=data, out_dir=out_dir, notes=notes, missing=missing, cells=cells,
        colours=figures.method_colours(shown_methods),
    )
    drop_arch = [ARCH] if ARCH in data.columns else []

    verdicts = findings.check_findings(whole, arch)
    atomic_write_text(out_dir / "findings.csv",
                      findings.findings_frame(verdicts).to_csv(index=False))
    paper_text, comparison = _section_paper(ctx, arch, compare_paper)
    table1_text, _ = _section_table1(ctx)
    alpha_text, alpha, per_dataset = _section_alpha(ctx)
    sections = [
        f"# {title}",
        REHEARSAL_BANNER if rehearsal else "",
        _contents(arch, others, out_dir, parent, reference),
        _section_data(ctx, source, arch),
        # Findings 1-6 on this arch; 7 (MobileNet) and 8 (ResNet50 speed) on the whole table.
        findings.findings_markdown(verdicts),
        paper_text,
        table1_text,
        _section_per_mode(ctx),
        alpha_text,
        _section_fig2(ctx, alpha),
        _section_fig3(ctx, per_dataset),
    ]
    speed_text, reference_table_ = _section_speed(ctx, arch, reference)
    sections.append(speed_text)
    filters_text, filters = _section_filters(ctx)
    table3_text, table3 = _section_table3(ctx)
    sections += [filters_text, table3_text, _section_last_epoch(ctx), _section_missing(ctx)]

    table1 = tables.table1(data, TABLE1_SPARSITIES).drop(columns=drop_arch)
    alpha = alpha.drop(columns=drop_arch, errors="ignore")
    if list(table1.columns) != list(tables.TABLE1_COLUMNS):
        table1 = table1.reindex(columns=tables.TABLE1_COLUMNS)
    if list(alpha.columns) != list(tables.ALPHA_COLUMNS):
        alpha = alpha.reindex(columns=tables.ALPHA_COLUMNS)
    csv = {
        "table1": table1,
        "alpha": alpha,
        "alpha_by_dataset": per_dataset,
        "cells": cells,
        "missing": missing,
        "difficulty": tables.difficulty(data),
        "paper_comparison": comparison,
    }
    if not filters.empty:
        csv["filters_pruned"] = filters
    if not table3.empty:
        csv["table3"] = table3
    layers = tables.layer_table(data)
    if not layers.empty:
        csv["layer_sparsity"] = layers
    speed = tables.speed_table(data)
    if not speed.empty:
        csv["speed"] = tables.speed_vs_accuracy(data)
    if not reference.empty:
        csv["speed_reference"] = reference_table_
    if rehearsal:
        csv = {name: _marked(frame) for name, frame in csv.items()}
        found = out_dir / "findings.csv"  # written above
        if found.exists():
            atomic_write_text(found, _marked(pd.read_csv(found)).to_csv(index=False))
    paths = {name: atomic_write_text(out_dir / f"{name}.csv",
                                     with_keys(frame, keys).to_csv(index=False))
             for name, frame in csv.items()}
    report_md = atomic_write_text(
        out_dir / "report.md", "\n\n".join(s.strip() for s in sections if s.strip()) + "\n"
    )
    return ReportPaths(
        out_dir=out_dir,
        report_md=report_md,
        table1_csv=paths["table1"],
        alpha_csv=paths["alpha"],
        cells_csv=paths["cells"],
        missing_csv=paths["missing"],
        csvs=tuple(paths.values()),
        figures=tuple(ctx.figures),
        arch=arch,
        other_archs=others,
        speed_reference_csv=paths.get("speed_reference"),
    )


def _contents(
    arch: str | None,
    others: tuple[ReportPaths, ...],
    out_dir: Path,
    parent: Path | None,
    reference: pd.DataFrame,
) -> str:
    speed = "Speed (Figure 4" + (", speed reference)" if not reference.empty else ")")
    lines = [
        "Contents: Data · The paper's findings, checked · This study next to the paper · "
        "Table 1 · Accuracy per method and "
        f"sparsity · Relative increase in error α · Figure 2 · Figure 3 · {speed} · Appendix E "
        "· Table 3 · Best vs last epoch · Missing trials.",
    ]
    about = []
    if arch is not None and parent is None:
        about.append(f"This report is about the study's main architecture, `{arch}`: the one "
                     "with finetuning results.")
    elif arch is not None:
        about.append(f"This report is about architecture `{arch}`; the study's main report is "
                     f"[report.md]({os.path.relpath(parent, out_dir)}).")
    if others:
        about.append("Other architectures, each in a report of its own: "
                     + ", ".join(f"[{o.arch}]({os.path.relpath(o.report_md, out_dir)})"
                                 for o in others) + ".")
    if not reference.empty:
        names = (sorted({arch_label(a) for a in reference[ARCH]}) if ARCH in reference.columns
                 else ["network"])
        about.append("Random-weight speed timings (" + ", ".join(names) + ") are a reference "
                     "of their own at the end of the speed section, apart from the study's "
                     "results.")
    if about:
        lines += ["", " ".join(about)]
    return "\n".join(lines)
