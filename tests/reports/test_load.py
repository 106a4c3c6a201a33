"""Reading results from files and from an MLflow experiment in a temporary SQLite store."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.reports.sample_results import hand_table
from reports.__main__ import main
from reports.load import read_mlflow, read_results
from reports.tables import table1


def test_read_results_parquet_and_csv(hand, tmp_path):
    hand.to_parquet(tmp_path / "r.parquet")
    hand.to_csv(tmp_path / "r.csv", index=False)
    pd.testing.assert_frame_equal(read_results(tmp_path / "r.parquet"), hand)
    assert len(read_results(tmp_path / "r.csv")) == len(hand)
    (tmp_path / "r.json").write_text("{}")
    with pytest.raises(ValueError, match="parquet or .csv"):
        read_results(tmp_path / "r.json")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_results(tmp_path / "missing.csv")


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """The hand-made table as MLflow runs, plus a failed run and an aggregate run.

    Built once per module: creating the SQLite store and its runs takes seconds.
    """
    hand = hand_table()
    tmp_path = tmp_path_factory.mktemp("mlflow")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("study", artifact_location=(tmp_path / "art").as_uri())
    for row in hand.itertuples(index=False):
        run_id = client.create_run(exp).info.run_id
        params = [Param(n, str(getattr(row, n)))
                  for n in ("method", "sparsity", "dataset", "mode", "seed")]
        client.log_batch(run_id, metrics=[Metric("accuracy", row.accuracy, 0, 0)],
                         params=params)
        client.set_terminated(run_id, "FINISHED")
    failed = client.create_run(exp).info.run_id
    for name, value in dict(method="GMP", sparsity=80, dataset="dtd", mode="linear",
                            seed=1).items():
        client.log_param(failed, name, value)
    client.set_terminated(failed, "FAILED")
    aggregate = client.create_run(exp).info.run_id  # no seed: not a trial
    client.log_param(aggregate, "method", "GMP")
    client.log_metric(aggregate, "alpha_mean", 0.1)
    client.set_terminated(aggregate, "FINISHED")
    return uri


def test_read_mlflow_experiment(hand, mlflow_store):
    import mlflow

    before = mlflow.get_tracking_uri()
    runs = read_mlflow(mlflow_store, "study")
    assert mlflow.get_tracking_uri() == before  # the global URI is restored
    assert runs.attrs["skipped_runs"] == 1  # the aggregate run
    assert len(runs) == len(hand) + 1
    assert runs["sparsity"].dtype.kind in "if" and runs["seed"].dtype.kind == "i"
    assert (runs["status"] == "failed").sum() == 1
    # Same Table 1 as from the table itself (the failed run adds dtd with no usable trial).
    trials = runs[runs["status"] != "failed"]
    pd.testing.assert_frame_equal(table1(trials), table1(hand))
    with pytest.raises(ValueError, match="no MLflow experiment named 'nope'"):
        read_mlflow(mlflow_store, "nope")


def test_cli_reads_mlflow(mlflow_store, tmp_path):
    out = tmp_path / "from_mlflow"
    assert main(["--mlflow-uri", mlflow_store, "--experiment", "study", "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "linear · GMP · 80 % · dtd: 0 of 3 seeds (failed: 1" in text
    t1 = pd.read_csv(out / "table1.csv")
    row = t1[(t1["dataset"] == "cifar10") & (t1["mode"] == "full") & (t1["sparsity"] == 90)]
    assert row["best_methods"].tolist() == ["LTH-T; GMP"]
