"""The paper's findings checker on hand-built tables: each finding holding, failing, untestable.

Tables have 2 datasets (3 where a correlation needs them) and 2 seeds at mean - 0.5 and
mean + 0.5, so every cell's mean is the number written here and alpha can be worked out by hand:
alpha = (err_sparse - err_dense) / err_dense with err = 100 - mean.
"""

from __future__ import annotations

import pandas as pd
import pytest

from reports import findings as F
from reports.report import write_report
from tests.reports.sample_results import PAPER_DENSE, fake_results, hand_table

Cells = dict[tuple[str, int, str], float]


def table(linear: Cells | None = None, full: Cells | None = None, arch: str | None = None,
          seeds: tuple[int, ...] = (1, 2)) -> pd.DataFrame:
    """Rows of (method, sparsity, dataset) -> mean accuracy per mode, one per seed."""
    rows = []
    for mode, cells in (("linear", linear or {}), ("full", full or {})):
        for (method, sparsity, dataset), mean in cells.items():
            for i, seed in enumerate(seeds):
                offset = 0.0 if len(seeds) == 1 else (-0.5 if i % 2 == 0 else 0.5)
                row = dict(method=method, sparsity=sparsity, dataset=dataset, mode=mode,
                           seed=seed, accuracy=mean + offset, status="finished")
                if arch is not None:
                    row["arch"] = arch
                rows.append(row)
    return pd.DataFrame(rows)


def speed_rows(cells: dict[tuple[str, int], tuple[float, float]], arch: str = "resnet50",
               **extra) -> pd.DataFrame:
    """Speed rows: (method, sparsity) -> (epoch speed-up, inference speed-up)."""
    return pd.DataFrame([
        dict(method=m, sparsity=s, dataset="synthetic", mode="speed", seed=0, accuracy=None,
             arch=arch, speedup_epoch=e, speedup_inference=i, status="finished", **extra)
        for (m, s), (e, i) in cells.items()
    ])


def check(verdict: F.Verdict, index: int) -> F.Check:
    return verdict.checks[index]


# Linear finetuning where finding 1 holds: AC/DC within 1 point of dense everywhere.
# alpha: acdc 80 cifar10 (10.5-10)/10 = 0.05, flowers (19-20)/20 = -0.05, mean 0.000;
#        gmp 80 cifar10 (12-10)/10 = 0.2, flowers (21-20)/20 = 0.05, mean 0.125;
#        acdc 90 (10.8-10)/10 = 0.08, (19.6-20)/20 = -0.02, mean 0.03;
#        gmp 90 (13-10)/10 = 0.3, (22-20)/20 = 0.1, mean 0.2.
LINEAR_OK: Cells = {
    ("dense", 0, "cifar10"): 90.0, ("dense", 0, "flowers"): 80.0,
    ("acdc", 80, "cifar10"): 89.5, ("acdc", 80, "flowers"): 81.0,
    ("gmp", 80, "cifar10"): 88.0, ("gmp", 80, "flowers"): 79.0,
    ("acdc", 90, "cifar10"): 89.2, ("acdc", 90, "flowers"): 80.4,
    ("gmp", 90, "cifar10"): 87.0, ("gmp", 90, "flowers"): 78.0,
}
# Full finetuning where findings 2, 3 and 4 hold (dense above LINEAR_OK's dense).
# alpha: gmp 80 (4.5-4)/4 = 0.125, (9-10)/10 = -0.1, mean 0.0125;
#        acdc 80 (5-4)/4 = 0.25, (11-10)/10 = 0.1, mean 0.175;
#        gmp 90 (5-4)/4 = 0.25, (10.5-10)/10 = 0.05, mean 0.15;
#        acdc 90 (6-4)/4 = 0.5, (12-10)/10 = 0.2, mean 0.35.
FULL_OK: Cells = {
    ("dense", 0, "cifar10"): 96.0, ("dense", 0, "flowers"): 90.0,
    ("gmp", 80, "cifar10"): 95.5, ("gmp", 80, "flowers"): 91.0,
    ("acdc", 80, "cifar10"): 95.0, ("acdc", 80, "flowers"): 89.0,
    ("gmp", 90, "cifar10"): 95.0, ("gmp", 90, "flowers"): 89.5,
    ("acdc", 90, "cifar10"): 94.0, ("acdc", 90, "flowers"): 88.0,
}


