"""One trial cannot take down the report: a failed or errored row of any stage is listed in
the report and in ``failed.csv``, and enters no number (every other table is the one the table
without it gives).

The bad rows are made as the sweep makes them: a ledger entry as ``orchestrator.progress``
records a failure (bad input) or an error (a traceback), turned into a row by the same code
that writes ``results.parquet``. Every stage of ``orchestrator.stages`` is tried with both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.aggregate import _row
from orchestrator.stages import STAGES
from search_spaces.trial import TrialSpec, to_dict
from tests.reports.sample_results import hand_table

ARCH = "resnet50"
TRACEBACK = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
             "TypeError: '<' not supported between instances of 'float' and 'str'")
BAD_INPUT = "BadInput: checkpoint /ckpt/gmp_95.pth is empty (0 bytes)"


def base_table() -> pd.DataFrame:
    """The hand-made transfer table with rows of every other stage: upstream (pretrain,
    prune), checkpoint (one line of ``upstream_eval`` each: the text column an errored row
    leaves empty) and speed."""
    backbones = (("dense", 0), ("gmp", 80), ("gmp", 90))
    rows = [dict(method=m, sparsity=s, dataset="imagenet", mode="checkpoint", seed=0,
                 accuracy=70.0 + s / 10, sparsity_measured=float(s), filters_pruned_share=0.01,
                 layer_stats_json=json.dumps({"conv1.weight": [s, 0.0]}),
                 upstream_eval="ImageNet val under the data root") for m, s in backbones]
    rows += [dict(method=m, sparsity=s, dataset="imagenet", mode="upstream", seed=0,
                  accuracy=76.0 - s / 10, sparsity_measured=float(s), filters_pruned_share=0.0)
             for m, s in backbones]
    rows += [dict(method="gmp", sparsity=s, dataset="flowers", mode="speed", seed=0,
                  accuracy=float("nan"), batch=64, epoch_time_s=10.0 / (1 + s / 40),
                  dense_epoch_time_s=10.0, speedup_epoch=1 + s / 40, speedup_inference=2.0,
                  online_accuracy=80.0, dense_online_accuracy=81.0, online_accuracy_gap=-1.0)
             for s in (80, 90)]
    hand = hand_table().replace({"method": {"AC/DC": "acdc", "GMP": "gmp", "LTH-T": "lth_t"}})
    table = pd.concat([hand, pd.DataFrame(rows)], ignore_index=True)
    return table.assign(arch=ARCH, status="finished")


def bad_row(stage: str, status: str) -> dict:
    """The results row of a ``stage`` trial that failed (bad input) or errored."""
    transfer = stage in ("linear", "full", "speed")
    spec = TrialSpec(stage=stage, method="gmp", sparsity=95, arch=ARCH,
                     dataset="flowers" if transfer else "imagenet",
                     seed=(9 if transfer else 0) + (status == "error"),
                     checkpoint="/ckpt/gmp_95.pth", checkpoint_hash="ab" * 32)
    entry = {"trial_id": spec.trial_id, "status": status, "spec": to_dict(spec),
             "error": TRACEBACK if status == "error" else BAD_INPUT, "metrics": {},
             "history": []}
    return _row(entry)


def report_files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*.csv"))}


CASES = [(s.name, status) for s in STAGES for status in ("failed", "error")]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> tuple[Path, Path]:
    """The report of the base table, and of the base table with a failed and an errored row
    of every stage (one report for all twelve: a report takes seconds)."""
    from reports.report import write_report

    clean, bad = tmp_path_factory.mktemp("clean"), tmp_path_factory.mktemp("bad")
    write_report(base_table(), clean)
    rows = pd.DataFrame([bad_row(stage, status) for stage, status in CASES])
    write_report(pd.concat([base_table(), rows], ignore_index=True), bad)
    return clean, bad


def test_no_number_moves(reports):
    clean, bad = (report_files(p) for p in reports)
    for name, content in clean.items():
        if name not in ("missing.csv", "failed.csv"):
            assert bad[name] == content, name


@pytest.mark.parametrize("stage, status", CASES)
def test_a_bad_row_of_any_stage_is_listed_never_counted(reports, stage, status):
    _, bad = reports
    listed = pd.read_csv(bad / "failed.csv")
    assert len(listed) == len(CASES), listed
    row = listed[listed["trial_id"] == bad_row(stage, status)["trial_id"]].iloc[0]
    assert (row["stage"], row["status"], row["method"], int(row["sparsity"])) == (
        stage, status, "gmp", 95)
    last = TRACEBACK.splitlines()[-1] if status == "error" else BAD_INPUT
    assert row["error"] == last
    text = (bad / "report.md").read_text()
    assert "Failed and errored trials" in text and last in text


def test_the_reports_command_on_a_sweep_folder_with_an_errored_checkpoint(tmp_path, capsys):
    from reports.__main__ import main

    table = pd.concat([base_table(), pd.DataFrame([bad_row("checkpoint", "error")])],
                      ignore_index=True)
    table.to_parquet(tmp_path / "results.parquet", index=False)
    assert main([str(tmp_path)]) == 0, capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "report" / "failed.csv")) == 1


def test_a_table_of_nothing_but_failures_still_gives_a_report(tmp_path):
    from reports.report import write_report

    write_report(pd.DataFrame([bad_row(stage, status) for stage, status in CASES]), tmp_path)
    assert "Failed and errored trials" in (tmp_path / "report.md").read_text()


def test_text_columns_with_gaps_sort_and_join(tmp_path):
    """A column a finished row fills with text and an errored one leaves empty (NaN) is read as
    text everywhere: with pandas' string dtype, ``astype(str)`` keeps NaN a float."""
    from reports.report import write_report

    table = base_table()
    table.loc[table["mode"] == "checkpoint", "accuracy"] = float("nan")
    table.loc[table.index[-1], "upstream_eval"] = None
    table.loc[table.index[-2], "upstream_eval"] = "no ImageNet under the data root"
    write_report(table, tmp_path)
    assert "Not measured:" in (tmp_path / "report.md").read_text()
