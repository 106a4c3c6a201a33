"""One architecture's tables as the findings read them, and the small readers every rule uses.

`study_tables` prepares the table once and computes, for one architecture, the cell means, alpha
per dataset and the dense baselines. The readers answer the questions the rules ask: a method's
mean alpha at a sparsity, the best sparse method against dense, why a mode cannot give alpha,
a correlation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from common.columns import ARCH, DATASET, FAMILY, METHOD, MODE, SPARSITY
from reports.findings.families import LOTTERY, method_families
from reports.findings.thresholds import MIN_CORRELATION_POINTS
from reports.markdown import pct
from reports.prepare import LINEAR, TRANSFER_MODES, pick_main_arch, prepare
from reports.tables import alpha_by_dataset, cell_stats, dense_stats


@dataclass(frozen=True)
class StudyTables:
    """One architecture's prepared rows and the tables every finding reads, computed once."""

    arch: str | None
    rows: pd.DataFrame  # prepared rows of the arch, every mode, no arch column
    whole: pd.DataFrame  # the whole prepared table (findings 7 and 8 read other archs)
    cells: pd.DataFrame  # cell_stats of the transfer modes
    alpha: pd.DataFrame  # alpha_by_dataset (alpha known), plus a family column
    dense: pd.DataFrame  # dense_stats
    families: dict[str, str]


def study_tables(df: pd.DataFrame, arch: str | None = None) -> StudyTables:
    """The tables of ``arch`` (default: the main one, `reports.prepare.pick_main_arch`); rows
    without an arch count as the main one's."""
    whole = prepare(df)
    main = pick_main_arch(whole)
    arch = arch if arch is not None else main
    rows = whole
    if ARCH in whole.columns and arch is not None:
        keep = whole[ARCH] == arch
        if arch == main:
            keep |= whole[ARCH] == ""
        rows = whole[keep]
    rows = rows.drop(columns=[ARCH], errors="ignore").reset_index(drop=True)
    families = method_families(rows)
    cells = cell_stats(rows)
    cells = cells[cells[MODE].isin(TRANSFER_MODES)].reset_index(drop=True)
    alpha = alpha_by_dataset(rows)
    alpha = alpha[alpha["alpha"].notna()].reset_index(drop=True)
    alpha = alpha.assign(**{FAMILY: alpha[METHOD].map(families)})
    return StudyTables(arch, rows, whole, cells, alpha, dense_stats(rows), families)


def tables_of(df: pd.DataFrame | StudyTables, arch: str | None) -> StudyTables:
    return df if isinstance(df, StudyTables) else study_tables(df, arch)


# ----------------------------------------------------------------------------- helpers


def levels_text(levels: Iterable[object]) -> str:
    return ", ".join(pct(s) for s in levels)


def mode_name(mode: str) -> str:
    return f"{mode} finetuning"


def has_mode(t: StudyTables, mode: str) -> bool:
    return bool((t.cells[MODE] == mode).any())


def sparse_alpha(t: StudyTables, mode: str, lth: bool = True) -> pd.DataFrame:
    """alpha_by_dataset rows of ``mode``; LTH-T rows dropped unless ``lth``."""
    a = t.alpha[t.alpha[MODE] == mode]
    return a if lth else a[a[FAMILY] != LOTTERY]


def method_alpha(t: StudyTables, mode: str, level: object, lth: bool = True) -> pd.Series:
    """Mean alpha over datasets per method at ``level`` (a method weighs once per dataset)."""
    a = sparse_alpha(t, mode, lth)
    a = a[a[SPARSITY] == level]
    return a.groupby(METHOD, sort=True)["alpha"].mean()


def sparse_levels(t: StudyTables, mode: str, lth: bool = True) -> list:
    return sorted(sparse_alpha(t, mode, lth)[SPARSITY].unique())


def no_rows(t: StudyTables, mode: str) -> str | None:
    """Why ``mode`` cannot give alpha, or None when it can."""
    if not has_mode(t, mode):
        return f"no {mode_name(mode)} rows in the grid"
    if t.dense[t.dense[MODE] == mode].empty:
        return f"no dense baseline in {mode_name(mode)}"
    if sparse_alpha(t, mode).empty:
        return f"no sparse {mode_name(mode)} rows with a dense baseline on the same dataset"
    return None


def alpha_list(alpha: pd.Series) -> str:
    return ", ".join(f"{m} {a:.3f}" for m, a in alpha.sort_values().items())


def best_vs_dense(t: StudyTables, mode: str, level: object) -> pd.DataFrame:
    """Per dataset: the best sparse method at ``level`` (LTH-T only in full) vs dense."""
    cells = t.cells[(t.cells[MODE] == mode) & (t.cells[SPARSITY] == level)]
    if mode == LINEAR:
        cells = cells[cells[METHOD].map(t.families) != LOTTERY]
    dense = t.dense[t.dense[MODE] == mode].set_index(DATASET)["dense_mean"]
    cells = cells[cells[DATASET].isin(dense.index)]
    columns = [DATASET, METHOD, "best", "dense", "gap"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    best = cells.sort_values(["mean", METHOD], ascending=[False, True], kind="stable")
    best = best.drop_duplicates(DATASET).sort_values(DATASET)
    out = pd.DataFrame({
        DATASET: best[DATASET].to_numpy(),
        METHOD: best[METHOD].to_numpy(),
        "best": best["mean"].to_numpy(),
        "dense": best[DATASET].map(dense).to_numpy(),
    })
    out["gap"] = out["best"] - out["dense"]
    return out[columns]


def match_line(row: pd.Series, level: object) -> str:
    return (f"{row[DATASET]} {pct(level)}: {row[METHOD]} {row['best']:.1f} vs dense "
            f"{row['dense']:.1f} ({row['gap']:+.1f})")


def correlation(x: pd.Series, y: pd.Series) -> float | None:
    """Pearson r of two aligned series, or None with too few points or no spread."""
    both = pd.concat([x, y], axis=1).dropna()
    if len(both) < MIN_CORRELATION_POINTS:
        return None
    a, b = both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])