# ----------------------------------------------------------------------------- basics


def test_method_families_by_key_or_label():
    assert F.method_family("gmp") == F.method_family("WoodFisher") == F.PROGRESSIVE
    for name in ("acdc", "AC/DC", "str", "STR", "rigl_erk1x", "RigL ERK 5x"):
        assert F.method_family(name) == F.REGULARIZATION
    assert F.method_family("lth_t") == F.method_family("LTH-T") == F.LOTTERY
    assert F.method_family("Dense") == F.DENSE
    assert F.method_family("random_uniform") == F.OTHER


def test_a_family_column_names_the_family():
    df = table(full={**{k: v for k, v in FULL_OK.items() if k[0] != "gmp"},
                     **{("mine", s, d): v for (m, s, d), v in FULL_OK.items() if m == "gmp"}})
    assert F.finding_4(df).verdict == F.NOT_TESTABLE  # "mine" is of no known family
    df["family"] = df["method"].map({"mine": "progressive", "acdc": "regularization"})
    v = F.finding_4(df)
    assert v.verdict == F.HOLDS
    assert "80 %: progressive 0.012 vs regularization 0.175" in check(v, 0).numbers


def test_verdict_combines_checks():
    yes, no, unknown = (F.Check("c", r, "n") for r in (True, False, None))
    assert F.verdict_of(1, [yes, yes]).verdict == F.HOLDS
    assert F.verdict_of(1, [yes, unknown]).verdict == F.NOT_TESTABLE
    assert F.verdict_of(1, [unknown, no]).verdict == F.DOES_NOT_HOLD
    v = F.verdict_of(1, [yes, no, unknown])
    assert v.supporting == ("✓ c: n",) and v.against == ("✗ c: n",)


# ----------------------------------------------------------------------------- finding 1


def test_finding_1_holds():
    v = F.finding_1(table(linear=LINEAR_OK))
    assert v.verdict == F.HOLDS and v.number == 1
    assert check(v, 0).numbers.startswith("4 of 4 (dataset, sparsity) pairs")
    assert "cifar10 90 %: acdc 89.2 vs dense 90.0 (-0.8)" in check(v, 0).details
    assert check(v, 1).numbers == ("80 %: regularization 0.000 vs progressive 0.125; "
                                   "90 %: regularization 0.030 vs progressive 0.200")
    assert "Section 1" in v.paper and "regularization-based" in v.paper


def test_finding_1_leaves_lth_out_of_linear():
    lth = {("lth_t", 80, "cifar10"): 99.0, ("lth_t", 80, "flowers"): 99.0}
    v = F.finding_1(table(linear={**LINEAR_OK, **lth}))
    assert v.verdict == F.HOLDS
    assert "cifar10 80 %: acdc 89.5 vs dense 90.0 (-0.5)" in check(v, 0).details


def test_finding_1_does_not_hold():
    # The hand table: AC/DC is 2 and 4 points below dense on cifar10: 2 of 4 is not most.
    v = F.finding_1(hand_table())
    assert v.verdict == F.DOES_NOT_HOLD
    assert check(v, 0).result is False
    assert check(v, 0).numbers == ("2 of 4 (dataset, sparsity) pairs; worst: cifar10 90 %: "
                                   "AC/DC 86.0 vs dense 90.0 (-4.0)")
    assert "cifar10 80 %: AC/DC 88.0 vs dense 90.0 (-2.0) ✗" in check(v, 0).details
    # Progressive better than regularization in linear: (b) fails too.
    swapped = {(("gmp" if m == "acdc" else "acdc" if m == "gmp" else m), s, d): a
               for (m, s, d), a in LINEAR_OK.items()}
    v = F.finding_1(table(linear=swapped))
    assert [c.result for c in v.checks] == [True, False]
    assert "regularization 0.125 vs progressive 0.000 ✗" in check(v, 1).numbers


