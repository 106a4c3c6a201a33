"""A study next to the paper: the paper's own numbers with a few cells moved on purpose must
be flagged there and nowhere else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports import paper_comparison as P
from reports.published import paper_results
from reports.report import write_report
from tests.reports.sample_results import hand_table

# (arch, method, sparsity, dataset, mode) moved by +1.5 points on every seed.
SHIFTED = {("resnet50", "acdc", 90, "pets", "linear"), ("resnet50", "woodfisher", 80, "cars",
                                                          "full"),
           ("mobilenet_v1", "str", 75, "dtd", "linear")}


@pytest.fixture(scope="module")
def study() -> pd.DataFrame:
    """The paper's transfer rows as a study would write them (keys, labels dropped), with
    the cells of SHIFTED moved."""
    d = paper_results()
    d = d[d["mode"].isin(["linear", "full"])].drop(columns=["method_label", "source"])
    moved = pd.Series([k in SHIFTED for k in zip(d["arch"], d["method"], d["sparsity"],
                                                  d["dataset"], d["mode"])], index=d.index)
    return d.assign(accuracy=d["accuracy"] + np.where(moved, 1.5, 0.0))


@pytest.fixture(scope="module")
def comparison(study) -> pd.DataFrame:
    return P.compare(study)


def test_exactly_the_moved_cells_are_flagged(comparison):
    flagged = comparison[comparison["flagged"]]
    assert set(zip(flagged["arch"], flagged["method"], flagged["sparsity"], flagged["dataset"],
                   flagged["mode"])) == SHIFTED
    assert flagged["difference"].tolist() == pytest.approx([1.5] * 3)
    assert (comparison.loc[~comparison["flagged"], "difference"].abs() < 1e-9).all()


def test_every_cell_is_compared_with_its_test_named(comparison):
    # ResNet50: 12 datasets x (1 dense + 19 sparse cells) per mode; MobileNetV1: 12 x 10.
    assert len(comparison) == 12 * 20 * 2 + 12 * 10 * 2
    assert list(comparison.columns) == list(P.COLUMNS)
    one_seed = comparison[(comparison["arch"] == "mobilenet_v1") & (comparison["mode"] == "full")]
    assert set(one_seed["test"]) == {P.NO_TEST} and not one_seed["flagged"].any()
    assert set(comparison.loc[comparison["arch"] == "resnet50", "test"]) == {P.WELCH}


def test_single_seed_against_the_other_sides_spread():
    # The paper: 80, 81, 82 (mean 81, sd 1); a study value of 81 is not flagged, 90 is.
    p, test = P._test(np.array([80.0, 81.0, 82.0]), np.array([81.0]))
    assert test == P.PREDICTION and p == pytest.approx(1.0)
    p, _ = P._test(np.array([80.0, 81.0, 82.0]), np.array([90.0]))
    # t = 9 / (1 * sqrt(4/3)) = 7.79 with 2 degrees of freedom: p = 0.016 -> not below 0.01.
    assert p == pytest.approx(0.0161, abs=2e-4)


def test_labels_and_names_match_the_papers_keys(study):
    named = study.assign(method=study["method"].map({"acdc": "AC/DC"}).fillna(study["method"]),
                         dataset=study["dataset"].replace({"sun397": "SUN397"}),
                         arch=study["arch"].replace({"mobilenet_v1": "MobileNetV1"}))
    c = P.compare(named)
    assert len(c) == 720 and c["flagged"].sum() == 3
    assert "AC/DC" in set(c["method"]) and "SUN397" in set(c["dataset"])


def test_report_section_csv_and_figure(study, tmp_path):
    resnet = study[study["arch"] == "resnet50"]
    paths = write_report(resnet, tmp_path / "report")
    text = paths.report_md.read_text()
    section = text[text.index("## This study next to the paper"):text.index("## Table 1")]
    assert "480 cells of this study are in the paper's published results" in section
    assert "**2 flagged**" in section and "Welch's t-test" in section
    assert "| resnet50 | cars | WoodFisher | 80 % | full |" in section
    csv = pd.read_csv(tmp_path / "report" / "paper_comparison.csv")
    assert len(csv) == 480 and csv["flagged"].dtype == bool and csv["flagged"].sum() == 2
    assert set(csv.loc[csv["flagged"], "method"]) == {"acdc", "woodfisher"}
    assert (tmp_path / "report" / "paper_alpha.png").exists()
    pairs = P.alpha_pairs(resnet, P.compare(resnet))
    unmoved = pairs[~pairs["method"].isin(["acdc", "woodfisher"])]
    assert np.allclose(unmoved["paper_alpha"], unmoved["study_alpha"])


def test_a_study_sharing_nothing_says_so_in_one_line(tmp_path):
    paths = write_report(hand_table().assign(arch="resnet_tiny"), tmp_path / "report")
    text = paths.report_md.read_text()
    section = text[text.index("## This study next to the paper"):text.index("## Table 1")]
    assert section.strip().splitlines()[-1] == P.NOTHING_SHARED
    assert pd.read_csv(tmp_path / "report" / "paper_comparison.csv").empty
