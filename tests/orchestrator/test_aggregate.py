"""The summary run carries the report's comparison with the paper."""

from __future__ import annotations

import pandas as pd

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