def test_finding_1_not_testable_without_linear_rows():
    v = F.finding_1(table(full=FULL_OK))
    assert v.verdict == F.NOT_TESTABLE
    assert v.why == "no linear finetuning rows in the grid"


# ----------------------------------------------------------------------------- finding 2


def test_finding_2_holds_with_the_sparse_share():
    v = F.finding_2(table(linear=LINEAR_OK, full=FULL_OK))
    assert v.verdict == F.HOLDS
    assert check(v, 0).numbers == ("2 of 2 datasets; smallest gap: cifar10 full 96.0 vs "
                                   "linear 90.0")
    assert check(v, 0).details == ("cifar10: dense full 96.0 vs dense linear 90.0 (+6.0)",
                                   "flowers: dense full 90.0 vs dense linear 80.0 (+10.0)")
    # Every sparse cell is higher in full: 8 of 8.
    assert v.notes == ("sparse models: full above linear in 8 of 8 cells (method, sparsity, "
                       "dataset) = 100%",)


def test_finding_2_does_not_hold():
    full = {**FULL_OK, ("dense", 0, "flowers"): 78.0}
    v = F.finding_2(table(linear=LINEAR_OK, full=full))
    assert v.verdict == F.DOES_NOT_HOLD
    assert "flowers: dense full 78.0 vs dense linear 80.0 (-2.0) ✗" in check(v, 0).details
    assert check(v, 0).numbers.startswith("1 of 2 datasets; smallest gap: flowers")


def test_finding_2_not_testable_without_full_rows():
    v = F.finding_2(table(linear=LINEAR_OK))
    assert v.verdict == F.NOT_TESTABLE and v.why == "no dense full finetuning rows"


# ----------------------------------------------------------------------------- finding 3


def test_finding_3_holds():
    v = F.finding_3(table(full=FULL_OK))
    assert v.verdict == F.HOLDS
    assert check(v, 0).numbers == "gmp at 80 %: α 0.012"  # 0.0125 in floating point
    # Mean over gmp and acdc: (0.0125 + 0.175) / 2 = 0.094 -> (0.15 + 0.35) / 2 = 0.25.
    assert check(v, 1).numbers == "80 % 0.094 -> 90 % 0.250 over 2 method(s)"


def test_finding_3_does_not_hold():
    # Best sparse alpha at 80 % above 0.10: gmp at 80 % made worse than acdc's 0.175.
    worse = {**FULL_OK, ("gmp", 80, "cifar10"): 95.0, ("gmp", 80, "flowers"): 88.0}
    v = F.finding_3(table(full=worse))  # gmp 80: (5-4)/4 = 0.25, (12-10)/10 = 0.2 -> 0.225
    assert v.verdict == F.DOES_NOT_HOLD
    assert check(v, 0).result is False and check(v, 0).numbers == "acdc at 80 %: α 0.175"
    # Sparser more accurate: swap the 80 and 90 % cells.
    swapped = {(m, {80: 90, 90: 80}.get(s, s), d): a for (m, s, d), a in FULL_OK.items()}
    v = F.finding_3(table(full=swapped))
    assert check(v, 1).result is False
    assert check(v, 1).numbers == "80 % 0.250 -> 90 % 0.094 over 2 method(s) ✗"


