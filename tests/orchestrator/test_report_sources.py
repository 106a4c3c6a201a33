"""A report from a sweep's MLflow store equals the report from its results.parquet.

The fast test records hand-made trials the way the sweep does (ledger and MLflow, through
`record_success` / `record_failure`), including what tripped the MLflow reader before: speed
and pruning results named ``sparsity`` and ``seed``, a per-epoch history whose last accuracy is
not the reported (best-epoch) one, aggregate runs and a failed trial. The slow test does the
same on a real smoke study.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.aggregate import log_aggregates, results_frame, write_results
from orchestrator.ledger import Ledger
from orchestrator.progress import record_failure, record_success
from orchestrator.tracking import Tracker
from search_spaces.recipe import Recipe
from search_spaces.trial import TrialSpec
from tests.reports.sample_results import FULL_SEEDS, LINEAR_SEEDS

REPO = Path(__file__).resolve().parents[2]
LABELS = {"dense": "Dense", "gmp": "GMP", "acdc": "AC/DC", "lth_t": "LTH-T"}
KEYS = {label: key for key, label in LABELS.items()} | {"dense": "dense"}
FAMILIES = {"dense": "dense", "gmp": "progressive", "acdc": "regularization", "lth_t": "lottery"}


def method_facts(method: str, sparsity: int, mask_on_dense: bool | None = None
                 ) -> dict[str, str]:
    """As Study.method_facts gives them: a family per method, LTH-T's source."""
    if method not in FAMILIES:
        return {}
    return {"family": FAMILIES[method],
            **({"lth_source": "mask from gmp"} if method == "lth_t" else {})}
COMPARED = ("table1.csv", "alpha.csv")


def assert_same_csvs(a: Path, b: Path, names: tuple[str, ...] = COMPARED) -> None:
    """The CSVs of two report folders are equal, floats to a relative 1e-9 (the sums run in
    another row order)."""
    for name in names:
        left, right = pd.read_csv(a / name), pd.read_csv(b / name)
        assert len(left) > 0, f"{a / name} is empty"
        pd.testing.assert_frame_equal(left, right, check_exact=False, rtol=1e-9, atol=1e-9,
                                      obj=name)


def _history(best: float) -> str:
    """Three epochs whose best is ``best`` (epoch 2) and whose last is 2 points lower."""
    rows = [{"epoch": 1, "accuracy": best - 5}, {"epoch": 2, "accuracy": best},
            {"epoch": 3, "accuracy": best - 2}]
    return json.dumps(rows)


