"""End to end: a small grid through Ray Tune, Ray Train and MLflow, then a rerun.

Checks what a user relies on: every trial ran once, MLflow holds exactly one run per trial
plus the aggregates, the aggregate alpha equals a hand computation from the per-trial
metrics, and running the same sweep again changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import pandas as pd
import pytest

from orchestrator.grid import expand
from orchestrator.smoke import smoke_study
from orchestrator.sweep import SweepOptions
from search_spaces.loader import load_study, narrow

pytestmark = pytest.mark.slow


def small_study():
    s = smoke_study(load_study("tiny"))
    methods = []
    for m in s.methods:
        if m.name == "gmp":
            methods.append(dataclasses.replace(m, sparsities=(80, 90)))
        elif m.name in ("dense", "acdc"):
            methods.append(m)
    # Full finetuning through a Ray Train TorchTrainer, as on a cluster (the tiny study's
    # "auto" would train in the Tune trial on one CPU worker).
    modes = tuple(dataclasses.replace(m, trainer="ray_train") for m in s.modes)
    s = dataclasses.replace(s, methods=tuple(methods), modes=modes)
    return narrow(s, datasets="digits,textures", archs="resnet_tiny")


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    import ray

    from orchestrator.runner import run_sweep

    out = tmp_path_factory.mktemp("sweep")
    study = small_study()
    options = SweepOptions(out_dir=out, num_cpus=2, speed=False, verbose=0)
    code = run_sweep(study, options)
    yield study, out, options, code
    ray.shutdown()


def _trial_runs(out):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("sparse-transfer/tiny")
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    return client, runs


def test_every_trial_finished_once(swept):
    study, out, _, code = swept
    assert code == 0
    grid = expand(study, out)
    ids = {t.trial_id for t in grid.all_trials() if t.stage != "speed"}
    # pretrain 1 + prune 3 (gmp 80, gmp 90, acdc 90) + checkpoint 4 (one per backbone)
    # + 4 backbones x 2 datasets x (2 + 1)
    assert len(ids) == 1 + 3 + 4 + 4 * 2 * 3
    df = pd.read_parquet(out / "results.parquet")
    assert set(df["trial_id"]) == ids and (df["status"] == "finished").all()
    _, runs = _trial_runs(out)
    trial_runs = [r for r in runs if r.data.tags.get("kind") == "trial"]
    assert sorted(r.data.tags["trial_id"] for r in trial_runs) == sorted(ids)
    assert all(r.info.status == "FINISHED" for r in trial_runs)
    full = df[df["mode"] == "full"]
    assert (full["trainer"] == "ray_train").all()
    sparse = full[full["sparsity"] > 0]
    assert (sparse["masked_zeros"] > 0).all()  # the zeros are still there after training
    assert (out / "report" / "report.md").exists()


def test_alpha_in_mlflow_equals_hand_computation(swept):
    _, out, _, _ = swept
    _, runs = _trial_runs(out)
    acc = defaultdict(list)
    for r in runs:
        p = r.data.params
        if r.data.tags.get("kind") == "trial" and p.get("mode") in ("linear", "full"):
            acc[(p["mode"], p["method"], int(p["sparsity"]), p["dataset"])].append(
                r.data.metrics["accuracy"])
    mean = {k: sum(v) / len(v) for k, v in acc.items()}
    agg = {r.data.tags["aggregate_key"]: r.data.metrics for r in runs
           if r.data.tags.get("kind") == "aggregate"}
    checked = 0
    for (mode, method, sp, ds), m in mean.items():
        if sp == 0:
            continue
        alphas = []
        for d in ("digits", "textures"):
            err_s = 100 - mean[(mode, method, sp, d)]
            err_d = 100 - mean[(mode, "dense", 0, d)]
            alphas.append((err_s - err_d) / err_d)
        hand = sum(alphas) / len(alphas)
        assert agg[f"alpha/{mode}/{method}/{sp}/all"]["alpha_mean"] == pytest.approx(hand)
        cell = agg[f"cell/{mode}/{method}/{sp}/{ds}"]
        assert cell["mean"] == pytest.approx(m) and cell["count"] == len(acc[(mode, method, sp, ds)])
        checked += 1
    assert checked == 3 * 2 * 2  # 3 sparse backbones x 2 datasets x 2 modes


def test_rerun_changes_nothing(swept):
    from orchestrator.runner import run_sweep

    study, out, options, _ = swept
    _, before = _trial_runs(out)
    ledger_before = {p.name: p.read_text() for p in (out / "trials").glob("*.json")}
    assert run_sweep(study, options) == 0
    _, after = _trial_runs(out)
    assert {r.info.run_id for r in after} == {r.info.run_id for r in before}
    assert {p.name: p.read_text() for p in (out / "trials").glob("*.json")} == ledger_before