def test_finding_3_not_testable_with_one_sparsity():
    one = {k: v for k, v in FULL_OK.items() if k[1] != 90}
    v = F.finding_3(table(full=one))
    assert v.verdict == F.NOT_TESTABLE
    assert v.why == "fewer than 2 sparsities in full finetuning (80 %)"
    assert check(v, 0).result is True


def test_finding_3_notes_the_upstream_correlation():
    df = table(full=FULL_OK)
    up = pd.DataFrame([dict(method=m, sparsity=s, dataset="imagenet", mode="upstream", seed=0,
                            accuracy=a) for m, s, a in (("gmp", 80, 76.0), ("acdc", 80, 75.0),
                                                        ("gmp", 90, 74.0), ("acdc", 90, 73.0))])
    v = F.finding_3(pd.concat([df, up], ignore_index=True))
    # Upstream (76, 75, 74, 73) against alpha (0.0125, 0.175, 0.15, 0.35): r < 0.
    assert len(v.notes) == 1 and v.notes[0].startswith("full finetuning: upstream accuracy vs "
                                                        "mean α over 4 sparse backbones, r = -")


# ----------------------------------------------------------------------------- finding 4


def test_finding_4_holds_on_the_hand_table():
    v = F.finding_4(hand_table())
    assert v.verdict == F.HOLDS
    # GMP 80: (3-4)/4 = -0.25, (9-10)/10 = -0.1 -> -0.175; AC/DC 80: 0.25, 0.2 -> 0.225.
    assert check(v, 0).numbers.startswith("80 %: progressive -0.175 vs regularization 0.225")
    # Gaps at 80 %: cifar10 97 - 95 = 2, flowers 91 - 88 = 3 -> median 2.5 (LTH-T left out).
    assert check(v, 1).numbers == ("80 %: median 2.5 points, largest 3.0, over 2 pairs; "
                                   "90 %: median 2.5 points, largest 3.0, over 2 pairs")


def test_finding_4_does_not_hold():
    far = {**FULL_OK, ("acdc", 90, "cifar10"): 90.0, ("acdc", 90, "flowers"): 84.0}
    v = F.finding_4(table(full=far))
    assert v.verdict == F.DOES_NOT_HOLD
    # Gaps at 90 %: 95 - 90 = 5 and 89.5 - 84 = 5.5, median 5.25.
    assert check(v, 1).result is False
    assert check(v, 1).numbers.endswith("90 %: median 5.2 points, largest 5.5, over 2 pairs ✗")
    swapped = {(("gmp" if m == "acdc" else "acdc" if m == "gmp" else m), s, d): a
               for (m, s, d), a in FULL_OK.items()}
    v = F.finding_4(table(full=swapped))
    assert check(v, 0).result is False


def test_finding_4_not_testable_without_progressive_methods():
    only_reg = {k: v for k, v in FULL_OK.items() if k[0] != "gmp"}
    v = F.finding_4(table(full=only_reg))
    assert v.verdict == F.NOT_TESTABLE
    assert "no sparsity with both progressive and regularization methods" in v.why


# ----------------------------------------------------------------------------- finding 5

# LTH-T as the paper sees it. Full 80 %: (5-4)/4 = 0.25, (10.5-10)/10 = 0.05 -> 0.15, between
# gmp (0.0125) and acdc (0.175); full 90 %: (8-4)/4 = 1.0, (15-10)/10 = 0.5 -> 0.75, the worst;
# linear 90 %: (20-10)/10 = 1.0, (30-20)/20 = 0.5 -> 0.75, the worst.
LTH_FULL: Cells = {("lth_t", 80, "cifar10"): 95.0, ("lth_t", 80, "flowers"): 89.5,
                   ("lth_t", 90, "cifar10"): 92.0, ("lth_t", 90, "flowers"): 85.0}
LTH_LINEAR: Cells = {("lth_t", 90, "cifar10"): 80.0, ("lth_t", 90, "flowers"): 70.0}


