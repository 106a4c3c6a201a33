"""Table 1, alpha and cell statistics against numbers worked out by hand (see conftest.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reports.naming import dataset_group, is_lottery_ticket
from reports.prepare import prepare, prepare_with_notes
from reports.tables import (
    ALPHA_COLUMNS,
    TABLE1_COLUMNS,
    TABLE3_COLUMNS,
    alpha_by_dataset,
    alpha_table,
    cell_stats,
    difficulty,
    missing_cells,
    relative_error_increase,
    speed_table,
    speed_vs_accuracy,
    table1,
    upstream_table,
)

SQRT2 = math.sqrt(2.0)
SQRT_HALF = math.sqrt(0.5)


def _row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    assert mask.sum() == 1, f"expected one row for {where}, got {int(mask.sum())}"
    return frame[mask].iloc[0]


def test_relative_error_increase_by_hand():
    # dense err 10, sparse err 12 -> (12 - 10) / 10 = 0.2
    assert relative_error_increase(12.0, 10.0) == pytest.approx(0.2)
    # sparse better: err 16 vs dense 20 -> -4 / 20 = -0.2
    assert relative_error_increase(16.0, 20.0) == pytest.approx(-0.2)
    got = relative_error_increase(np.array([12.0, 3.0]), np.array([10.0, 4.0]))
    np.testing.assert_allclose(got, [0.2, -0.25])
    # A perfect dense model leaves alpha undefined.
    assert math.isnan(relative_error_increase(1.0, 0.0))


def test_cell_stats_mean_std_se_count(hand):
    cells = cell_stats(hand)
    assert list(cells.columns) == [
        "method", "sparsity", "dataset", "mode", "group", "mean", "std", "se", "count"
    ]
    # GMP 80 % linear cifar10: 84.5, 85, 85.5 -> mean 85, std 0.5, se 0.5 / sqrt(3)
    gmp = _row(cells, method="GMP", sparsity=80, dataset="cifar10", mode="linear")
    assert gmp["mean"] == pytest.approx(85.0)
    assert gmp["std"] == pytest.approx(0.5)
    assert gmp["se"] == pytest.approx(0.5 / math.sqrt(3))
    assert gmp["count"] == 3
    assert gmp["group"] == "general"
    # Dense full flowers: 89, 91 -> mean 90, std sqrt(2), se sqrt(2)/sqrt(2) = 1
    dense = _row(cells, method="dense", sparsity=0, dataset="flowers", mode="full")
    assert (dense["mean"], dense["std"], dense["se"], dense["count"]) == pytest.approx(
        (90.0, SQRT2, 1.0, 2)
    )
    assert dense["group"] == "specialized"
    # 2 datasets x (dense + 2 methods x 2 sparsities + LTH-T) x 2 modes = 24 cells
    assert len(cells) == 24


def test_table1_by_hand(hand):
    t = table1(hand)
    assert list(t.columns) == list(TABLE1_COLUMNS)
    assert len(t) == 8  # 2 datasets x 2 modes x 2 sparsities
    expected = [
        # dataset, mode, sparsity, dense mean, dense std, best methods, best mean, best std, n
        # linear cifar10 80: AC/DC 88±1 = [87, 89]; GMP 85±0.5 = [84.5, 85.5] does not reach 87
        ("cifar10", "linear", 80, 90.0, 1.0, "AC/DC", 88.0, 1.0, 3),
        # linear cifar10 90: AC/DC 86±1 = [85, 87]; GMP 85.5±0.5 = [85, 86] overlaps -> both.
        # LTH-T (95) would be top but is no candidate in linear finetuning.
        ("cifar10", "linear", 90, 90.0, 1.0, "AC/DC; GMP", 86.0, 1.0, 3),
        # full cifar10 80: GMP 97±0.707 = [96.29, 97.71]; AC/DC 95±0.707 tops at 95.71 -> GMP
        ("cifar10", "full", 80, 96.0, SQRT2, "GMP", 97.0, SQRT_HALF, 2),
        # full cifar10 90: LTH-T 97.5±0.707 = [96.79, 98.21]; GMP 96±1.414 = [94.59, 97.41]
        # overlaps; AC/DC 94±1.414 tops at 95.41 -> "LTH-T; GMP"
        ("cifar10", "full", 90, 96.0, SQRT2, "LTH-T; GMP", 97.5, SQRT_HALF, 2),
        # linear flowers 80: AC/DC 84±1 = [83, 85]; GMP 76±1 -> AC/DC
        ("flowers", "linear", 80, 80.0, 1.0, "AC/DC", 84.0, 1.0, 3),
        # linear flowers 90: AC/DC 82±1; GMP 75±1; LTH-T excluded -> AC/DC
        ("flowers", "linear", 90, 80.0, 1.0, "AC/DC", 82.0, 1.0, 3),
        # full flowers 80: GMP 91±1.414 = [89.59, ...]; AC/DC 88±1.414 tops at 89.41 -> GMP
        ("flowers", "full", 80, 90.0, SQRT2, "GMP", 91.0, SQRT2, 2),
        # full flowers 90: GMP 89±1.414 = [87.59, ...]; AC/DC 86 tops at 87.41; LTH-T 85 -> GMP
        ("flowers", "full", 90, 90.0, SQRT2, "GMP", 89.0, SQRT2, 2),
    ]
    for dataset, mode, sparsity, dm, ds, names, bm, bs, n in expected:
        row = _row(t, dataset=dataset, mode=mode, sparsity=sparsity)
        assert row["dense_mean"] == pytest.approx(dm)
        assert row["dense_std"] == pytest.approx(ds)
        assert row["best_methods"] == names
        assert row["best_mean"] == pytest.approx(bm)
        assert row["best_std"] == pytest.approx(bs)
        assert row["n_seeds"] == n


def test_table1_overlap_names_every_overlapping_method():
    # Three methods at 80 %: A 90±1 = [89, 91] (top), B 88.5±0.5 = [88, 89] touches 89,
    # C 87±1 = [86, 88] misses -> "A; B".
    rows = []
    for method, accs in {"A": (89, 90, 91), "B": (88, 88.5, 89), "C": (86, 87, 88)}.items():
        for seed, acc in enumerate(accs):
            rows.append(dict(method=method, sparsity=80, dataset="dtd", mode="linear",
                             seed=seed, accuracy=acc))
    t = table1(pd.DataFrame(rows), sparsities=(80,))
    assert t["best_methods"].tolist() == ["A; B"]
    assert np.isnan(t["dense_mean"].iloc[0])  # no dense rows: dense stays empty


def test_alpha_table_by_hand(hand):
    alpha = alpha_table(hand)
    assert list(alpha.columns) == list(ALPHA_COLUMNS)

    def check(mode, method, sparsity, group, mean, se, n):
        row = _row(alpha, mode=mode, method=method, sparsity=sparsity, group=group)
        assert row["alpha_mean"] == pytest.approx(mean)
        if se is None:
            assert np.isnan(row["alpha_se"])
        else:
            assert row["alpha_se"] == pytest.approx(se)
        assert row["n_datasets"] == n

    # linear AC/DC 80: cifar10 err 12 vs 10 -> 0.2; flowers err 16 vs 20 -> -0.2.
    # mean 0, std of (0.2, -0.2) = 0.2828, se = 0.2828 / sqrt 2 = 0.2 (for two values |a-b|/2)
    check("linear", "AC/DC", 80, "all", 0.0, 0.2, 2)
    check("linear", "AC/DC", 80, "general", 0.2, None, 1)
    check("linear", "AC/DC", 80, "specialized", -0.2, None, 1)
    # linear GMP 80: cifar10 err 15 vs 10 -> 0.5; flowers 24 vs 20 -> 0.2; mean 0.35, se 0.15
    check("linear", "GMP", 80, "all", 0.35, 0.15, 2)
    # linear AC/DC 90: cifar10 14 vs 10 -> 0.4; flowers 18 vs 20 -> -0.1; mean 0.15, se 0.25
    check("linear", "AC/DC", 90, "all", 0.15, 0.25, 2)
    # linear GMP 90: cifar10 14.5 vs 10 -> 0.45; flowers 25 vs 20 -> 0.25; mean 0.35, se 0.1
    check("linear", "GMP", 90, "all", 0.35, 0.1, 2)
    check("linear", "GMP", 90, "general", 0.45, None, 1)
    # linear LTH-T 90 stays in the table: cifar10 5 vs 10 -> -0.5; flowers 30 vs 20 -> 0.5
    check("linear", "LTH-T", 90, "all", 0.0, 0.5, 2)
    # full AC/DC 80: cifar10 err 5 vs 4 -> 0.25; flowers 12 vs 10 -> 0.2; mean 0.225, se 0.025
    check("full", "AC/DC", 80, "all", 0.225, 0.025, 2)
    # full GMP 80: cifar10 3 vs 4 -> -0.25; flowers 9 vs 10 -> -0.1; mean -0.175, se 0.075
    check("full", "GMP", 80, "all", -0.175, 0.075, 2)
    # full GMP 90: cifar10 4 vs 4 -> 0; flowers 11 vs 10 -> 0.1; mean 0.05, se 0.05
    check("full", "GMP", 90, "all", 0.05, 0.05, 2)
    # full LTH-T 90: cifar10 2.5 vs 4 -> -0.375; flowers 15 vs 10 -> 0.5; mean 0.0625,
    # se |(-0.375) - 0.5| / 2 = 0.4375
    check("full", "LTH-T", 90, "specialized", 0.5, None, 1)
    check("full", "LTH-T", 90, "all", 0.0625, 0.4375, 2)
    # 5 (method, sparsity) x 2 modes x 3 groups
    assert len(alpha) == 30


def test_alpha_by_dataset_errors(hand):
    per = alpha_by_dataset(hand)
    row = _row(per, mode="linear", method="AC/DC", sparsity=80, dataset="cifar10")
    assert (row["err_sparse"], row["err_dense"], row["alpha"]) == pytest.approx((12, 10, 0.2))


def test_fractions_give_the_same_results(hand):
    fractions = hand.assign(sparsity=hand["sparsity"] / 100.0)
    pd.testing.assert_frame_equal(table1(fractions), table1(hand))
    pd.testing.assert_frame_equal(alpha_table(fractions), alpha_table(hand))
    pd.testing.assert_frame_equal(cell_stats(fractions), cell_stats(hand))
    _, notes = prepare_with_notes(fractions)
    assert any("fractions" in n for n in notes)
    assert sorted(prepare(fractions)["sparsity"].unique()) == [0, 80, 90]


def test_failed_rows_are_excluded_and_missing(hand):
    # Seed 3 of GMP 80 % linear cifar10 failed (its accuracy, if any, must not count).
    failed = hand.assign(status="finished")
    mask = ((failed["method"] == "GMP") & (failed["sparsity"] == 80)
            & (failed["dataset"] == "cifar10") & (failed["mode"] == "linear")
            & (failed["seed"] == 3))
    failed.loc[mask, ["status", "accuracy"]] = ["failed", 10.0]
    cells = cell_stats(failed)
    gmp = _row(cells, method="GMP", sparsity=80, dataset="cifar10", mode="linear")
    # Seeds 1, 2 left: 84.5, 85 -> mean 84.75
    assert gmp["count"] == 2
    assert gmp["mean"] == pytest.approx(84.75)
    missing = missing_cells(failed)
    assert len(missing) == 1
    row = missing.iloc[0]
    assert (row["mode"], row["method"], row["sparsity"], row["dataset"]) == (
        "linear", "GMP", 80, "cifar10")
    assert (row["n_seeds"], row["n_expected"], row["failed_seeds"]) == (2, 3, "3")
    # Other cells are untouched: the hand-made Table 1 of linear cifar10 80 % still holds.
    t = table1(failed)
    assert _row(t, dataset="cifar10", mode="linear", sparsity=80)["best_methods"] == "AC/DC"


def test_a_failed_attempt_later_retried_is_not_missing(hand):
    retry = pd.concat([
        hand.head(1).assign(status="failed", accuracy=np.nan),
        hand.assign(status="finished"),
    ])
    assert missing_cells(retry).empty
    pd.testing.assert_frame_equal(cell_stats(retry), cell_stats(hand))


def test_missing_cells_of_a_partial_grid(hand):
    # Drop GMP 90 % full flowers entirely and one seed of dense linear cifar10.
    part = hand[~((hand["method"] == "GMP") & (hand["sparsity"] == 90)
                  & (hand["dataset"] == "flowers") & (hand["mode"] == "full"))]
    part = part[~((part["method"] == "dense") & (part["dataset"] == "cifar10")
                  & (part["mode"] == "linear") & (part["seed"] == 2))]
    missing = missing_cells(part)
    got = {(r.mode, r.method, r.sparsity, r.dataset, r.n_seeds, r.n_expected, r.missing_seeds)
           for r in missing.itertuples()}
    assert got == {
        ("linear", "dense", 0, "cifar10", 2, 3, "2"),
        ("full", "GMP", 90, "flowers", 0, 2, "1, 2"),
    }


def test_group_from_map_and_column(hand):
    assert dataset_group("CIFAR-10") == "general"
    assert dataset_group("Oxford Flowers 102") == "specialized"
    assert dataset_group("Oxford-IIIT Pets") == "specialized"
    assert dataset_group("FGVC Aircraft") == "specialized"
    assert dataset_group("Stanford Cars") == "specialized"
    assert dataset_group("SUN397") == "general"
    assert dataset_group("Caltech-256") == "general"
    assert dataset_group("Food-101") == "specialized"
    assert dataset_group("mnist") == "unknown"
    renamed = hand.replace({"dataset": {"cifar10": "CIFAR-10", "flowers": "Oxford Flowers 102"}})
    alpha = alpha_table(renamed)
    assert set(alpha["group"]) == {"all", "general", "specialized"}
    # A given group column wins over the built-in map.
    regrouped = hand.assign(group="specialized")
    assert set(alpha_table(regrouped)["group"]) == {"all", "specialized"}
    unknown = hand.replace({"dataset": {"flowers": "my_dataset"}})
    assert set(alpha_table(unknown)["group"]) == {"all", "general"}
    _, notes = prepare_with_notes(unknown)
    assert any("my_dataset" in n for n in notes)


def test_lottery_ticket_names():
    assert is_lottery_ticket("LTH-T")
    assert is_lottery_ticket("lth_t (GMP mask)")
    assert not is_lottery_ticket("GMP")
    assert not is_lottery_ticket("AC/DC")


def test_difficulty_is_full_minus_linear_dense(hand):
    d = difficulty(hand).set_index("dataset")
    # cifar10: dense full 96 - dense linear 90 = 6; flowers: 90 - 80 = 10
    assert d.loc["cifar10", "difficulty"] == pytest.approx(6.0)
    assert d.loc["flowers", "difficulty"] == pytest.approx(10.0)


def test_arch_keys_keep_backbones_apart(hand):
    both = pd.concat([hand.assign(arch="resnet50"),
                      hand.assign(arch="resnet18", accuracy=hand["accuracy"] - 5)])
    cells = cell_stats(both)
    assert cells.columns[0] == "arch"
    assert len(cells) == 48
    t = table1(both)
    r50 = t[t["arch"] == "resnet50"].drop(columns="arch").reset_index(drop=True)
    pd.testing.assert_frame_equal(r50, table1(hand))


def test_empty_and_required_columns():
    empty = pd.DataFrame(columns=["method", "sparsity", "dataset", "mode", "seed", "accuracy"])
    assert table1(empty).empty and list(table1(empty).columns) == list(TABLE1_COLUMNS)
    assert alpha_table(empty).empty
    assert cell_stats(empty).empty
    assert missing_cells(empty).empty
    with pytest.raises(ValueError, match="seed, accuracy"):
        prepare(pd.DataFrame({"method": [], "sparsity": [], "dataset": [], "mode": []}))
    with pytest.raises(ValueError, match="sparsity"):
        prepare(pd.DataFrame({"method": ["a"], "sparsity": ["high"], "dataset": ["dtd"],
                              "mode": ["linear"], "seed": [1], "accuracy": [50.0]}))


def test_table3_has_imagenet_v2s_average_only_with_all_three_variants_and_each_beside_it():
    def row(method, sparsity, v2, **variants):
        return dict(method=method, sparsity=sparsity, dataset="imagenet", mode="checkpoint",
                    seed=0, status="finished", accuracy=70.0, accuracy_v2=v2,
                    upstream_eval=f"evaluated on {method}", **{f"accuracy_v2_{k}": v
                                                               for k, v in variants.items()})

    t3 = upstream_table(pd.DataFrame([
        row("gmp", 90, (50.0 + 25.0 + 80.0) / 3, matched_frequency=50.0, threshold07=25.0,
            top_images=80.0),
        row("acdc", 90, np.nan, matched_frequency=60.0, top_images=70.0),  # threshold-0.7 missing
        row("dense", 0, 66.0),  # an older table's accuracy_v2: one variant, unnamed
    ]))
    assert tuple(t3.columns) == TABLE3_COLUMNS == (
        "method", "sparsity", "top1", "real", "v2", "v2_matched_frequency", "v2_threshold07",
        "v2_top_images", "n", "upstream_eval")
    gmp = _row(t3, method="gmp")
    assert gmp["v2"] == pytest.approx(155.0 / 3)
    assert (gmp["v2_matched_frequency"], gmp["v2_threshold07"], gmp["v2_top_images"]) == (
        50.0, 25.0, 80.0)
    acdc = _row(t3, method="acdc")
    assert np.isnan(acdc["v2"]) and np.isnan(acdc["v2_threshold07"])
    assert acdc["v2_top_images"] == 70.0 and acdc["upstream_eval"] == "evaluated on acdc"
    assert np.isnan(_row(t3, method="dense")["v2"])  # never shown as the three-variant mean
    # A table with no variant columns (the paper's printed Table 3) is taken at its word.
    printed = upstream_table(pd.DataFrame([row("dense", 0, 72.0)]))
    assert _row(printed, method="dense")["v2"] == 72.0
def test_speed_vs_accuracy_takes_the_gap_of_the_online_runs(hand):
    """Figure 4's x axis is the speed rows' own online gap, whatever linear finetuning says:
    two rows of GMP 90 % with gaps 2 and 4 average to 3 (SE = std / sqrt(2) = 1.0); a row
    with only both accuracies gets sparse - dense; a synthetic row none."""
    speed = pd.DataFrame([
        dict(method="GMP", sparsity=90, dataset="pets", seed=s, online_accuracy_gap=g,
             online_accuracy=80 + g, dense_online_accuracy=80.0, loader_share=l)
        for s, g, l in ((0, 2.0, 0.2), (1, 4.0, 0.4))
    ] + [dict(method="AC/DC", sparsity=90, dataset="pets", seed=0, online_accuracy=77.5,
              dense_online_accuracy=80.0),
         dict(method="GMP", sparsity=90, dataset="synthetic", seed=0)]).assign(
        mode="speed", accuracy=np.nan, epoch_time_s=10.0, dense_epoch_time_s=25.0)
    linear = hand.assign(dataset="pets")  # linear rows of the same backbones, other gaps
    out = speed_vs_accuracy(pd.concat([linear, speed], ignore_index=True))
    gmp = _row(out, method="GMP", dataset="pets")
    assert gmp["gap"] == pytest.approx(3.0) and gmp["gap_se"] == pytest.approx(1.0)
    assert gmp["loader_share"] == pytest.approx(0.3) and gmp["speedup_epoch"] == 2.5
    acdc = _row(out, method="AC/DC", dataset="pets")
    assert acdc["gap"] == pytest.approx(-2.5) and np.isnan(acdc["gap_se"])
    assert np.isnan(_row(out, method="GMP", dataset="synthetic")["gap"])
    assert list(out.columns) == [*speed_table(speed).columns, "gap", "gap_se"]
