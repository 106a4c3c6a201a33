"""Findings 1-6: one architecture's linear and full finetuning against its dense baseline.

Each ``finding_<n>`` says in its docstring exactly how it tests the paper's sentence, no
stricter; the thresholds are in `reports.findings.thresholds`.
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np
import pandas as pd

from common.columns import ACCURACY, DATASET, FAMILY, METHOD, MODE, SPARSITY, STATUS
from reports.findings.checks import family_check, grows_check, match_check, mean_alpha_pair
from reports.findings.families import LOTTERY, OTHER, PROGRESSIVE, REGULARIZATION
from reports.findings.study import (StudyTables, alpha_list, correlation, method_alpha, mode_name,
                                    no_rows, sparse_alpha, sparse_levels, tables_of)
from reports.findings.thresholds import (COMPETITIVE_ALPHA, EXTREME_LEVEL, FLAT_ALPHA,
                                         HIGH_LEVEL, LINEAR_LEVELS, MAIN_LEVELS,
                                         MIN_CORRELATION_POINTS, SPREAD_POINTS)
from reports.findings.verdicts import Check, Verdict, verdict_of
from reports.markdown import pct
from reports.naming import name_key
from reports.prepare import CHECKPOINT, FINISHED, FULL, LINEAR, TRANSFER_MODES, UPSTREAM


def finding_1(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """Linear finetuning: sparse models match dense ones; regularization methods do best.

    Linear finetuning, LTH-T left out as in the paper. Holds when both hold:
    (a) on more than half of the (dataset, sparsity) pairs at 80 and 90 % (those present), the
        best sparse method's mean accuracy over seeds is at least dense - MATCH_POINTS (1 point);
    (b) at each of 80, 90 and 95 % where both families are present, the regularization methods'
        (AC/DC, STR, RigL) mean alpha is below the progressive ones' (GMP, WoodFisher); a
        family's alpha is the mean over its methods of each one's mean alpha over datasets.
    """
    t = tables_of(df, arch)
    checks = [
        match_check(t, LINEAR, MAIN_LEVELS),
        family_check(t, LINEAR, LINEAR_LEVELS, REGULARIZATION, PROGRESSIVE),
    ]
    notes = []
    for level in LINEAR_LEVELS:
        alpha = method_alpha(t, LINEAR, level, lth=False)
        if len(alpha) > 1:
            notes.append(f"best in linear finetuning at {pct(level)}: {alpha.idxmin()} "
                         f"(α {alpha.min():.3f}, {t.families.get(alpha.idxmin(), OTHER)})")
    return verdict_of(1, checks, notes, t.arch)


def finding_2(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """Full finetuning is more accurate than linear finetuning.

    Holds when, on every dataset with a dense baseline in both modes, the dense full-finetuning
    mean accuracy over seeds is above the dense linear-finetuning mean. The share of sparse
    cells (method, sparsity, dataset in both modes) where full beats linear is a note.
    """
    t = tables_of(df, arch)
    claim = "dense full finetuning more accurate than dense linear finetuning on every dataset"
    missing = [m for m in TRANSFER_MODES if t.dense[t.dense[MODE] == m].empty]
    if missing:
        what = " and ".join(f"no dense {mode_name(m)} rows" for m in missing)
        return verdict_of(2, [Check(claim, None, what)], arch=t.arch)
    wide = t.dense.pivot_table(index=DATASET, columns=MODE, values="dense_mean").dropna()
    if wide.empty:
        return verdict_of(2, [Check(claim, None, "no dataset has a dense baseline in both "
                                               "modes")], arch=t.arch)
    details = []
    for dataset, row in wide.iterrows():
        gap = row[FULL] - row[LINEAR]
        details.append(f"{dataset}: dense full {row[FULL]:.1f} vs dense linear "
                       f"{row[LINEAR]:.1f} ({gap:+.1f})" + ("" if gap > 0 else " ✗"))
    ok = int((wide[FULL] > wide[LINEAR]).sum())
    closest = (wide[FULL] - wide[LINEAR]).idxmin()
    numbers = (f"{ok} of {len(wide)} datasets; smallest gap: {closest} full "
               f"{wide.loc[closest, FULL]:.1f} vs linear {wide.loc[closest, LINEAR]:.1f}")
    check = Check(claim, ok == len(wide), numbers, tuple(details))
    notes = []
    sparse = t.cells[t.cells[SPARSITY] > 0]
    both = sparse.pivot_table(index=[METHOD, SPARSITY, DATASET], columns=MODE,
                              values="mean").reindex(columns=list(TRANSFER_MODES)).dropna()
    if not both.empty:
        share = int((both[FULL] > both[LINEAR]).sum())
        notes.append(f"sparse models: full above linear in {share} of {len(both)} cells "
                     f"(method, sparsity, dataset) = {share / len(both):.0%}")
    return verdict_of(2, [check], notes, t.arch)


def finding_3(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """Full finetuning: sparse models are competitive with dense; less sparse is more accurate.

    Full finetuning, LTH-T included (as in the paper's Table 1). Holds when both hold:
    (a) at the lowest sparsity present (if at most 90 %; 80 % in the paper), the best sparse
        method's mean alpha over datasets is at most COMPETITIVE_ALPHA (0.10);
    (b) alpha averaged over methods (those present at both levels) rises at every step up in
        sparsity (80 -> 90 -> 95 -> 98 %, the levels present); needs 2 sparsities.
    Note (not deciding): correlation of upstream (ImageNet) accuracy with mean alpha over
    datasets across sparse backbones, per mode, where upstream rows exist.
    """
    t = tables_of(df, arch)
    claim = (f"full finetuning: best sparse method's mean α at the lowest sparsity at most "
             f"{COMPETITIVE_ALPHA:g}")
    reason = no_rows(t, FULL)
    levels = sparse_levels(t, FULL)
    if reason:
        competitive = Check(claim, None, reason)
    elif levels[0] > HIGH_LEVEL:
        competitive = Check(claim, None, f"no sparsity at or below {pct(HIGH_LEVEL)} in full "
                                         "finetuning")
    else:
        alpha = method_alpha(t, FULL, levels[0])
        holds = bool(alpha.min() <= COMPETITIVE_ALPHA + 1e-12)
        competitive = Check(claim, holds, f"{alpha.idxmin()} at {pct(levels[0])}: "
                            f"α {alpha.min():.3f}", (f"{pct(levels[0])}: {alpha_list(alpha)}",))
    checks = [competitive, grows_check(t, FULL, lth=True)]
    return verdict_of(3, checks, _upstream_notes(t), t.arch)


def _upstream_notes(t: StudyTables) -> list[str]:
    """How well upstream accuracy predicts mean alpha, per mode (the paper: tighter in full)."""
    ok = (t.rows[SPARSITY] > 0) & (t.rows[STATUS] == FINISHED) & t.rows[ACCURACY].notna()
    # The checkpoint stage's accuracy (every study) where there is one, else the tiny study's
    # pretrain/prune rows.
    up = t.rows[ok & (t.rows[MODE] == CHECKPOINT)]
    if up.empty:
        up = t.rows[ok & (t.rows[MODE] == UPSTREAM)]
    if up.empty:
        return []
    upstream = up.groupby([METHOD, SPARSITY])[ACCURACY].mean()
    notes = []
    for mode in TRANSFER_MODES:
        alpha = sparse_alpha(t, mode).groupby([METHOD, SPARSITY])["alpha"].mean()
        r = correlation(upstream, alpha)
        if r is not None:
            n = len(pd.concat([upstream, alpha], axis=1).dropna())
            notes.append(f"{mode_name(mode)}: upstream accuracy vs mean α over {n} sparse "
                         f"backbones, r = {r:+.2f} (negative: better upstream, lower α)")
    return notes


def finding_4(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """Full finetuning: progressive methods transfer better than regularization, by 1-3 points.

    Full finetuning, LTH-T left out (the paper's exception). Holds when both hold:
    (a) at every sparsity where both families are present, the progressive methods' (GMP,
        WoodFisher) mean alpha is below the regularization ones' (AC/DC, STR, RigL);
    (b) "The differences in test accuracy, measured at the same sparsity level, are typically
        small, on the order of 1-3%": at every sparsity, the median over datasets and pairs of
        methods of the gap between two methods' mean accuracies is at most SPREAD_POINTS (3).
    Notes: RigL ERK 5x vs WoodFisher, and STR vs the other regularization methods.
    """
    t = tables_of(df, arch)
    checks = [family_check(t, FULL, None, PROGRESSIVE, REGULARIZATION), _spread_check(t)]
    notes = []
    for level in sparse_levels(t, FULL, lth=False):
        alpha = method_alpha(t, FULL, level, lth=False)
        keys = {name_key(m): m for m in alpha.index}
        rigl5, wf = keys.get("riglerk5x"), keys.get("woodfisher") or keys.get("wf")
        if rigl5 and wf:
            notes.append(f"{pct(level)}: {rigl5} α {alpha[rigl5]:.3f} vs {wf} "
                         f"{alpha[wf]:.3f}")
        regs = [m for m in alpha.index if t.families.get(m) == REGULARIZATION]
        stri = keys.get("str")
        if stri and len(regs) > 1:
            rest = alpha[[m for m in regs if m != stri]].mean()
            notes.append(f"{pct(level)}: {stri} α {alpha[stri]:.3f} vs other regularization "
                         f"methods {rest:.3f}")
    return verdict_of(4, checks, notes, t.arch)


def _spread_check(t: StudyTables) -> Check:
    """The typical difference between two methods at one sparsity on one dataset: the median,
    over datasets and pairs of methods (LTH-T aside), of the gap between their mean accuracies,
    at most SPREAD_POINTS at every sparsity."""
    claim = (f"full finetuning: typical difference between methods at the same sparsity at "
             f"most {SPREAD_POINTS:g} points (median over datasets and method pairs)")
    reason = no_rows(t, FULL)
    if reason:
        return Check(claim, None, reason)
    cells = t.cells[(t.cells[MODE] == FULL) & (t.cells[SPARSITY] > 0)]
    cells = cells[cells[METHOD].map(t.families) != LOTTERY]
    details, results = [], []
    for level in sorted(cells[SPARSITY].unique()):
        gaps = [abs(a - b) for _, at in cells[cells[SPARSITY] == level].groupby(DATASET)
                for a, b in itertools.combinations(at["mean"].to_numpy(float), 2)]
        if not gaps:
            continue
        typical = float(np.median(gaps))
        holds = typical <= SPREAD_POINTS + 1e-9
        results.append(holds)
        details.append(f"{pct(level)}: median {typical:.1f} points, largest {max(gaps):.1f}, "
                       f"over {len(gaps)} pairs" + ("" if holds else " ✗"))
    if not results:
        return Check(claim, None, "fewer than 2 sparse methods (LTH-T aside) at one sparsity "
                                  "in full finetuning")
    return Check(claim, all(results), "; ".join(details))


def finding_5(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """LTH-T: competitive at 80 % in full finetuning, the worst at >= 90 % and in linear.

    With the methods' mean alpha over datasets, LTH-T (the lottery family; several lottery
    methods are averaged) against the other sparse methods at the same sparsity. Holds when:
    (a) full finetuning, every sparsity below 90 %: LTH-T is not the worst (its alpha at most the
        largest of the others');
    (b) full finetuning, every sparsity >= 90 %: LTH-T is the worst (alpha above every other's);
    (c) linear finetuning, every sparsity: LTH-T is the worst ("its transfer accuracy in the
        linear scenario is indeed very low", said of linear finetuning at every sparsity).
    """
    t = tables_of(df, arch)
    has_lth = any(f == LOTTERY for m, f in t.families.items())
    parts = [
        (FULL, lambda s: s < HIGH_LEVEL, False, f"below {pct(HIGH_LEVEL)}"),
        (FULL, lambda s: s >= HIGH_LEVEL, True, f"at >= {pct(HIGH_LEVEL)}"),
        (LINEAR, lambda s: True, True, "at every sparsity"),
    ]
    checks = [_lth_check(t, mode, pick, worst, where, has_lth)
              for mode, pick, worst, where in parts]
    return verdict_of(5, checks, arch=t.arch)


def _lth_check(t: StudyTables, mode: str, pick: Callable[[object], bool], worst: bool,
               where: str, has_lth: bool) -> Check:
    what = "the worst sparse method" if worst else "not the worst sparse method"
    claim = f"{mode_name(mode)}: LTH-T {what} {where} (mean α)"
    if not has_lth:
        return Check(claim, None, "no LTH-T (lottery ticket) method in the table")
    reason = no_rows(t, mode)
    if reason:
        return Check(claim, None, reason)
    details, results = [], []
    for level in [s for s in sparse_levels(t, mode) if pick(s)]:
        alpha = method_alpha(t, mode, level)
        lottery = alpha.index.map(t.families) == LOTTERY
        if not lottery.any() or lottery.all():
            continue
        lth, others = float(alpha[lottery].mean()), alpha[~lottery]
        holds = bool(lth > others.max()) if worst else bool(lth <= others.max() + 1e-12)
        results.append(holds)
        details.append(f"{pct(level)}: LTH-T {lth:.3f} vs worst other {others.idxmax()} "
                       f"{others.max():.3f}" + ("" if holds else " ✗"))
    if not results:
        return Check(claim, None, f"no sparsity {where} with LTH-T and another method in "
                                  f"{mode_name(mode)}")
    return Check(claim, all(results), "; ".join(details))


def finding_6(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """alpha and sparsity: flat in linear up to 90 %, worse at 98 %, rising in full; and
    regularization methods gain on dense as tasks get harder (Figure 3).

    LTH-T is left out of linear finetuning, as in the paper's figures. Holds when all hold:
    (a) linear, 80 -> 90 %: alpha averaged over the methods at both levels moves by at most
        FLAT_ALPHA ("the relative error with respect to the dense baseline stays quite flat");
    (b) linear, 98 %: each method with a 98 % backbone has a higher alpha there than at each of
        its lower sparsities ("extremely sparse models (98%) tend to perform worse");
    (c) full: alpha averaged over methods rises at each step up in sparsity ("a consistent
        trend of decreasing quality with increased sparsity");
    (d)-(f) linear, Figure 3, with task difficulty = dense full - dense linear accuracy: the
        regularization methods' alpha (averaged per dataset) correlates negatively with
        difficulty at 90 % (Pearson r < 0 over at least 3 datasets), more so than at 80 % ("more
        apparent at higher sparsity"), and more so than the progressive methods' ("progressive
        sparsification methods ... do not show a similar behavior").
    """
    t = tables_of(df, arch)
    checks = [_flat_check(t), _extreme_check(t), grows_check(t, FULL, lth=True)]
    difficulty_checks, notes = _difficulty_checks(t)
    return verdict_of(6, [*checks, *difficulty_checks], notes, t.arch)


def _flat_check(t: StudyTables) -> Check:
    low, high = MAIN_LEVELS
    claim = (f"linear finetuning: α averaged over methods moves by at most {FLAT_ALPHA:g} from "
             f"{pct(low)} to {pct(high)} (LTH-T left out)")
    reason = no_rows(t, LINEAR)
    if reason:
        return Check(claim, None, reason)
    a_low, a_high, common = mean_alpha_pair(t, LINEAR, low, high, lth=False)
    if not common:
        return Check(claim, None, f"no method at both {pct(low)} and {pct(high)} in linear "
                                  "finetuning")
    change = a_high - a_low
    details = tuple(f"{m}: {pct(low)} {method_alpha(t, LINEAR, low)[m]:.3f} -> {pct(high)} "
                    f"{method_alpha(t, LINEAR, high)[m]:.3f}" for m in common)
    return Check(claim, abs(change) <= FLAT_ALPHA + 1e-12,
                 f"{a_low:.3f} -> {a_high:.3f} ({change:+.3f}) over {len(common)} method(s)",
                 details)


def _extreme_check(t: StudyTables) -> Check:
    claim = (f"linear finetuning: each method's α at {pct(EXTREME_LEVEL)} above its α at every "
             "lower sparsity")
    reason = no_rows(t, LINEAR)
    if reason:
        return Check(claim, None, reason)
    a = sparse_alpha(t, LINEAR, lth=False)
    per = a.groupby([METHOD, SPARSITY])["alpha"].mean()
    details, results = [], []
    for method in sorted({m for m, s in per.index if s >= EXTREME_LEVEL}):
        own = per[method]
        lower, extreme = own[own.index < EXTREME_LEVEL], own[own.index >= EXTREME_LEVEL]
        if lower.empty:
            continue
        holds = bool(extreme.min() > lower.max())
        results.append(holds)
        details.append(f"{method}: {pct(extreme.index.min())} {extreme.min():.3f} vs at most "
                       f"{lower.max():.3f} below" + ("" if holds else " ✗"))
    if not results:
        return Check(claim, None, f"no method at {pct(EXTREME_LEVEL)} and a lower sparsity in "
                                  "linear finetuning")
    return Check(claim, all(results), "; ".join(details))


def _difficulty_checks(t: StudyTables) -> tuple[list[Check], list[str]]:
    """Figure 3's three claims on regularization alpha against task difficulty."""
    claims = (
        f"linear finetuning at {pct(HIGH_LEVEL)}: regularization methods' α falls as task "
        "difficulty rises (Pearson r < 0 across datasets)",
        f"regularization methods: the trend more apparent at {pct(HIGH_LEVEL)} than at "
        f"{pct(MAIN_LEVELS[0])} (lower r)",
        f"progressive methods at {pct(HIGH_LEVEL)}: no similar trend (r above the "
        "regularization methods')",
    )
    reason = no_rows(t, LINEAR)
    wide = t.dense.pivot_table(index=DATASET, columns=MODE, values="dense_mean")
    wide = wide.reindex(columns=list(TRANSFER_MODES)).dropna()
    if not reason and len(wide) < MIN_CORRELATION_POINTS:
        reason = (f"task difficulty needs dense rows in both modes on at least "
                  f"{MIN_CORRELATION_POINTS} datasets ({len(wide)} have them)")
    if reason:
        return [Check(c, None, reason) for c in claims], []
    difficulty = wide[FULL] - wide[LINEAR]
    r = {(f, lvl): _family_r(t, f, lvl, difficulty) for f in (REGULARIZATION, PROGRESSIVE)
         for lvl in (MAIN_LEVELS[0], HIGH_LEVEL)}
    reg, reg_low, prog = (r[REGULARIZATION, HIGH_LEVEL], r[REGULARIZATION, MAIN_LEVELS[0]],
                          r[PROGRESSIVE, HIGH_LEVEL])
    checks = [_r_check(claims[0], reg, None, "regularization", reg[0] < 0 if reg else None)]
    checks.append(_r_check(claims[1], reg, reg_low, f"at {pct(MAIN_LEVELS[0])}",
                           reg[0] < reg_low[0] if reg and reg_low else None))
    checks.append(_r_check(claims[2], prog, reg, "regularization",
                           prog[0] > reg[0] if reg and prog else None))
    a = sparse_alpha(t, LINEAR, lth=False)
    r_all = correlation(a[a[SPARSITY] == HIGH_LEVEL].groupby(DATASET)["alpha"].mean(),
                         difficulty)
    notes = [f"all methods (LTH-T aside) at {pct(HIGH_LEVEL)}: r = {r_all:+.2f}"] \
        if r_all is not None else []
    return checks, notes


def _family_r(t: StudyTables, family: str, level: int,
              difficulty: pd.Series) -> tuple[float, tuple[str, ...]] | None:
    """Pearson r of a family's per-dataset alpha at ``level`` with difficulty, and the points."""
    a = sparse_alpha(t, LINEAR, lth=False)
    a = a[(a[SPARSITY] == level) & (a[FAMILY] == family)].groupby(DATASET)["alpha"].mean()
    r = correlation(a, difficulty)
    if r is None:
        return None
    points = tuple(f"{family} {pct(level)}, {d}: difficulty {difficulty[d]:+.1f}, α {a[d]:.3f}"
                   for d in sorted(set(a.index) & set(difficulty.index)))
    return r, points


def _r_check(claim: str, r: tuple[float, tuple[str, ...]] | None,
             other: tuple[float, tuple[str, ...]] | None, other_name: str,
             holds: bool | None) -> Check:
    if r is None or holds is None:
        return Check(claim, None, "no correlation to compare: fewer than "
                                  f"{MIN_CORRELATION_POINTS} datasets with α and difficulty, no "
                                  "spread, or a family missing at that sparsity")
    numbers = f"r = {r[0]:+.2f} over {len(r[1])} datasets"
    if other is not None:
        numbers += f" vs {other_name} r = {other[0]:+.2f}"
    return Check(claim, bool(holds), numbers, r[1])