def test_finding_5_holds():
    v = F.finding_5(table(linear={**LINEAR_OK, **LTH_LINEAR}, full={**FULL_OK, **LTH_FULL}))
    assert v.verdict == F.HOLDS
    assert check(v, 0).numbers == "80 %: LTH-T 0.150 vs worst other acdc 0.175"
    assert check(v, 1).numbers == "90 %: LTH-T 0.750 vs worst other acdc 0.350"
    assert check(v, 2).numbers == "90 %: LTH-T 0.750 vs worst other gmp 0.200"


def test_finding_5_does_not_hold():
    # LTH-T the worst at 80 % in full finetuning: (8-4)/4, (15-10)/10 -> 0.75.
    worst = {**LTH_FULL, ("lth_t", 80, "cifar10"): 92.0, ("lth_t", 80, "flowers"): 85.0}
    v = F.finding_5(table(linear={**LINEAR_OK, **LTH_LINEAR}, full={**FULL_OK, **worst}))
    assert v.verdict == F.DOES_NOT_HOLD
    assert [c.result for c in v.checks] == [False, True, True]
    assert check(v, 0).numbers == "80 %: LTH-T 0.750 vs worst other acdc 0.175 ✗"


def test_finding_5_not_testable_without_lth():
    v = F.finding_5(table(linear=LINEAR_OK, full=FULL_OK))
    assert v.verdict == F.NOT_TESTABLE
    assert v.why == "no LTH-T (lottery ticket) method in the table"


# ----------------------------------------------------------------------------- finding 6

# Three datasets so that a correlation means something. Difficulty (full - linear dense):
# cifar10 92 - 90 = 2, dtd 76 - 70 = 6, flowers 90 - 80 = 10. Linear alpha:
#   acdc 80: (10.5-10)/10 = 0.05, 0, (19.6-20)/20 = -0.02 (mean 0.01; r = -0.97)
#   acdc 90: (11-10)/10 = 0.1, 0, (18-20)/20 = -0.1 (mean 0; r = -1)
#   gmp 80: 0.1, 0, 0 (mean 0.0333); gmp 90: 0.1, (32.7-30)/30 = 0.09, 0.1 (mean 0.0967; r = 0)
#   gmp 98: (20-10)/10 = 1, (40-30)/30 = 0.333, (30-20)/20 = 0.5 (mean 0.611)
# Mean over acdc and gmp: 80 % 0.0217 -> 90 % 0.0483, flat. Full gmp: 80 % 0 -> 90 % 0.1.
LINEAR_3: Cells = {
    ("dense", 0, "cifar10"): 90.0, ("dense", 0, "dtd"): 70.0, ("dense", 0, "flowers"): 80.0,
    ("acdc", 80, "cifar10"): 89.5, ("acdc", 80, "dtd"): 70.0, ("acdc", 80, "flowers"): 80.4,
    ("gmp", 80, "cifar10"): 89.0, ("gmp", 80, "dtd"): 70.0, ("gmp", 80, "flowers"): 80.0,
    ("acdc", 90, "cifar10"): 89.0, ("acdc", 90, "dtd"): 70.0, ("acdc", 90, "flowers"): 82.0,
    ("gmp", 90, "cifar10"): 89.0, ("gmp", 90, "dtd"): 67.3, ("gmp", 90, "flowers"): 78.0,
    ("gmp", 98, "cifar10"): 80.0, ("gmp", 98, "dtd"): 60.0, ("gmp", 98, "flowers"): 70.0,
}
FULL_3: Cells = {
    ("dense", 0, "cifar10"): 92.0, ("dense", 0, "dtd"): 76.0, ("dense", 0, "flowers"): 90.0,
    ("gmp", 80, "cifar10"): 92.0, ("gmp", 80, "dtd"): 76.0, ("gmp", 80, "flowers"): 90.0,
    ("gmp", 90, "cifar10"): 91.2, ("gmp", 90, "dtd"): 73.6, ("gmp", 90, "flowers"): 89.0,
}


