"""Finding 7: MobileNetV1 matches dense only up to 75 % sparsity, read on any MobileNet arch."""

from __future__ import annotations

import pandas as pd

from common.columns import ARCH, MODE, SPARSITY
from reports.findings.study import (StudyTables, best_vs_dense, mode_name, no_rows, study_tables,
                                    tables_of)
from reports.findings.thresholds import MATCH_POINTS, MOBILENET_UP_TO
from reports.findings.verdicts import Check, Verdict, verdict_of
from reports.markdown import pct
from reports.naming import name_key
from reports.prepare import FULL, LINEAR, TRANSFER_MODES


def _mobilenets(whole: pd.DataFrame) -> list[str]:
    if ARCH not in whole.columns:
        return []
    transfer = whole[whole[MODE].isin(TRANSFER_MODES)]
    return sorted({a for a in transfer[ARCH].unique() if "mobilenet" in name_key(a)})


def finding_7(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """MobileNetV1: sparse models match dense transfer only up to 75 % sparsity.

    On the first MobileNet architecture of the table with transfer rows (whatever ``arch``),
    in linear finetuning: the paper's sentence follows "regularization-based methods also match
    or slightly outperform dense ones on linear transfer" (Section 4). "Matches" at a sparsity:
    the best sparse method is within MATCH_POINTS (1 point) of dense, or better, on more than
    half of the datasets. Holds when (a) it matches at every sparsity <= 75 % and (b) at no
    sparsity above 75 %. Full finetuning's levels are notes.
    """
    t = tables_of(df, arch)
    names = _mobilenets(t.whole)
    low = f"linear finetuning: sparse matches dense at every sparsity <= {pct(MOBILENET_UP_TO)}"
    high = f"linear finetuning: sparse matches dense at no sparsity above {pct(MOBILENET_UP_TO)}"
    if not names:
        archs = sorted(set(t.whole[ARCH]) - {""}) if ARCH in t.whole.columns else []
        why = ("no MobileNet architecture in the table"
               + (f" (archs: {', '.join(archs)})" if archs else " (no arch column)"))
        return verdict_of(7, [Check(low, None, why), Check(high, None, why)], arch=t.arch)
    m = t if t.arch == names[0] else study_tables(t.whole, names[0])
    found = _matches_by_level(m, LINEAR)
    checks = []
    for is_low, claim, want in ((True, low, True), (False, high, False)):
        levels = [(matches, text) for level, matches, text in found
                  if (level <= MOBILENET_UP_TO) == is_low]
        if not levels:
            side = "at or below" if is_low else "above"
            why = no_rows(m, LINEAR) or (f"no sparse {names[0]} linear rows {side} "
                                          f"{pct(MOBILENET_UP_TO)} with a dense baseline")
            checks.append(Check(claim, None, why))
            continue
        texts = [text + ("" if matches == want else " ✗") for matches, text in levels]
        checks.append(Check(claim, all(mt == want for mt, _ in levels), "; ".join(texts)))
    notes = [text for _, _, text in _matches_by_level(m, FULL)]
    return verdict_of(7, checks, notes, arch=names[0])


def _matches_by_level(m: StudyTables, mode: str) -> list[tuple[float, bool, str]]:
    """Per sparse level of ``mode``: (level, whether sparse matches dense, the numbers)."""
    if no_rows(m, mode):
        return []
    out = []
    for level in sorted(m.cells.loc[(m.cells[MODE] == mode) & (m.cells[SPARSITY] > 0),
                                    SPARSITY].unique()):
        best = best_vs_dense(m, mode, level)
        if best.empty:
            continue
        ok = int((best["gap"] >= -MATCH_POINTS - 1e-9).sum())
        out.append((level, 2 * ok > len(best),
                    f"{mode_name(mode)} {pct(level)}: within {MATCH_POINTS:g} point on {ok} "
                    f"of {len(best)} datasets (mean gap {best['gap'].mean():+.1f})"))
    return out

