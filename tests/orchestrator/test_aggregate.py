"""The summary run carries the report's comparison with the paper."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestrator.aggregate import SUMMARY_KEY, log_paper_comparison
from orchestrator.tracking import Tracker
from reports.paper_comparison import compare
from reports.published import transfer_results


def test_the_summary_run_counts_shared_and_flagged_cells(tmp_path):
    paper = transfer_results()
    pets = paper[(paper["arch"] == "resnet50") & (paper["dataset"] == "pets")
                 & (paper["mode"] == "linear")].drop(columns=["method_label", "source"])
    moved = (pets["method"] == "str") & (pets["sparsity"] == 95)
    study = pets.assign(accuracy=pets["accuracy"] + moved * 2.0)
    report = tmp_path / "report"
    (report / "arch-mobilenet_v1").mkdir(parents=True)
    compare(study).to_csv(report / "paper_comparison.csv", index=False)
    pd.DataFrame(columns=["arch", "flagged"]).to_csv(
        report / "arch-mobilenet_v1" / "paper_comparison.csv", index=False)

    tracker = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "sparse-transfer/test")
    rid = tracker.log_report(SUMMARY_KEY, report)
    log_paper_comparison(report, tracker)
    run = tracker.client.get_run(rid)
    assert run.data.metrics["paper_shared_cells"] == 20  # dense + 19 sparse cells on pets
    assert run.data.metrics["paper_flagged_cells"] == 1
    assert run.data.tags["paper_flagged"] == "resnet50 str 95 % pets linear (+2.00)"
    assert "paper_comparison.csv" in {f.path for f in tracker.client.list_artifacts(rid)}


class _Recorder:
    """Stands in for the Tracker: what ``log_aggregates`` would send to MLflow."""

    def __init__(self) -> None:
        self.logged: dict[str, tuple[dict, dict]] = {}

    def log_aggregate(self, key, params, metrics, step, tags=None):
        self.logged[key] = (params, metrics)


def test_two_architectures_aggregates_do_not_overwrite_each_other():
    from orchestrator.aggregate import log_aggregates

    paper = transfer_results()
    pets = paper[(paper["dataset"] == "pets") & (paper["mode"] == "linear")
                 & paper["method"].isin(["dense", "acdc"])].drop(columns=["method_label",
                                                                           "source"])
    pets = pets.assign(status="finished")
    tracker = _Recorder()
    log_aggregates(pets, tracker)
    for arch in ("resnet50", "mobilenet_v1"):
        rows = pets[(pets["arch"] == arch) & (pets["method"] == "acdc")
                    & (pets["sparsity"] == 90)]
        params, metrics = tracker.logged[f"cell/{arch}/linear/acdc/90/pets"]
        assert params["arch"] == arch
        assert metrics["mean"] == pytest.approx(rows["accuracy"].mean())  # its own seeds only
        assert f"alpha/{arch}/linear/acdc/90/all" in tracker.logged
    assert not any(k.startswith("cell/linear/") for k in tracker.logged)


def test_one_architectures_aggregates_keep_their_keys():
    from orchestrator.aggregate import log_aggregates

    paper = transfer_results()
    pets = paper[(paper["dataset"] == "pets") & (paper["mode"] == "linear")
                 & (paper["arch"] == "resnet50") & paper["method"].isin(["dense", "acdc"])]
    tracker = _Recorder()
    log_aggregates(pets.drop(columns=["method_label", "source"]).assign(status="finished"),
                   tracker)
    params, _ = tracker.logged["cell/linear/acdc/90/pets"]
    assert "arch" not in params and "alpha/linear/acdc/90/all" in tracker.logged