def test_finding_6_holds():
    v = F.finding_6(table(linear=LINEAR_3, full=FULL_3))
    assert v.verdict == F.HOLDS, v.why
    assert check(v, 0).numbers == "0.022 -> 0.048 (+0.027) over 2 method(s)"
    assert check(v, 1).numbers == "gmp: 98 % 0.611 vs at most 0.097 below"
    # Full gmp 90 %: (8.8-8)/8 = 0.1, (26.4-24)/24 = 0.1, (11-10)/10 = 0.1.
    assert check(v, 2).numbers == "80 % 0.000 -> 90 % 0.100 over 1 method(s)"
    assert check(v, 3).numbers == "r = -1.00 over 3 datasets"
    assert check(v, 3).details == ("regularization 90 %, cifar10: difficulty +2.0, α 0.100",
                                   "regularization 90 %, dtd: difficulty +6.0, α 0.000",
                                   "regularization 90 %, flowers: difficulty +10.0, α -0.100")
    assert check(v, 4).numbers == "r = -1.00 over 3 datasets vs at 80 % r = -0.97"
    assert check(v, 5).numbers.endswith("over 3 datasets vs regularization r = -1.00")


def test_finding_6_does_not_hold():
    # Not flat: every sparse model 3 points lower at 90 % in linear finetuning.
    lower = {k: a - 3 if k[1] == 90 else a for k, a in LINEAR_3.items()}
    v = F.finding_6(table(linear=lower, full=FULL_3))
    assert v.verdict == F.DOES_NOT_HOLD and check(v, 0).result is False
    # 98 % as good as 80 %: gmp 98 at gmp 80's accuracies.
    good = {**LINEAR_3, **{("gmp", 98, d): LINEAR_3["gmp", 80, d]
                           for d in ("cifar10", "dtd", "flowers")}}
    v = F.finding_6(table(linear=good, full=FULL_3))
    assert check(v, 1).result is False and check(v, 1).numbers.endswith("✗")
    # Regularization alpha rising with difficulty: flowers acdc 90 % at 78 -> (22-20)/20 = 0.1.
    rising = {**LINEAR_3, ("acdc", 90, "cifar10"): 90.0, ("acdc", 90, "flowers"): 78.0}
    v = F.finding_6(table(linear=rising, full=FULL_3))
    assert check(v, 3).result is False and v.verdict == F.DOES_NOT_HOLD
    # Full alpha falling with sparsity.
    swapped = {(m, {80: 90, 90: 80}.get(s, s), d): a for (m, s, d), a in FULL_3.items()}
    v = F.finding_6(table(linear=LINEAR_3, full=swapped))
    assert check(v, 2).numbers == "80 % 0.100 -> 90 % 0.000 over 1 method(s) ✗"


def test_finding_6_not_testable_on_two_datasets_without_98():
    two = {k: a for k, a in LINEAR_3.items() if k[2] != "dtd" and k[1] != 98}
    v = F.finding_6(table(linear=two, full={k: a for k, a in FULL_3.items() if k[2] != "dtd"}))
    assert v.verdict == F.NOT_TESTABLE
    assert [c.result for c in v.checks] == [True, None, True, None, None, None]
    assert "no method at 98 % and a lower sparsity in linear finetuning" in v.why
    assert ("task difficulty needs dense rows in both modes on at least 3 datasets "
            "(2 have them)") in v.why


# ----------------------------------------------------------------------------- finding 7

# MobileNet, linear: at 75 % within a point of dense on both datasets; at 90 % 3 points below.
MOBILE: Cells = {
    ("dense", 0, "cifar10"): 88.0, ("dense", 0, "flowers"): 78.0,
    ("gmp", 75, "cifar10"): 87.5, ("gmp", 75, "flowers"): 77.5,
    ("gmp", 90, "cifar10"): 85.0, ("gmp", 90, "flowers"): 75.0,
}


