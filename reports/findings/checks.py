"""Checks several findings share: sparse matches dense, one family below another, alpha grows."""

from __future__ import annotations

from typing import Sequence

from reports.findings.study import (StudyTables, alpha_list, best_vs_dense, levels_text,
                                    match_line, method_alpha, mode_name, no_rows, sparse_levels)
from reports.findings.thresholds import MATCH_POINTS
from reports.findings.verdicts import Check
from reports.markdown import pct


def match_check(t: StudyTables, mode: str, levels: Sequence[int]) -> Check:
    """Best sparse within MATCH_POINTS of dense on more than half of the (dataset, level)."""
    claim = (f"{mode_name(mode)}: best sparse method at {levels_text(levels)} within "
             f"{MATCH_POINTS:g} point of dense (or better) on most datasets")
    reason = no_rows(t, mode)
    if reason:
        return Check(claim, None, reason)
    details, gaps = [], []
    for level in levels:
        for _, row in best_vs_dense(t, mode, level).iterrows():
            hit = row["gap"] >= -MATCH_POINTS - 1e-9
            gaps.append((row["gap"], match_line(row, level)))
            details.append(match_line(row, level) + ("" if hit else " ✗"))
    if not gaps:
        return Check(claim, None, f"no sparse {mode_name(mode)} rows at {levels_text(levels)}")
    ok = sum(gap >= -MATCH_POINTS - 1e-9 for gap, _ in gaps)
    worst = min(gaps, key=lambda g: g[0])[1]
    numbers = f"{ok} of {len(gaps)} (dataset, sparsity) pairs; worst: {worst}"
    return Check(claim, 2 * ok > len(gaps), numbers, tuple(details))


def family_check(t: StudyTables, mode: str, levels: Sequence[int] | None, better: str,
                  worse: str) -> Check:
    """At every level where both families exist, ``better``'s mean alpha < ``worse``'s.

    A family's alpha is the mean over its methods of each method's mean alpha over datasets.
    """
    where = levels_text(levels) if levels is not None else "every sparsity"
    claim = f"{mode_name(mode)}: {better} methods' mean α below {worse} ones' at {where}"
    reason = no_rows(t, mode)
    if reason:
        return Check(claim, None, reason)
    short, details, results = [], [], []
    for level in levels if levels is not None else sparse_levels(t, mode):
        alpha = method_alpha(t, mode, level, lth=False)
        fam = alpha.index.map(t.families)
        good, bad = alpha[fam == better], alpha[fam == worse]
        if good.empty or bad.empty:
            continue
        holds = bool(good.mean() < bad.mean())
        mark = "" if holds else " ✗"
        results.append(holds)
        short.append(f"{pct(level)}: {better} {good.mean():.3f} vs {worse} {bad.mean():.3f}"
                     + mark)
        details.append(f"{pct(level)}: {better} {alpha_list(good)}; {worse} "
                       f"{alpha_list(bad)}")
    if not results:
        return Check(claim, None, f"no sparsity with both {better} and {worse} methods in "
                                  f"{mode_name(mode)}")
    return Check(claim, all(results), "; ".join(short), tuple(details))


def mean_alpha_pair(t: StudyTables, mode: str, low: object, high: object,
                     lth: bool) -> tuple[float, float, list[str]]:
    """Mean alpha over the methods present at both levels, at each level."""
    a_low, a_high = method_alpha(t, mode, low, lth), method_alpha(t, mode, high, lth)
    common = sorted(set(a_low.index) & set(a_high.index))
    return float(a_low[common].mean()), float(a_high[common].mean()), common


def grows_check(t: StudyTables, mode: str, lth: bool) -> Check:
    """Mean alpha over methods (those present at both levels) higher at each step up in
    sparsity."""
    claim = f"{mode_name(mode)}: α averaged over methods higher at each step up in sparsity"
    if not lth:
        claim += " (LTH-T left out)"
    reason = no_rows(t, mode)
    if reason:
        return Check(claim, None, reason)
    levels = sparse_levels(t, mode, lth)
    if len(levels) < 2:
        return Check(claim, None, f"fewer than 2 sparsities in {mode_name(mode)} "
                                  f"({levels_text(levels) or 'none'})")
    details, results = [], []
    for low, high in zip(levels, levels[1:]):
        a_low, a_high, common = mean_alpha_pair(t, mode, low, high, lth)
        if not common:
            continue
        holds = bool(a_high > a_low)
        results.append(holds)
        details.append(f"{pct(low)} {a_low:.3f} -> {pct(high)} {a_high:.3f} over "
                       f"{len(common)} method(s)" + ("" if holds else " ✗"))
    if not results:
        return Check(claim, None, f"no method at two sparsities in {mode_name(mode)}")
    return Check(claim, all(results), "; ".join(details))