def record_hand_study(out: Path, experiment: str = "sparse-transfer/hand") -> str:
    """The hand table's trials (keys as method names) recorded as the sweep records them,
    plus a pruning run, random-weight speed trials, a failed trial and the aggregates, into
    ``out`` (ledger, mlflow.db, results.parquet). Returns the tracking URI."""
    uri = f"sqlite:///{out / 'mlflow.db'}"
    tracker = Tracker(uri, experiment, (out / "art").as_uri(), method_labels=LABELS,
                      method_facts=method_facts)
    ledger = Ledger(out / "trials")
    for mode, cells in (("linear", LINEAR_SEEDS), ("full", FULL_SEEDS)):
        for (method, sparsity, dataset), accuracies in cells.items():
            for seed, accuracy in enumerate(accuracies, start=1):
                spec = TrialSpec(stage=mode, method=KEYS[method], sparsity=sparsity,
                                 arch="resnet_tiny", dataset=dataset, seed=seed,
                                 recipe=Recipe(epochs=3), num_classes=10)
                record_success(ledger, tracker, spec, {
                    "accuracy": accuracy, "accuracy_last": accuracy - 2, "best_epoch": 2,
                    "history_json": _history(accuracy)})
    prune = TrialSpec(stage="prune", method="gmp", sparsity=90, arch="resnet_tiny",
                      dataset="shapes64", seed=0)
    record_success(ledger, tracker, prune, {"accuracy": 40.0, "sparsity": 0.9,
                                            "sparsity_measured": 90.0,
                                            "filters_pruned_share": 0.01})
    for sparsity, speedup in ((80, 2.0), (90, 3.0)):
        speed = TrialSpec(stage="speed", method="random_uniform", sparsity=sparsity,
                          arch="resnet50", dataset="synthetic", seed=0,
                          params=(("weights", "random"),))
        record_success(ledger, tracker, speed, {
            "sparsity": sparsity, "seed": 0, "weights": "random",
            "sparsity_profile": "uniform", "speedup_inference": speedup,
            "macs_share": 1 / (speedup * 2), "batch": 16})
    for method, sparsity, v2 in (("dense", 0, (50.0, 25.0, 80.0)), ("gmp", 90, (40.0, None, 65.0))):
        # Table 3: all three ImageNetV2 variants (their mean is accuracy_v2), then two of them
        upstream = TrialSpec(stage="checkpoint", method=method, sparsity=sparsity,
                             arch="resnet_tiny", dataset="imagenet", seed=0, num_classes=1000)
        variants = dict(zip(("accuracy_v2_matched_frequency", "accuracy_v2_threshold07",
                             "accuracy_v2_top_images"), v2))
        record_success(ledger, tracker, upstream, {
            "accuracy": 70.0 - sparsity / 10, "accuracy_real": 77.0 - sparsity / 10,
            **{k: v for k, v in variants.items() if v is not None},
            **({"accuracy_v2": sum(v2) / 3} if None not in v2 else {}),
            "upstream_eval": "evaluated on ImageNet val, ReaL, ImageNetV2 ..."})
    failed = TrialSpec(stage="linear", method="gmp", sparsity=80, arch="resnet_tiny",
                       dataset="dtd", seed=1, recipe=Recipe(epochs=3), num_classes=47)
    record_failure(ledger, tracker, failed, "DatasetError: dataset 'dtd' is missing")
    frame = results_frame(ledger, LABELS, method_facts)
    write_results(frame, out / "results.parquet")
    log_aggregates(frame, tracker)
    return uri