def test_findings_and_the_report_pick_the_same_main_arch():
    """One rule, `reports.prepare.pick_main_arch`: ResNet50 when it has finetuning rows, else
    the arch with most of them, the first seen on a tie."""
    from reports.prepare import pick_main_arch, prepare

    cells = {("dense", 0, "cifar10"): 90.0, ("GMP", 80, "cifar10"): 89.0}
    first, second = table(linear=cells, arch="vit_tiny"), table(linear=cells, arch="resnet18")
    for both in (pd.concat([first, second]), pd.concat([second, first])):
        expected = both["arch"].iloc[0]
        assert pick_main_arch(prepare(both)) == expected
        assert {v.arch for v in F.check_findings(both)[:6]} == {expected}
    resnet = table(linear={("dense", 0, "cifar10"): 90.0}, arch="ResNet-50")
    assert F.check_findings(pd.concat([first, resnet]))[0].arch == "ResNet-50"


def test_finding_7_holds_on_a_mobilenet_next_to_the_main_arch():
    df = pd.concat([table(linear=LINEAR_OK, full=FULL_OK, arch="resnet50"),
                    table(linear=MOBILE, arch="mobilenet_v1")], ignore_index=True)
    verdicts = F.check_findings(df)
    assert [v.arch for v in verdicts] == ["resnet50"] * 6 + ["mobilenet_v1", "resnet50"]
    assert verdicts[0].verdict == F.HOLDS  # finding 1 reads resnet50 only
    v = verdicts[6]
    assert v.verdict == F.HOLDS
    assert check(v, 0).numbers == ("linear finetuning 75 %: within 1 point on 2 of 2 datasets "
                                   "(mean gap -0.5)")
    assert check(v, 1).numbers == ("linear finetuning 90 %: within 1 point on 0 of 2 datasets "
                                   "(mean gap -3.0)")


def test_finding_7_does_not_hold_when_sparse_matches_above_75():
    good = {**MOBILE, ("gmp", 90, "cifar10"): 88.0, ("gmp", 90, "flowers"): 78.0}
    v = F.finding_7(table(linear=good, arch="MobileNetV1"))
    assert v.verdict == F.DOES_NOT_HOLD and check(v, 1).result is False


def test_finding_7_not_testable_without_mobilenet():
    v = F.finding_7(table(linear=LINEAR_OK, arch="resnet50"))
    assert v.verdict == F.NOT_TESTABLE
    assert v.why == "no MobileNet architecture in the table (archs: resnet50)"
    # Only levels above 75 %: the "up to 75 %" half cannot be tested.
    above = {k: v for k, v in MOBILE.items() if k[1] != 75}
    v = F.finding_7(table(linear=above, arch="mobilenet"))
    assert v.verdict == F.NOT_TESTABLE and [c.result for c in v.checks] == [None, True]


# ----------------------------------------------------------------------------- finding 8


def test_finding_8_holds_on_resnet50_speed_rows():
    df = pd.concat([table(linear=LINEAR_OK, arch="resnet_tiny"),
                    speed_rows({("gmp", 90): (2.5, 3.4), ("acdc", 90): (2.1, 3.6),
                                ("gmp", 80): (1.5, 2.0)}),
                    speed_rows({("gmp", 90): (1.1, 1.2)}, arch="resnet_tiny")],
                   ignore_index=True)
    v = F.finding_8(df)
    assert v.verdict == F.HOLDS
    # Only resnet50 at 90 %: (2.5 + 2.1) / 2 = 2.3, (3.4 + 3.6) / 2 = 3.5.
    assert check(v, 0).numbers == ("mean 2.30x over 2 cell(s) of the ResNet50 speed rows "
                                   "(range 2.10-2.50x)")
    assert check(v, 1).numbers.startswith("mean 3.50x over 2 cell(s)")
    assert "speed rows of resnet_tiny not counted (the paper's claim is about ResNet50)" \
        in v.notes


