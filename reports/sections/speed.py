"""Speed: Figure 4 on the study's own backbones (online epoch speed-up against the accuracy gap
of the classifiers those runs trained, ``speed.csv``), then the random-weight speed reference
(the paper's speed setting, timed beside the study, ``speed_reference.csv``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.columns import (ARCH, BATCH, DATASET, DENSE_EPOCH_TIME_S, DENSE_LOADER_SHARE,
                            DENSE_ONLINE_ACCURACY, DS_DENSE_MS_B64, DS_MS_B64, EPOCH_EXTRAPOLATED,
                            EPOCH_TIME_S, LOADER_SHARE, MACS_SHARE, METHOD, MODE,
                            ONLINE_ACCURACY, SPARSITY, SPARSITY_PROFILE, SPEEDUP_EPOCH,
                            SPEEDUP_INFERENCE, STATUS)
from reports import figures, tables
from reports.markdown import NO_NUMBER, figure_md, md_table, num, pct, pm, slug
from reports.naming import arch_label, name_key
from reports.prepare import FINISHED, SPEED
from reports.sections.base import Context, Rendered, Section

FIG4_CAPTION = (
    "Figure 4: training speed-up of online linear finetuning in DeepSparse (dense epoch time / "
    "sparse epoch time) vs the gap in test accuracy between the classifiers those same runs "
    "trained (sparse − dense, percentage points), one panel per dataset, one marker per method; "
    "the star is the dense backbone."
)
FALLBACK_CAPTION = (
    "Figure 4 (fallback): speed-up of the sparse backbone over the dense one vs sparsity, one "
    "line per method, averaged over datasets; the dashed line is no speed-up."
)
FIG4_HEADERS = ["method", "sparsity", "dataset", "epoch time (s)", "dense epoch time (s)",
                "epoch", "epoch speed-up (×)", "inference speed-up (×)", "loader share",
                "dense loader share", "online accuracy (%)", "dense online accuracy (%)",
                "accuracy gap to dense (pp)", "rows"]
REFERENCE_VALUES = (SPEEDUP_INFERENCE, MACS_SHARE, SPEEDUP_EPOCH, LOADER_SHARE,
                    DENSE_LOADER_SHARE, DS_MS_B64, DS_DENSE_MS_B64, BATCH)
REFERENCE_COLUMNS = (
    (SPARSITY_PROFILE, "profile", str),
    (SPEEDUP_INFERENCE, "inference speed-up (×)", num),
    ("ideal_speedup", "ideal speed-up: 1 / MACs share (×)", num),
    (SPEEDUP_EPOCH, "online epoch speed-up (×)", num),
    (LOADER_SHARE, "loader share", num),
    (DENSE_LOADER_SHARE, "dense loader share", num),
    (DS_MS_B64, "DeepSparse sparse (ms/batch)", num),
    (DS_DENSE_MS_B64, "DeepSparse dense (ms/batch)", num),
    (BATCH, "batch", lambda v: NO_NUMBER if pd.isna(v) else f"{float(v):g}"),
)


def render(ctx: Context) -> Rendered:
    text, drawn = _figure4(ctx)
    csvs = {}
    if not tables.speed_table(ctx.data).empty:
        csvs["speed"] = tables.speed_vs_accuracy(ctx.data)
    parts = ["## Speed", "", text]
    if not ctx.reference.empty:
        reference = reference_table(ctx.reference)
        ref_text, ref_drawn = _reference(ctx, reference)
        parts += ["", ref_text]
        drawn += ref_drawn
        csvs["speed_reference"] = reference
    return Rendered("\n".join(parts), csvs, tuple(drawn))


def _figure4(ctx: Context) -> tuple[str, list[Path]]:
    """Figure 4's table and plot on this architecture's speed rows; the fallback plot of
    speed-up vs sparsity when no row has an online accuracy gap."""
    on = f" (backbones of `{ctx.arch}`)" if ctx.arch else ""
    out = [f"### Figure 4: speed vs accuracy{on}", ""]
    d = ctx.data
    speed_rows = d[d[MODE] == SPEED]
    failed = int((speed_rows[STATUS] != FINISHED).sum())
    speed = tables.speed_vs_accuracy(d)
    if speed.empty:
        text = f"**Coverage.** Rests on {len(speed_rows) - failed} speed row(s)."
        return "\n".join(out + [text, "", "**No data** (no rows with mode `speed` and "
                                          "timings)."]), []
    out += [_speed_coverage(speed, len(speed_rows), failed), ""]
    out += [md_table(FIG4_HEADERS, [_fig4_row(r) for _, r in speed.iterrows()]), ""]
    path = figures.speed_vs_gap(speed, ctx.out_dir / "fig4_speed_vs_accuracy.png", ctx.colours,
                                "Online linear finetuning: speed-up vs accuracy gap to dense")
    if path:
        return "\n".join(out + [figure_md(path, ctx.out_dir, FIG4_CAPTION)]), [path]
    path = figures.speedup_vs_sparsity(
        speed, ctx.out_dir / "fig4_speedup_vs_sparsity.png", ctx.colours,
        "DeepSparse speed-up over dense vs sparsity",
    )
    if not path:
        return "\n".join(out + ["**No data** to draw: the speed rows carry no speed-up or "
                                "epoch time."]), []
    return "\n".join(out + [
        "No speed row has an online test accuracy for its sparse and dense runs (synthetic "
        "images have no test split), so Figure 4 shows speed-up vs sparsity instead of speed "
        "vs accuracy gap.\n",
        figure_md(path, ctx.out_dir, FALLBACK_CAPTION),
    ]), [path]


def _fig4_row(r: pd.Series) -> list[object]:
    epoch = {True: "extrapolated", False: "whole"}.get(r[EPOCH_EXTRAPOLATED], NO_NUMBER)
    return [r[METHOD], pct(r[SPARSITY]), r[DATASET] or NO_NUMBER, num(r[EPOCH_TIME_S]),
            num(r[DENSE_EPOCH_TIME_S]), epoch, num(r[SPEEDUP_EPOCH]), num(r[SPEEDUP_INFERENCE]),
            num(r[LOADER_SHARE]), num(r[DENSE_LOADER_SHARE]), num(r[ONLINE_ACCURACY], 1),
            num(r[DENSE_ONLINE_ACCURACY], 1), pm(r["gap"], r["gap_se"]), int(r["n"])]


def _speed_coverage(speed: pd.DataFrame, rows: int, failed: int) -> str:
    """What Figure 4 rests on: rows, rows without online accuracy, extrapolated epochs, the
    datasets, and what the loader share measures."""
    text = f"**Coverage.** Rests on {rows - failed} speed row(s)"
    text += f"; {failed} failed speed trial(s) excluded." if failed else "."
    unmatched = speed[speed["gap"].isna()]
    if not unmatched.empty:
        text += (" No online test accuracy (synthetic images have no test split, or no dense "
                 "run) for: " + ", ".join(
                     f"{r[METHOD]} {pct(r[SPARSITY])}" + (f" on {r[DATASET]}" if r[DATASET]
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


def reference_table(reference: pd.DataFrame) -> pd.DataFrame:
    """Random-weight speed rows averaged per (arch,) method, sparsity and sparsity profile.

    Returns columns (arch,) method, sparsity, sparsity_profile, the means of the timing columns
    present (speed-ups, ``macs_share``, DeepSparse ms) plus ideal_speedup = 1 / macs_share, n.
    """
    d = reference[reference[STATUS] == FINISHED].copy()
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


def _reference(ctx: Context, table: pd.DataFrame) -> tuple[str, list[Path]]:
    """"Speed reference: random-weight <arch>", one part per architecture of the rows."""
    reference = ctx.reference
    out: list[str] = []
    drawn: list[Path] = []
    archs = (sorted(reference[ARCH].unique(), key=name_key) if ARCH in reference.columns
             else [None])
    for arch in archs:
        rows = reference if arch is None else reference[reference[ARCH] == arch]
        part = table if arch is None else table[table[ARCH] == arch]
        text, path = _reference_part(ctx, arch, rows, part)
        out += text
        drawn += [path] if path else []
    out.append("Written to `speed_reference.csv`.")
    return "\n".join(out), drawn


def _reference_part(ctx: Context, arch: str | None, rows: pd.DataFrame,
                    part: pd.DataFrame) -> tuple[list[str], Path | None]:
    """One architecture's random-weight timings: coverage, the table and the speed-up plot."""
    name = arch_label(arch) if arch else "network"
    failed = int((rows[STATUS] != FINISHED).sum())
    text = (f"DeepSparse timings of {name} with random weights pruned to each sparsity: the "
            "paper's speed setting, run on this machine beside the study. These networks "
            "are not trained, so they have no accuracy and enter no other table of this "
            f"report. **Coverage.** {len(rows) - failed} speed row(s)")
    text += f"; {failed} failed speed trial(s) excluded." if failed else "."
    out = [f"### Speed reference: random-weight {name}", "", text, ""]
    if part.empty:
        return out + ["**No data** (every random-weight speed trial failed).", ""], None
    columns = [c for c in REFERENCE_COLUMNS if c[0] in part.columns]
    out += [md_table(
        ["method", "sparsity", *(c[1] for c in columns), "rows"],
        [[r[METHOD], pct(r[SPARSITY]), *(fmt(r[c]) or NO_NUMBER for c, _, fmt in columns),
          int(r["n"])] for _, r in part.iterrows()],
    ), ""]
    path = figures.speedup_vs_sparsity(
        part, ctx.out_dir / f"speed_reference_{slug(str(arch)) if arch else 'network'}.png",
        ctx.colours, f"DeepSparse speed-up of random-weight {name} over dense vs sparsity",
    )
    if path:
        out += [figure_md(
            path, ctx.out_dir,
            f"Speed reference: speed-up of random-weight {name} pruned to each sparsity over "
            "the dense network (DeepSparse, same machine); the dashed line is no speed-up.",
        ), ""]
    return out, path


SECTION = Section("Speed (Figure 4)", render)
