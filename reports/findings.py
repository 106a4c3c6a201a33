"""The paper's findings, checked: a verdict per finding from a long results table.

The paper states its conclusions in Section 1 and backs them up in Sections 3-4;
``docs/protocol.md`` ("The paper's findings") numbers eight of them. ``finding_<n>`` tests
finding n and says in its docstring exactly how, with the thresholds as module constants, so
that a reader can disagree with a rule rather than with a hunch. Each rule tests what the
paper's sentence says, no stricter: on the paper's own published results
(`reports.published`) every finding holds. A finding is a few `Check`\\ s; it
**holds** when every check holds, **does not hold** when one fails, and is **not testable**
with this grid when none fails but one cannot be run (no linear rows, one sparsity only, no
MobileNet, no speed rows...), with the reason.

Findings 1-6 are checked on one architecture: ``arch`` when given, else the main one
(`reports.prepare.pick_main_arch`, the report's rule; rows with no arch count as it). Finding 7 reads any MobileNet architecture of the table, finding 8 the ResNet50 speed rows,
so a whole study's table checks every finding at once. Methods are recognised by key or label
(``gmp``/``GMP``, ``rigl_erk5x``/``RigL ERK 5x``); a ``family`` column, where present, says
which family a method belongs to. Works on any table `reports.tables` reads, the paper's own
numbers (one "seed" per cell) included.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from common.atomic import atomic_write_text
from common.columns import (
    ACCURACY,
    ARCH,
    DATASET,
    FAMILY,
    METHOD,
    MODE,
    SPARSITY,
    SPEEDUP_EPOCH,
    SPEEDUP_INFERENCE,
    STATUS,
    WEIGHTS,
)
from reports.naming import is_lottery_ticket, name_key
from reports.prepare import (CHECKPOINT, FAILED, FULL, LINEAR, SPEED, TRANSFER_MODES, UPSTREAM,
                             pick_main_arch, prepare)
from reports.tables import alpha_by_dataset, cell_stats, dense_stats, speed_table

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_TESTABLE = "not testable"
VERDICTS = (HOLDS, DOES_NOT_HOLD, NOT_TESTABLE)

DENSE = "dense"
PROGRESSIVE = "progressive"
REGULARIZATION = "regularization"
LOTTERY = "lottery"
STRUCTURED = "structured"  # Appendix J: channel-pruned models (AMC)
OTHER = "other"

# Thresholds of the checks (accuracy in percentage points, alpha as a fraction).
MATCH_POINTS = 1.0  # "matches dense": best sparse mean at least dense mean - 1 point
COMPETITIVE_ALPHA = 0.10  # "competitive": the best sparse method's mean alpha at most 0.10
SPREAD_POINTS = 3.0  # "differences ... are typically small, on the order of 1-3 %"
FLAT_ALPHA = 0.05  # linear alpha "stays quite flat" from 80 to 90 %: mean moves at most 0.05
EXTREME_LEVEL = 98  # "extremely sparse models (98%) tend to perform worse"
MAIN_LEVELS = (80, 90)  # the paper's Table 1 sparsities
LINEAR_LEVELS = (80, 90, 95)  # "even at high sparsities (e.g. 95%)"
HIGH_LEVEL = 90  # ">= 90 %", "more apparent at higher sparsity (90%)"
MOBILENET_UP_TO = 75  # "only at lower sparsities (up to 75%)"
SPEED_LEVEL = 90
EPOCH_SPEEDUP = 2.0  # "reduce training time by 2-3x"
INFERENCE_SPEEDUP = 3.0  # "speedups of more than 3x"
MIN_CORRELATION_POINTS = 3  # a correlation over 2 datasets is always +-1

# Method key -> family, for tables without a family column (the paper's Section 2.1 grouping).
_FAMILY_OF_KEY = {
    "dense": DENSE,
    "gmp": PROGRESSIVE,
    "gradualmagnitudepruning": PROGRESSIVE,
    "woodfisher": PROGRESSIVE,
    "wf": PROGRESSIVE,
    "acdc": REGULARIZATION,
    "str": REGULARIZATION,
    "mfac": PROGRESSIVE,  # M-FAC (MobileNetV1): second-order, progressive like WoodFisher
    "amc": STRUCTURED,
}

# number -> (short title, the paper's own sentences with where they stand).
PAPER: dict[int, tuple[str, str]] = {
    1: (
        "Linear finetuning: sparse models match dense; regularization methods do best",
        "\"For *linear finetuning*, sparse models usually match and can slightly outperform "
        "dense models. Yet, this is not true for all pruning methods: *regularization-based* "
        "methods perform particularly well, even at high sparsities (e.g. 95%).\" (Section 1)",
    ),
    2: (
        "Full finetuning is more accurate than linear finetuning",
        "\"Although this approach typically results in lower accuracy relative to full "
        "finetuning [36, 61], it has significant practical advantages.\" (Section 3.3, on "
        "linear finetuning); \"For *full finetuning*, which generally provides higher "
        "accuracies [36], ...\" (Section 1)",
    ),
    3: (
        "Full finetuning: sparse competitive with dense, less sparse more accurate",
        "\"For *full finetuning*, which generally provides higher accuracies [36], sparse models "
        "are also competitive with dense ones, but transfer accuracy is more tightly correlated "
        "with accuracy on the ImageNet pre-training task: consequently, less sparse models (e.g. "
        "80%-90% sparsity) tend to be more accurate than sparser ones.\" (Section 1)",
    ),
    4: (
        "Full finetuning: progressive beats regularization, by small margins",
        "\"Moreover, in this setting we find that *progressive sparsification* methods "
        "consistently produce models with higher transfer accuracy, relative to regularization "
        "methods.\" (Section 1); \"The differences in test accuracy, measured at the same "
        "sparsity level, are typically small, on the order of 1–3%\" (Section 3.4)",
    ),
    5: (
        "LTH-T: competitive at 80 % in full finetuning, drops at >= 90 %, low in linear",
        "\"the exception is LTH-T, which is competitive at low sparsity (80%) but incurs severe "
        "accuracy drops at sparsities ≥ 90%.\" (Section 3.4); \"We exclude the LTH-T method from "
        "this analysis, as it is designed for full finetuning, and its transfer accuracy in the "
        "linear scenario is indeed very low\" (Section 3.3)",
    ),
    6: (
        "α: flat in linear up to 90 %, worse at 98 %, rising in full; tied to task difficulty",
        "\"This is apparent, for example, for AC/DC and RigL, where, despite the 1-2% gap in "
        "ImageNet accuracy between the 80% and 90% sparse models, the relative error with "
        "respect to the dense baseline stays quite flat. A similar trend can be observed for "
        "other pruning methods as well. However, extremely sparse models (98%) tend to perform "
        "worse\" (Section 3.3, linear); \"In contrast to linear finetuning, we see a consistent "
        "trend of decreasing quality with increased sparsity.\" (Section 3.4); \"Interestingly, "
        "we observe a trend for *regularization methods* (AC/DC, STR, RigL) to improve over the "
        "dense baseline with increased task difficulty, which is more apparent at higher "
        "sparsity (90%). In contrast, progressive sparsification methods (GMP, WoodFisher) do "
        "not show a similar behavior.\" (Section 3.3, Figure 3)",
    ),
    7: (
        "MobileNetV1: sparse matches dense only up to 75 % (linear transfer)",
        "\"Specifically, regularization-based methods also match or slightly outperform dense "
        "ones on linear transfer. However, for MobileNetV1, we observe that sparse models can "
        "match the dense baseline transfer performance only at lower sparsities (up to 75%), "
        "probably due to the lower parameter count.\" (Section 4)",
    ),
    8: (
        "Speed at 90 %: >= 2x online linear finetuning, >= 3x inference",
        "\"Results show that *using sparse backbones can reduce training time by 2-3x for linear "
        "transfer, without negative impact on validation accuracy*.\" (Section 3.6); \"these "
        "compression levels can lead to speedups of more than 3× on sparsity-enabled "
        "runtimes.\" (Section 1)",
    ),
}


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Check:
    """One tested part of a finding: what is claimed, whether it held, and the numbers.

    ``result`` is True (holds), False (does not hold) or None (not testable; ``numbers`` then
    says why).
    """

    claim: str
    result: bool | None
    numbers: str
    details: tuple[str, ...] = ()

    @property
    def mark(self) -> str:
        return {True: "✓", False: "✗", None: "–"}[self.result]

    def line(self) -> str:
        return f"{self.mark} {self.claim}: {self.numbers}"


@dataclass(frozen=True)
class Verdict:
    """A finding of the paper and what the table says about it."""

    number: int
    title: str
    paper: str
    verdict: str  # one of VERDICTS
    why: str
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()  # numbers that inform but do not decide
    arch: str | None = None

    @property
    def supporting(self) -> tuple[str, ...]:
        """The numbers for the finding: checks that held."""
        return tuple(c.line() for c in self.checks if c.result is True)

    @property
    def against(self) -> tuple[str, ...]:
        """The numbers against the finding: checks that failed."""
        return tuple(c.line() for c in self.checks if c.result is False)


def _verdict(number: int, checks: Sequence[Check], notes: Iterable[str] = (),
             arch: str | None = None) -> Verdict:
    """Holds when every check holds; does not hold when one fails; else not testable."""
    failed = [c for c in checks if c.result is False]
    untested = [c for c in checks if c.result is None]
    if failed:
        verdict = DOES_NOT_HOLD
        why = "; ".join(f"{c.claim}: {c.numbers}" for c in failed)
    elif untested:
        verdict = NOT_TESTABLE
        why = "; ".join(dict.fromkeys(c.numbers for c in untested))
    else:
        verdict = HOLDS
        why = "every check holds" if len(checks) > 1 else checks[0].numbers
    title, paper = PAPER[number]
    return Verdict(number, title, paper, verdict, why, tuple(checks), tuple(notes), arch)


# ----------------------------------------------------------------------------- the table


def method_family(name: object) -> str:
    """The paper's family of a method named by key or label (``"RigL ERK 5x"``: regularization).

    dense, progressive (GMP, WoodFisher), regularization (AC/DC, STR, RigL), lottery (LTH-T);
    ``"other"`` for anything else (e.g. random-weight speed rows).
    """
    if is_lottery_ticket(name):
        return LOTTERY
    key = name_key(name)
    if key.startswith("rigl"):
        return REGULARIZATION
    return _FAMILY_OF_KEY.get(key, OTHER)


def _family_value(value: object) -> str | None:
    """A ``family`` cell as a family name: the paper's, spelled loosely, or a study's own
    (``"structured"``, ``"distillation"``...) as its key; None when empty."""
    key = name_key(value) if value is not None and not pd.isna(value) else ""
    for prefix, family in (("prog", PROGRESSIVE), ("reg", REGULARIZATION), ("lott", LOTTERY),
                           ("lth", LOTTERY), ("dense", DENSE), ("struct", STRUCTURED)):
        if key.startswith(prefix):
            return family
    return key or None


# The order reports list families in; any other family (a study's own) follows, by name.
FAMILY_ORDER = (DENSE, PROGRESSIVE, REGULARIZATION, LOTTERY, STRUCTURED)


def family_sort_key(family: str) -> tuple[int, str]:
    return (FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER),
            str(family))


def method_families(rows: pd.DataFrame) -> dict[str, str]:
    """Method -> family of a results table (its ``family`` column where it names one, else
    the paper's grouping by name, else ``"other"``)."""
    return _families(rows)


def _families(rows: pd.DataFrame) -> dict[str, str]:
    """Method -> family: the ``family`` column where it names one, else `method_family`."""
    out = {m: method_family(m) for m in rows[METHOD].unique()}
    if FAMILY in rows.columns:
        for method, value in zip(rows[METHOD], rows[FAMILY]):
            family = _family_value(value)
            if family is not None:
                out[method] = family
    return out


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
    families = _families(rows)
    cells = cell_stats(rows)
    cells = cells[cells[MODE].isin(TRANSFER_MODES)].reset_index(drop=True)
    alpha = alpha_by_dataset(rows)
    alpha = alpha[alpha["alpha"].notna()].reset_index(drop=True)
    alpha = alpha.assign(**{FAMILY: alpha[METHOD].map(families)})
    return StudyTables(arch, rows, whole, cells, alpha, dense_stats(rows), families)


def _tables(df: pd.DataFrame | StudyTables, arch: str | None) -> StudyTables:
    return df if isinstance(df, StudyTables) else study_tables(df, arch)


# ----------------------------------------------------------------------------- helpers


def _pct(level: object) -> str:
    return f"{float(level):g} %"


def _levels_text(levels: Iterable[object]) -> str:
    return ", ".join(_pct(s) for s in levels)


def _mode_name(mode: str) -> str:
    return f"{mode} finetuning"


def _has_mode(t: StudyTables, mode: str) -> bool:
    return bool((t.cells[MODE] == mode).any())


def _sparse_alpha(t: StudyTables, mode: str, lth: bool = True) -> pd.DataFrame:
    """alpha_by_dataset rows of ``mode``; LTH-T rows dropped unless ``lth``."""
    a = t.alpha[t.alpha[MODE] == mode]
    return a if lth else a[a[FAMILY] != LOTTERY]


def _method_alpha(t: StudyTables, mode: str, level: object, lth: bool = True) -> pd.Series:
    """Mean alpha over datasets per method at ``level`` (a method weighs once per dataset)."""
    a = _sparse_alpha(t, mode, lth)
    a = a[a[SPARSITY] == level]
    return a.groupby(METHOD, sort=True)["alpha"].mean()


def _levels(t: StudyTables, mode: str, lth: bool = True) -> list:
    return sorted(_sparse_alpha(t, mode, lth)[SPARSITY].unique())


def _no_rows(t: StudyTables, mode: str) -> str | None:
    """Why ``mode`` cannot give alpha, or None when it can."""
    if not _has_mode(t, mode):
        return f"no {_mode_name(mode)} rows in the grid"
    if t.dense[t.dense[MODE] == mode].empty:
        return f"no dense baseline in {_mode_name(mode)}"
    if _sparse_alpha(t, mode).empty:
        return f"no sparse {_mode_name(mode)} rows with a dense baseline on the same dataset"
    return None


def _alpha_list(alpha: pd.Series) -> str:
    return ", ".join(f"{m} {a:.3f}" for m, a in alpha.sort_values().items())


def _best_vs_dense(t: StudyTables, mode: str, level: object) -> pd.DataFrame:
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


def _match_line(row: pd.Series, level: object) -> str:
    return (f"{row[DATASET]} {_pct(level)}: {row[METHOD]} {row['best']:.1f} vs dense "
            f"{row['dense']:.1f} ({row['gap']:+.1f})")


def _correlation(x: pd.Series, y: pd.Series) -> float | None:
    """Pearson r of two aligned series, or None with too few points or no spread."""
    both = pd.concat([x, y], axis=1).dropna()
    if len(both) < MIN_CORRELATION_POINTS:
        return None
    a, b = both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


# ----------------------------------------------------------------------------- shared checks


def _match_check(t: StudyTables, mode: str, levels: Sequence[int]) -> Check:
    """Best sparse within MATCH_POINTS of dense on more than half of the (dataset, level)."""
    claim = (f"{_mode_name(mode)}: best sparse method at {_levels_text(levels)} within "
             f"{MATCH_POINTS:g} point of dense (or better) on most datasets")
    reason = _no_rows(t, mode)
    if reason:
        return Check(claim, None, reason)
    details, gaps = [], []
    for level in levels:
        for _, row in _best_vs_dense(t, mode, level).iterrows():
            hit = row["gap"] >= -MATCH_POINTS - 1e-9
            gaps.append((row["gap"], _match_line(row, level)))
            details.append(_match_line(row, level) + ("" if hit else " ✗"))
    if not gaps:
        return Check(claim, None, f"no sparse {_mode_name(mode)} rows at {_levels_text(levels)}")
    ok = sum(gap >= -MATCH_POINTS - 1e-9 for gap, _ in gaps)
    worst = min(gaps, key=lambda g: g[0])[1]
    numbers = f"{ok} of {len(gaps)} (dataset, sparsity) pairs; worst: {worst}"
    return Check(claim, 2 * ok > len(gaps), numbers, tuple(details))


def _family_check(t: StudyTables, mode: str, levels: Sequence[int] | None, better: str,
                  worse: str) -> Check:
    """At every level where both families exist, ``better``'s mean alpha < ``worse``'s.

    A family's alpha is the mean over its methods of each method's mean alpha over datasets.
    """
    where = _levels_text(levels) if levels is not None else "every sparsity"
    claim = f"{_mode_name(mode)}: {better} methods' mean α below {worse} ones' at {where}"
    reason = _no_rows(t, mode)
    if reason:
        return Check(claim, None, reason)
    short, details, results = [], [], []
    for level in levels if levels is not None else _levels(t, mode):
        alpha = _method_alpha(t, mode, level, lth=False)
        fam = alpha.index.map(t.families)
        good, bad = alpha[fam == better], alpha[fam == worse]
        if good.empty or bad.empty:
            continue
        holds = bool(good.mean() < bad.mean())
        mark = "" if holds else " ✗"
        results.append(holds)
        short.append(f"{_pct(level)}: {better} {good.mean():.3f} vs {worse} {bad.mean():.3f}"
                     + mark)
        details.append(f"{_pct(level)}: {better} {_alpha_list(good)}; {worse} "
                       f"{_alpha_list(bad)}")
    if not results:
        return Check(claim, None, f"no sparsity with both {better} and {worse} methods in "
                                  f"{_mode_name(mode)}")
    return Check(claim, all(results), "; ".join(short), tuple(details))


def _mean_alpha_pair(t: StudyTables, mode: str, low: object, high: object,
                     lth: bool) -> tuple[float, float, list[str]]:
    """Mean alpha over the methods present at both levels, at each level."""
    a_low, a_high = _method_alpha(t, mode, low, lth), _method_alpha(t, mode, high, lth)
    common = sorted(set(a_low.index) & set(a_high.index))
    return float(a_low[common].mean()), float(a_high[common].mean()), common


def _grows_check(t: StudyTables, mode: str, lth: bool) -> Check:
    """Mean alpha over methods (those present at both levels) higher at each step up in
    sparsity."""
    claim = f"{_mode_name(mode)}: α averaged over methods higher at each step up in sparsity"
    if not lth:
        claim += " (LTH-T left out)"
    reason = _no_rows(t, mode)
    if reason:
        return Check(claim, None, reason)
    levels = _levels(t, mode, lth)
    if len(levels) < 2:
        return Check(claim, None, f"fewer than 2 sparsities in {_mode_name(mode)} "
                                  f"({_levels_text(levels) or 'none'})")
    details, results = [], []
    for low, high in zip(levels, levels[1:]):
        a_low, a_high, common = _mean_alpha_pair(t, mode, low, high, lth)
        if not common:
            continue
        holds = bool(a_high > a_low)
        results.append(holds)
        details.append(f"{_pct(low)} {a_low:.3f} -> {_pct(high)} {a_high:.3f} over "
                       f"{len(common)} method(s)" + ("" if holds else " ✗"))
    if not results:
        return Check(claim, None, f"no method at two sparsities in {_mode_name(mode)}")
    return Check(claim, all(results), "; ".join(details))


# ----------------------------------------------------------------------------- findings


def finding_1(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """Linear finetuning: sparse models match dense ones; regularization methods do best.

    Linear finetuning, LTH-T left out as in the paper. Holds when both hold:
    (a) on more than half of the (dataset, sparsity) pairs at 80 and 90 % (those present), the
        best sparse method's mean accuracy over seeds is at least dense - MATCH_POINTS (1 point);
    (b) at each of 80, 90 and 95 % where both families are present, the regularization methods'
        (AC/DC, STR, RigL) mean alpha is below the progressive ones' (GMP, WoodFisher); a
        family's alpha is the mean over its methods of each one's mean alpha over datasets.
    """
    t = _tables(df, arch)
    checks = [
        _match_check(t, LINEAR, MAIN_LEVELS),
        _family_check(t, LINEAR, LINEAR_LEVELS, REGULARIZATION, PROGRESSIVE),
    ]
    notes = []
    for level in LINEAR_LEVELS:
        alpha = _method_alpha(t, LINEAR, level, lth=False)
        if len(alpha) > 1:
            notes.append(f"best in linear finetuning at {_pct(level)}: {alpha.idxmin()} "
                         f"(α {alpha.min():.3f}, {t.families.get(alpha.idxmin(), OTHER)})")
    return _verdict(1, checks, notes, t.arch)


def finding_2(df: pd.DataFrame | StudyTables, arch: str | None = None) -> Verdict:
    """Full finetuning is more accurate than linear finetuning.

    Holds when, on every dataset with a dense baseline in both modes, the dense full-finetuning
    mean accuracy over seeds is above the dense linear-finetuning mean. The share of sparse
    cells (method, sparsity, dataset in both modes) where full beats linear is a note.
    """
    t = _tables(df, arch)
    claim = "dense full finetuning more accurate than dense linear finetuning on every dataset"
    missing = [m for m in TRANSFER_MODES if t.dense[t.dense[MODE] == m].empty]
    if missing:
        what = " and ".join(f"no dense {_mode_name(m)} rows" for m in missing)
        return _verdict(2, [Check(claim, None, what)], arch=t.arch)
    wide = t.dense.pivot_table(index=DATASET, columns=MODE, values="dense_mean").dropna()
    if wide.empty:
        return _verdict(2, [Check(claim, None, "no dataset has a dense baseline in both "
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
    return _verdict(2, [check], notes, t.arch)


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
    t = _tables(df, arch)
    claim = (f"full finetuning: best sparse method's mean α at the lowest sparsity at most "
             f"{COMPETITIVE_ALPHA:g}")
    reason = _no_rows(t, FULL)
    levels = _levels(t, FULL)
    if reason:
        competitive = Check(claim, None, reason)
    elif levels[0] > HIGH_LEVEL:
        competitive = Check(claim, None, f"no sparsity at or below {_pct(HIGH_LEVEL)} in full "
                                         "finetuning")
    else:
        alpha = _method_alpha(t, FULL, levels[0])
        holds = bool(alpha.min() <= COMPETITIVE_ALPHA + 1e-12)
        competitive = Check(claim, holds, f"{alpha.idxmin()} at {_pct(levels[0])}: "
                            f"α {alpha.min():.3f}", (f"{_pct(levels[0])}: {_alpha_list(alpha)}",))
    checks = [competitive, _grows_check(t, FULL, lth=True)]
    return _verdict(3, checks, _upstream_notes(t), t.arch)


def _upstream_notes(t: StudyTables) -> list[str]:
    """How well upstream accuracy predicts mean alpha, per mode (the paper: tighter in full)."""
    ok = (t.rows[SPARSITY] > 0) & (t.rows[STATUS] != FAILED) & t.rows[ACCURACY].notna()
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
        alpha = _sparse_alpha(t, mode).groupby([METHOD, SPARSITY])["alpha"].mean()
        r = _correlation(upstream, alpha)
        if r is not None:
            n = len(pd.concat([upstream, alpha], axis=1).dropna())
            notes.append(f"{_mode_name(mode)}: upstream accuracy vs mean α over {n} sparse "
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
    t = _tables(df, arch)
    checks = [_family_check(t, FULL, None, PROGRESSIVE, REGULARIZATION), _spread_check(t)]
    notes = []
    for level in _levels(t, FULL, lth=False):
        alpha = _method_alpha(t, FULL, level, lth=False)
        keys = {name_key(m): m for m in alpha.index}
        rigl5, wf = keys.get("riglerk5x"), keys.get("woodfisher") or keys.get("wf")
        if rigl5 and wf:
            notes.append(f"{_pct(level)}: {rigl5} α {alpha[rigl5]:.3f} vs {wf} "
                         f"{alpha[wf]:.3f}")
        regs = [m for m in alpha.index if t.families.get(m) == REGULARIZATION]
        stri = keys.get("str")
        if stri and len(regs) > 1:
            rest = alpha[[m for m in regs if m != stri]].mean()
            notes.append(f"{_pct(level)}: {stri} α {alpha[stri]:.3f} vs other regularization "
                         f"methods {rest:.3f}")
    return _verdict(4, checks, notes, t.arch)


def _spread_check(t: StudyTables) -> Check:
    """The typical difference between two methods at one sparsity on one dataset: the median,
    over datasets and pairs of methods (LTH-T aside), of the gap between their mean accuracies,
    at most SPREAD_POINTS at every sparsity."""
    claim = (f"full finetuning: typical difference between methods at the same sparsity at "
             f"most {SPREAD_POINTS:g} points (median over datasets and method pairs)")
    reason = _no_rows(t, FULL)
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
        details.append(f"{_pct(level)}: median {typical:.1f} points, largest {max(gaps):.1f}, "
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
    t = _tables(df, arch)
    has_lth = any(f == LOTTERY for m, f in t.families.items())
    parts = [
        (FULL, lambda s: s < HIGH_LEVEL, False, f"below {_pct(HIGH_LEVEL)}"),
        (FULL, lambda s: s >= HIGH_LEVEL, True, f"at >= {_pct(HIGH_LEVEL)}"),
        (LINEAR, lambda s: True, True, "at every sparsity"),
    ]
    checks = [_lth_check(t, mode, pick, worst, where, has_lth)
              for mode, pick, worst, where in parts]
    return _verdict(5, checks, arch=t.arch)


def _lth_check(t: StudyTables, mode: str, pick: Callable[[object], bool], worst: bool,
               where: str, has_lth: bool) -> Check:
    what = "the worst sparse method" if worst else "not the worst sparse method"
    claim = f"{_mode_name(mode)}: LTH-T {what} {where} (mean α)"
    if not has_lth:
        return Check(claim, None, "no LTH-T (lottery ticket) method in the table")
    reason = _no_rows(t, mode)
    if reason:
        return Check(claim, None, reason)
    details, results = [], []
    for level in [s for s in _levels(t, mode) if pick(s)]:
        alpha = _method_alpha(t, mode, level)
        lottery = alpha.index.map(t.families) == LOTTERY
        if not lottery.any() or lottery.all():
            continue
        lth, others = float(alpha[lottery].mean()), alpha[~lottery]
        holds = bool(lth > others.max()) if worst else bool(lth <= others.max() + 1e-12)
        results.append(holds)
        details.append(f"{_pct(level)}: LTH-T {lth:.3f} vs worst other {others.idxmax()} "
                       f"{others.max():.3f}" + ("" if holds else " ✗"))
    if not results:
        return Check(claim, None, f"no sparsity {where} with LTH-T and another method in "
                                  f"{_mode_name(mode)}")
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
    t = _tables(df, arch)
    checks = [_flat_check(t), _extreme_check(t), _grows_check(t, FULL, lth=True)]
    difficulty_checks, notes = _difficulty_checks(t)
    return _verdict(6, [*checks, *difficulty_checks], notes, t.arch)


def _flat_check(t: StudyTables) -> Check:
    low, high = MAIN_LEVELS
    claim = (f"linear finetuning: α averaged over methods moves by at most {FLAT_ALPHA:g} from "
             f"{_pct(low)} to {_pct(high)} (LTH-T left out)")
    reason = _no_rows(t, LINEAR)
    if reason:
        return Check(claim, None, reason)
    a_low, a_high, common = _mean_alpha_pair(t, LINEAR, low, high, lth=False)
    if not common:
        return Check(claim, None, f"no method at both {_pct(low)} and {_pct(high)} in linear "
                                  "finetuning")
    change = a_high - a_low
    details = tuple(f"{m}: {_pct(low)} {_method_alpha(t, LINEAR, low)[m]:.3f} -> {_pct(high)} "
                    f"{_method_alpha(t, LINEAR, high)[m]:.3f}" for m in common)
    return Check(claim, abs(change) <= FLAT_ALPHA + 1e-12,
                 f"{a_low:.3f} -> {a_high:.3f} ({change:+.3f}) over {len(common)} method(s)",
                 details)


def _extreme_check(t: StudyTables) -> Check:
    claim = (f"linear finetuning: each method's α at {_pct(EXTREME_LEVEL)} above its α at every "
             "lower sparsity")
    reason = _no_rows(t, LINEAR)
    if reason:
        return Check(claim, None, reason)
    a = _sparse_alpha(t, LINEAR, lth=False)
    per = a.groupby([METHOD, SPARSITY])["alpha"].mean()
    details, results = [], []
    for method in sorted({m for m, s in per.index if s >= EXTREME_LEVEL}):
        own = per[method]
        lower, extreme = own[own.index < EXTREME_LEVEL], own[own.index >= EXTREME_LEVEL]
        if lower.empty:
            continue
        holds = bool(extreme.min() > lower.max())
        results.append(holds)
        details.append(f"{method}: {_pct(extreme.index.min())} {extreme.min():.3f} vs at most "
                       f"{lower.max():.3f} below" + ("" if holds else " ✗"))
    if not results:
        return Check(claim, None, f"no method at {_pct(EXTREME_LEVEL)} and a lower sparsity in "
                                  "linear finetuning")
    return Check(claim, all(results), "; ".join(details))


def _difficulty_checks(t: StudyTables) -> tuple[list[Check], list[str]]:
    """Figure 3's three claims on regularization alpha against task difficulty."""
    claims = (
        f"linear finetuning at {_pct(HIGH_LEVEL)}: regularization methods' α falls as task "
        "difficulty rises (Pearson r < 0 across datasets)",
        f"regularization methods: the trend more apparent at {_pct(HIGH_LEVEL)} than at "
        f"{_pct(MAIN_LEVELS[0])} (lower r)",
        f"progressive methods at {_pct(HIGH_LEVEL)}: no similar trend (r above the "
        "regularization methods')",
    )
    reason = _no_rows(t, LINEAR)
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
    checks.append(_r_check(claims[1], reg, reg_low, f"at {_pct(MAIN_LEVELS[0])}",
                           reg[0] < reg_low[0] if reg and reg_low else None))
    checks.append(_r_check(claims[2], prog, reg, "regularization",
                           prog[0] > reg[0] if reg and prog else None))
    a = _sparse_alpha(t, LINEAR, lth=False)
    r_all = _correlation(a[a[SPARSITY] == HIGH_LEVEL].groupby(DATASET)["alpha"].mean(),
                         difficulty)
    notes = [f"all methods (LTH-T aside) at {_pct(HIGH_LEVEL)}: r = {r_all:+.2f}"] \
        if r_all is not None else []
    return checks, notes


def _family_r(t: StudyTables, family: str, level: int,
              difficulty: pd.Series) -> tuple[float, tuple[str, ...]] | None:
    """Pearson r of a family's per-dataset alpha at ``level`` with difficulty, and the points."""
    a = _sparse_alpha(t, LINEAR, lth=False)
    a = a[(a[SPARSITY] == level) & (a[FAMILY] == family)].groupby(DATASET)["alpha"].mean()
    r = _correlation(a, difficulty)
    if r is None:
        return None
    points = tuple(f"{family} {_pct(level)}, {d}: difficulty {difficulty[d]:+.1f}, α {a[d]:.3f}"
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
    t = _tables(df, arch)
    names = _mobilenets(t.whole)
    low = f"linear finetuning: sparse matches dense at every sparsity <= {_pct(MOBILENET_UP_TO)}"
    high = f"linear finetuning: sparse matches dense at no sparsity above {_pct(MOBILENET_UP_TO)}"
    if not names:
        archs = sorted(set(t.whole[ARCH]) - {""}) if ARCH in t.whole.columns else []
        why = ("no MobileNet architecture in the table"
               + (f" (archs: {', '.join(archs)})" if archs else " (no arch column)"))
        return _verdict(7, [Check(low, None, why), Check(high, None, why)], arch=t.arch)
    m = t if t.arch == names[0] else study_tables(t.whole, names[0])
    found = _matches_by_level(m, LINEAR)
    checks = []
    for is_low, claim, want in ((True, low, True), (False, high, False)):
        levels = [(matches, text) for level, matches, text in found
                  if (level <= MOBILENET_UP_TO) == is_low]
        if not levels:
            side = "at or below" if is_low else "above"
            why = _no_rows(m, LINEAR) or (f"no sparse {names[0]} linear rows {side} "
                                          f"{_pct(MOBILENET_UP_TO)} with a dense baseline")
            checks.append(Check(claim, None, why))
            continue
        texts = [text + ("" if matches == want else " ✗") for matches, text in levels]
        checks.append(Check(claim, all(mt == want for mt, _ in levels), "; ".join(texts)))
    notes = [text for _, _, text in _matches_by_level(m, FULL)]
    return _verdict(7, checks, notes, arch=names[0])


def _matches_by_level(m: StudyTables, mode: str) -> list[tuple[float, bool, str]]:
    """Per sparse level of ``mode``: (level, whether sparse matches dense, the numbers)."""
    if _no_rows(m, mode):
        return []
    out = []
    for level in sorted(m.cells.loc[(m.cells[MODE] == mode) & (m.cells[SPARSITY] > 0),
                                    SPARSITY].unique()):
        best = _best_vs_dense(m, mode, level)
        if best.empty:
            continue
        ok = int((best["gap"] >= -MATCH_POINTS - 1e-9).sum())
        out.append((level, 2 * ok > len(best),
                    f"{_mode_name(mode)} {_pct(level)}: within {MATCH_POINTS:g} point on {ok} "
                    f"of {len(best)} datasets (mean gap {best['gap'].mean():+.1f})"))
    return out


def _speed_rows(whole: pd.DataFrame) -> tuple[pd.DataFrame, str, list[str]]:
    """Speed rows of ResNet50 (all speed rows without an arch column), trained weights first."""
    rows = whole[(whole[MODE] == SPEED) & (whole[STATUS] != FAILED)]
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
    t = _tables(df, arch)
    rows, what, notes = _speed_rows(t.whole)
    claims = {
        SPEEDUP_EPOCH: f"online linear-finetuning epoch speed-up at {_pct(SPEED_LEVEL)} at least "
                       f"{EPOCH_SPEEDUP:g}x",
        SPEEDUP_INFERENCE: f"inference speed-up at {_pct(SPEED_LEVEL)} at least "
                           f"{INFERENCE_SPEEDUP:g}x",
    }
    targets = {SPEEDUP_EPOCH: EPOCH_SPEEDUP, SPEEDUP_INFERENCE: INFERENCE_SPEEDUP}
    if rows.empty:
        any_speed = bool((t.whole[MODE] == SPEED).any())
        why = f"no usable {what}" if any_speed else "no speed rows in the table"
        return _verdict(8, [Check(c, None, why) for c in claims.values()], notes, t.arch)
    table = speed_table(rows.drop(columns=[ARCH], errors="ignore"))
    table = table[table[SPARSITY] == SPEED_LEVEL]
    checks = []
    for column, claim in claims.items():
        values = table.dropna(subset=[column]) if not table.empty else table
        if values.empty:
            checks.append(Check(claim, None, f"no {column} in the {what} at {_pct(SPEED_LEVEL)}"))
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
    return _verdict(8, checks, notes, t.arch)


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
            f"{_pct(SPEED_LEVEL)}: mean {gap.mean():+.1f} points over {len(gap)} "
            "(method, dataset) cell(s)"]


FINDINGS: tuple[Callable[..., Verdict], ...] = (
    finding_1, finding_2, finding_3, finding_4, finding_5, finding_6, finding_7, finding_8,
)


# ----------------------------------------------------------------------------- outputs


def check_findings(df: pd.DataFrame, arch: str | None = None) -> tuple[Verdict, ...]:
    """The eight verdicts, in order, for ``arch`` (default: the main architecture)."""
    t = study_tables(df, arch)
    return tuple(finding(t) for finding in FINDINGS)


FINDINGS_COLUMNS = ("finding", "title", "verdict", "why", "supporting", "against", "untested",
                    "notes", "details", "paper", "arch")


def findings_table(df: pd.DataFrame, arch: str | None = None) -> pd.DataFrame:
    """One row per finding: verdict, why, the numbers for and against, notes, the paper's words.

    List columns are joined with `` | ``; ``untested`` lists the checks that could not run.
    """
    return _frame(check_findings(df, arch))


def _frame(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    rows = []
    for v in verdicts:
        untested = [c.line() for c in v.checks if c.result is None]
        rows.append(dict(finding=v.number, title=v.title, verdict=v.verdict, why=v.why,
                         supporting=" | ".join(v.supporting), against=" | ".join(v.against),
                         untested=" | ".join(untested), notes=" | ".join(v.notes),
                         details=" | ".join(d for c in v.checks for d in c.details),
                         paper=v.paper, arch=v.arch or ""))
    return pd.DataFrame(rows, columns=list(FINDINGS_COLUMNS))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(verdicts: Sequence[Verdict]) -> str:
    counts = {v: sum(x.verdict == v for x in verdicts) for v in VERDICTS}
    archs = sorted({v.arch for v in verdicts[:6] if v.arch})
    out = ["## The paper's findings, checked", ""]
    out.append(
        (f"Architecture `{archs[0]}` (findings 1-6). " if archs else "")
        + f"Of {len(verdicts)} findings: {counts[HOLDS]} hold, {counts[DOES_NOT_HOLD]} do not "
        f"hold, {counts[NOT_TESTABLE]} not testable with this grid. Each finding is a few "
        "checks (✓ holds, ✗ does not, – not testable); it holds when every check holds. The "
        "rules and thresholds are in `reports/findings.py`; the same verdicts are in "
        "`findings.csv`."
    )
    out += ["", "| # | finding | verdict | evidence |", "|---|---|---|---|"]
    for v in verdicts:
        evidence = "<br>".join(_md_cell(c.line()) for c in v.checks)
        out.append(f"| {v.number} | {_md_cell(v.title)} | **{v.verdict}** | {evidence} |")
    for v in verdicts:
        out += ["", f"### {v.number}. {v.title}: {v.verdict}", "", f"> {v.paper}", ""]
        if v.verdict != HOLDS:
            out += [f"Why: {v.why}", ""]
        for c in v.checks:
            out.append(f"- {c.line()}")
            out += [f"  - {d}" for d in c.details]
        out += [f"- note: {n}" for n in v.notes]
    return "\n".join(out)


def write_findings(df: pd.DataFrame, arch: str | None = None) -> str:
    """The report section "The paper's findings, checked": a summary table, then each finding
    with the paper's sentences, its checks and their numbers."""
    return _markdown(check_findings(df, arch))


def report_section(df: pd.DataFrame, out_dir: Path, arch: str | None = None) -> str:
    """`write_findings` for the report, writing the same verdicts to ``out_dir/findings.csv``.

    ``arch``: the report's architecture, for findings 1-6 (default: the main one).
    """
    verdicts = check_findings(df, arch)
    atomic_write_text(Path(out_dir) / "findings.csv", _frame(verdicts).to_csv(index=False))
    return _markdown(verdicts)