def test_finding_8_prefers_trained_weights_and_fails_below_3x():
    df = pd.concat([speed_rows({("gmp", 90): (2.4, 2.5)}, weights="trained"),
                    speed_rows({("random_uniform", 90): (5.0, 6.0)}, weights="random")],
                   ignore_index=True)
    v = F.finding_8(df)
    assert v.verdict == F.DOES_NOT_HOLD
    assert [c.result for c in v.checks] == [True, False]
    assert check(v, 1).numbers.startswith("mean 2.50x over 1 cell(s)")


def test_finding_8_epoch_speedup_from_times_and_missing_inference():
    rows = pd.DataFrame([dict(method="gmp", sparsity=90, dataset="pets", mode="speed", seed=0,
                              accuracy=None, epoch_time_s=10.0, dense_epoch_time_s=25.0)])
    v = F.finding_8(rows)  # no arch column: every speed row counts; 25 / 10 = 2.5
    assert check(v, 0).result is True and check(v, 0).numbers.startswith("mean 2.50x")
    assert v.verdict == F.NOT_TESTABLE
    assert "no speedup_inference in the speed rows (no arch column: all counted)" in v.why


def test_finding_8_not_testable_without_speed_rows():
    assert F.finding_8(table(linear=LINEAR_OK)).why == "no speed rows in the table"
    only_tiny = speed_rows({("gmp", 90): (2.5, 3.5)}, arch="resnet_tiny")
    v = F.finding_8(only_tiny)
    assert v.verdict == F.NOT_TESTABLE and v.why == "no usable ResNet50 speed rows"


# ----------------------------------------------------------------------------- outputs


def test_findings_table_and_markdown_on_the_sample_results():
    fake = fake_results()
    frame = F.findings_table(fake)
    assert list(frame.columns) == list(F.FINDINGS_COLUMNS)
    assert frame["finding"].tolist() == list(range(1, 9))
    assert set(frame["verdict"]) <= set(F.VERDICTS)
    assert frame["verdict"].notna().all() and (frame["why"] != "").all()
    by_number = dict(zip(frame["finding"], frame["verdict"]))
    assert by_number[2] == F.HOLDS and by_number[7] == F.NOT_TESTABLE
    assert by_number[8] == F.HOLDS
    text = F.write_findings(fake)
    assert text.startswith("## The paper's findings, checked")
    assert text.count("\n### ") == 8 and "| 8 | Speed at 90 %" in text


def test_paper_style_table_one_seed_labels_no_arch():
    # Dense accuracies of the paper's Table 1, one number per cell, as one would type them in.
    rows = [dict(method="Dense", sparsity=0, dataset=d, mode=mode, seed=0, accuracy=acc)
            for d, (lin, full) in PAPER_DENSE.items()
            for mode, acc in (("Linear", lin), ("Full", full))]
    verdicts = F.check_findings(pd.DataFrame(rows))
    assert len(verdicts) == 8 and verdicts[1].verdict == F.HOLDS
    assert verdicts[1].checks[0].numbers.startswith("12 of 12 datasets")
    assert verdicts[0].why == "no sparse linear finetuning rows with a dense baseline on the " \
                              "same dataset"


def test_write_report_has_the_section_and_findings_csv(tmp_path):
    paths = write_report(hand_table(), tmp_path / "report")
    text = paths.report_md.read_text()
    assert "## The paper's findings, checked" in text
    csv = pd.read_csv(tmp_path / "report" / "findings.csv")
    assert csv["finding"].tolist() == list(range(1, 9))
    assert csv.loc[csv["finding"] == 4, "verdict"].item() == F.HOLDS


@pytest.mark.parametrize("number", range(1, 9))
def test_every_finding_quotes_the_paper(number):
    title, paper = F.PAPER[number]
    assert title and paper.startswith('"') and "(Section" in paper