@pytest.fixture(scope="module")
def hand_study(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("hand-study")
    return out, record_hand_study(out)


def test_the_tracker_logs_identity_as_params_only(hand_study):
    from mlflow.tracking import MlflowClient

    _, uri = hand_study
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("sparse-transfer/hand")
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'trial'", max_results=1000)
    speed = [r for r in runs if r.data.params["stage"] == "speed"]
    assert len(speed) == 2
    for run in speed:
        assert "sparsity" not in run.data.metrics and "seed" not in run.data.metrics
        assert run.data.tags["weights"] == "random"
    labelled = [r for r in runs if r.data.params["method"] == "acdc"]
    assert labelled and all(r.data.tags["method_label"] == "AC/DC" for r in labelled)


def test_the_findings_in_mlflow_name_methods_by_label(hand_study):
    from mlflow.tracking import MlflowClient

    _, uri = hand_study
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("sparse-transfer/hand")
    (summary,) = client.search_runs([exp.experiment_id], "tags.aggregate_key = 'summary'")
    reasons = " ".join(v for k, v in summary.data.tags.items() if k.startswith("finding_"))
    assert "AC/DC" in reasons and "acdc" not in reasons


def test_mlflow_gives_the_results_table(hand_study):
    from reports.load import read_mlflow, read_results

    out, uri = hand_study
    table = read_results(out / "results.parquet")
    runs = read_mlflow(uri)  # the store's one sparse-transfer/* experiment
    assert runs.attrs["experiment"] == "sparse-transfer/hand"
    assert len(runs) == len(table)  # every trial run, aggregates left out
    key = ["trial_id"]
    columns = ["method", "method_label", "family", "lth_source", "sparsity", "arch", "dataset",
               "mode", "seed", "status", "accuracy", "accuracy_last", "weights"]
    lth = table[table["method"] == "lth_t"]
    assert set(lth["lth_source"]) == {"mask from gmp"} and set(lth["family"]) == {"lottery"}
    assert table.loc[table["method"] == "random_uniform", "family"].isna().all()
    left = table.sort_values(key)[columns].reset_index(drop=True)
    right = runs.sort_values(key)[columns].reset_index(drop=True)
    # The reported (best-epoch) accuracy, not the history's last epoch; params' sparsity.
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


def test_cli_reports_from_mlflow_and_from_the_table_are_equal(hand_study, tmp_path):
    from reports.__main__ import main

    out, _ = hand_study
    assert main([str(out), "--out", str(tmp_path / "from_table")]) == 0
    absolute = f"sqlite:///{(out / 'mlflow.db').resolve()}"
    assert main(["--mlflow-uri", absolute, "--experiment", "sparse-transfer/hand",
                 "--out", str(tmp_path / "from_mlflow")]) == 0
    assert_same_csvs(tmp_path / "from_table", tmp_path / "from_mlflow",
                     (*COMPARED, "speed_reference.csv", "missing.csv", "table3.csv"))
    t3 = pd.read_csv(tmp_path / "from_mlflow" / "table3.csv")
    assert t3["v2"].tolist()[0] == pytest.approx(155.0 / 3) and t3["v2"].isna().tolist() == [
        False, True]
    text = (tmp_path / "from_mlflow" / "report.md").read_text()
    assert "### Speed reference: random-weight ResNet50" in text
    assert not (tmp_path / "from_mlflow" / "arch-resnet50").exists()


def test_the_default_experiment_is_the_one_sweep_experiment(hand_study, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    from reports.__main__ import main
    from reports.load import sweep_experiment

    _, uri = hand_study
    assert sweep_experiment(uri) == "sparse-transfer/hand"
    other = f"sqlite:///{tmp_path / 'two.db'}"
    client = MlflowClient(other)
    for name in ("sparse-transfer/a", "sparse-transfer/b"):
        client.create_experiment(name, artifact_location=(tmp_path / name).as_uri())
    with pytest.raises(ValueError, match="several sparse-transfer/.*sparse-transfer/a, "):
        sweep_experiment(other)
    assert main(["--mlflow-uri", other, "--out", str(tmp_path / "r")]) == 2
    assert "name one with --experiment" in capsys.readouterr().err
    assert main(["--mlflow-uri", f"sqlite:///{tmp_path / 'nope.db'}"]) == 2
    assert "MLflow store not found" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()  # not created by looking


@pytest.mark.slow
def test_smoke_study_reports_from_mlflow_and_parquet_are_equal(smoke_study_dir, tmp_path):
    """`python -m reports --mlflow-uri` on the sweep's own store writes the same Table 1 and
    alpha as `python -m reports <out>` from results.parquet (and as the sweep's report)."""
    out = smoke_study_dir
    store = f"sqlite:///{(out / 'mlflow.db').resolve()}"
    commands = {
        "from_table": [str(out), "--out", str(tmp_path / "from_table")],
        "from_mlflow": ["--mlflow-uri", store, "--experiment", "sparse-transfer/tiny",
                        "--out", str(tmp_path / "from_mlflow")],
        "default_experiment": ["--mlflow-uri", store, "--out", str(tmp_path / "default")],
    }
    for name, args in commands.items():
        proc = subprocess.run([sys.executable, "-m", "reports", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
    assert_same_csvs(tmp_path / "from_table", tmp_path / "from_mlflow")
    assert_same_csvs(tmp_path / "from_table", tmp_path / "default")
    assert_same_csvs(out / "report", tmp_path / "from_mlflow")
    # The sweep's report opens on the study's arch, its methods by label.
    text = (out / "report" / "report.md").read_text()
    assert "This report is about the study's main architecture, `resnet_tiny`" in text
    assert "| AC/DC | 90 % |" in text and "| acdc |" not in text
    alpha = pd.read_csv(out / "report" / "alpha.csv")
    assert {"acdc", "gmp", "lth_t"} <= set(alpha["method"])
    assert set(alpha["method_label"]) >= {"AC/DC", "GMP", "LTH-T"}
