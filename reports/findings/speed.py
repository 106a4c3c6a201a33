"""Finding 8: at 90 % sparsity DeepSparse speeds up ResNet50's online linear finetuning and
inference, read on the table's ResNet50 speed rows."""

from __future__ import annotations

import pandas as pd

from common.columns import (ARCH, DATASET, METHOD, MODE, SPARSITY, SPEEDUP_EPOCH,
                            SPEEDUP_INFERENCE, STATUS, WEIGHTS)
from reports.findings.study import StudyTables, tables_of
from reports.findings.thresholds import EPOCH_SPEEDUP, INFERENCE_SPEEDUP, SPEED_LEVEL
from reports.findings.verdicts import Check, Verdict, verdict_of
from reports.markdown import pct
from reports.naming import name_key
from reports.prepare import FINISHED, LINEAR, SPEED
from reports.tables import alpha_by_dataset, speed_table


def _speed_rows(whole: pd.DataFrame) -> tuple[pd.DataFrame, str, list[str]]:
    """Speed rows of ResNet50 (all speed rows without an arch column), trained weights first."""
    rows = whole[(whole[MODE] == SPEED) & (whole[STATUS] == FINISHED)]
    notes = []
    if ARCH in rows.columns:
        others = sorted({a for a in rows[ARCH].unique() if not name_key(a).startswith("resnet50")}
                        - {""})
        rows = rows[rows[ARCH].map(lambda a: name_key(a).startswith("resnet50"))]
        if others:
            notes.append(f"speed rows of {', '.join(others)} not counted (the paper's claim is "
                         "about ResNet50)")
        what = "ResNet50 speed rows"
    else:
        what = "speed rows (no arch column: all counted)"
    if WEIGHTS in rows.columns:
        trained = rows[rows[WEIGHTS].astype(str) != "random"]
        if not trained.empty and len(trained) < len(rows):
            notes.append("random-weight speed rows left out: trained backbones are timed too")
            rows = trained
        elif trained.empty and not rows.empty:
            what += " (random weights pruned to the sparsity)"
    return rows, what, notes


def finding_8(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """Speed at 90 %: online linear finetuning >= 2x faster, inference >= 3x, with DeepSparse.

    From the ResNet50 speed rows (mode ``speed``) at 90 % (all speed rows when the table has
    no arch column; trained-weight rows when both trained and random-weight ones exist),
    averaged per (method, dataset) by `reports.tables.speed_table`. Holds when both hold:
    (a) mean online-epoch speed-up over those cells >= EPOCH_SPEEDUP (2);
    (b) mean inference speed-up (batch 64, or the trial's largest batch) >= INFERENCE_SPEEDUP (3).
    Note: the linear-finetuning accuracy gap of the same backbones, where known.
    """
    t = tables_of(df, arch)
    rows, what, notes = _speed_rows(t.whole)
    claims = {
        SPEEDUP_EPOCH: f"online linear-finetuning epoch speed-up at {pct(SPEED_LEVEL)} at least "
                       f"{EPOCH_SPEEDUP:g}x",
        SPEEDUP_INFERENCE: f"inference speed-up at {pct(SPEED_LEVEL)} at least "
                           f"{INFERENCE_SPEEDUP:g}x",
    }
    targets = {SPEEDUP_EPOCH: EPOCH_SPEEDUP, SPEEDUP_INFERENCE: INFERENCE_SPEEDUP}
    if rows.empty:
        any_speed = bool((t.whole[MODE] == SPEED).any())
        why = f"no usable {what}" if any_speed else "no speed rows in the table"
        return verdict_of(8, [Check(c, None, why) for c in claims.values()], notes, t.arch)
    table = speed_table(rows.drop(columns=[ARCH], errors="ignore"))
    table = table[table[SPARSITY] == SPEED_LEVEL]
    checks = []
    for column, claim in claims.items():
        values = table.dropna(subset=[column]) if not table.empty else table
        if values.empty:
            checks.append(Check(claim, None, f"no {column} in the {what} at {pct(SPEED_LEVEL)}"))
            continue
        mean = float(values[column].mean())
        details = tuple(
            f"{r[METHOD]}" + (f" on {r[DATASET]}" if r[DATASET] else "") + f": {r[column]:.2f}x"
            for _, r in values.iterrows()
        )
        checks.append(Check(claim, mean >= targets[column] - 1e-9,
                            f"mean {mean:.2f}x over {len(values)} cell(s) of the {what} "
                            f"(range {values[column].min():.2f}-{values[column].max():.2f}x)",
                            details))
    notes += _speed_gap_notes(t.whole, rows)
    return verdict_of(8, checks, notes, t.arch)


def _speed_gap_notes(whole: pd.DataFrame, speed: pd.DataFrame) -> list[str]:
    """Linear accuracy gap to dense of the timed backbones (the paper: no negative impact)."""
    arch = [ARCH] if ARCH in whole.columns else []
    timed = speed[speed[SPARSITY] == SPEED_LEVEL][arch + [METHOD]].drop_duplicates()
    if timed.empty:
        return []
    alpha = alpha_by_dataset(whole)
    alpha = alpha[(alpha[MODE] == LINEAR) & (alpha[SPARSITY] == SPEED_LEVEL)]
    alpha = alpha.merge(timed, on=arch + [METHOD], how="inner")
    if alpha.empty:
        return []
    gap = alpha["accuracy_mean"] - alpha["dense_mean"]
    return [f"linear-finetuning accuracy gap to dense of the timed backbones at "
            f"{pct(SPEED_LEVEL)}: mean {gap.mean():+.1f} points over {len(gap)} "
            "(method, dataset) cell(s)"]

