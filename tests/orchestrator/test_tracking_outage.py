"""An MLflow server that goes away mid-sweep: tracking calls never stop the sweep
(``Tolerant``), and MLflow is filled in from the ledger afterwards (``sync_from_ledger``)."""

from __future__ import annotations

import pytest

from orchestrator.ledger import ERROR, FAILED, FINISHED, Ledger
from orchestrator.tracking import TRIAL_TAG, Tracker
from orchestrator.tracking_outage import Tolerant, sync_from_ledger
from search_spaces.recipe import Recipe
from search_spaces.trial import TrialSpec, to_dict


def _spec(seed: int) -> TrialSpec:
    return TrialSpec(stage="linear", method="gmp", sparsity=90, arch="resnet_tiny",
                     dataset="digits", seed=seed, recipe=Recipe(epochs=3), num_classes=10)


class Flaky:
    """A tracker whose server is down until ``up`` is set."""

    uri = "http://user:secret@127.0.0.1:1"

    def __init__(self) -> None:
        self.up = True
        self.calls: list[str] = []

    def ensure_run(self, spec: TrialSpec) -> str:
        if not self.up:
            raise ConnectionError("Connection refused\nmore lines")
        self.calls.append(spec.trial_id)
        return "run-" + spec.trial_id


def test_a_failing_server_is_reported_once_skipped_then_found_back(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("orchestrator.tracking.time.monotonic", lambda: clock[0])
    said: list[str] = []
    flaky = Flaky()
    tr = Tolerant(flaky, said.append, retry_s=30)
    assert tr.ensure_run(_spec(1)) == "run-" + _spec(1).trial_id
    flaky.up = False
    assert tr.ensure_run(_spec(2)) is None  # raised: reported, the sweep goes on
    assert tr.ensure_run(_spec(3)) is None  # skipped until the next probe
    assert len(said) == 1 and "training goes on" in said[0] and "secret" not in said[0]
    assert "ConnectionError: Connection refused" in said[0]
    flaky.up = True
    clock[0] += 10
    assert tr.ensure_run(_spec(4)) is None  # still within retry_s: not even tried
    clock[0] += 25
    assert tr.ensure_run(_spec(5)) == "run-" + _spec(5).trial_id
    assert "answers again" in said[-1] and tr.down_since is None
    assert flaky.calls == [_spec(1).trial_id, _spec(5).trial_id]
    assert tr.uri == flaky.uri  # plain attributes pass through


def _tracked(tracker: Tracker) -> dict[str, list]:
    found: dict[str, list] = {}
    for run in tracker.client.search_runs([tracker.experiment_id], max_results=1000):
        if TRIAL_TAG in run.data.tags:  # not the stages' parent runs
            found.setdefault(run.data.tags[TRIAL_TAG], []).append(run)
    return found


def test_mlflow_is_filled_in_from_the_ledger_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    tracker = Tracker(uri, "sparse-transfer/test")
    ledger = Ledger(tmp_path / "trials")
    specs = [_spec(s) for s in range(5)]
    hist = [{"epoch": 1, "accuracy": 40.0}, {"epoch": 2, "accuracy": 45.0}]
    for s in specs[:3]:
        ledger.record(s.trial_id, {"status": FINISHED, "spec": to_dict(s),
                                   "metrics": {"accuracy": 45.0}, "history": hist})
    ledger.record(specs[3].trial_id, {"status": FAILED, "spec": to_dict(specs[3]),
                                      "error": "BadInput: x", "metrics": {}, "history": []})
    ledger.record(specs[4].trial_id, {"status": ERROR, "spec": to_dict(specs[4]),
                                      "error": "Traceback...", "metrics": {}, "history": []})
    # MLflow as a server outage leaves it: trial 0 logged, trial 1 started (RUNNING) and
    # created twice (a request retried after the server died), trials 2-4 never reached it.
    tracker.finish(specs[0], {"accuracy": 45.0}, hist)
    tracker.ensure_run(specs[1])
    tracker.client.create_run(tracker.experiment_id, run_name=specs[1].trial_id,
                                      tags={TRIAL_TAG: specs[1].trial_id, "kind": "trial"})

    fresh = Tracker(uri, "sparse-transfer/test")  # the next run of the sweep
    assert sync_from_ledger(fresh, ledger.entries()) == 4
    runs = _tracked(fresh)
    assert sorted(runs) == sorted(s.trial_id for s in specs)
    assert all(len(v) == 1 for v in runs.values()), {k: len(v) for k, v in runs.items()}
    status = {k: (v[0].info.status, v[0].data.tags.get("status")) for k, v in runs.items()}
    assert status[specs[2].trial_id] == ("FINISHED", "finished")
    assert status[specs[3].trial_id] == ("FAILED", "failed")
    assert status[specs[4].trial_id] == ("FAILED", "error")
    acc = fresh.client.get_metric_history(runs[specs[2].trial_id][0].info.run_id, "accuracy")
    assert sorted((m.step, m.value) for m in acc) == [(1, 40.0), (2, 45.0)]
    assert sync_from_ledger(fresh, ledger.entries()) == 0  # nothing left to do


def test_sync_through_a_down_server_is_skipped(tmp_path):
    said: list[str] = []
    tracker = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "sparse-transfer/test")
    tr = Tolerant(tracker, said.append)

    def broken(*args):
        raise OSError("database is locked")

    assert tr.guarded(broken) is None and tr.down_since is not None
    assert "OSError: database is locked" in said[0]


# ------------------------------------------------------------ the server cluster.yaml starts


def _start_server(command: str, env: dict, uri: str, home) -> int:
    """Run the config's MLflow command (it stops a previous server first) and wait until it
    answers; returns the process group it recorded."""
    import subprocess
    import time
    import urllib.request

    subprocess.run(["bash", "-c", command], env=env, check=True, timeout=60)
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                if r.status == 200:
                    return int((home / ".mlflow-server.pid").read_text())
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"MLflow did not come up on {uri}:\n"
                        f"{(home / 'mlflow-server.log').read_text()[-2000:]}")
        time.sleep(1)


def _wait_for(predicate, proc, timeout: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_sweep_survives_the_mlflow_server_going_away(tmp_path):
    """The server started as cluster.yaml's head starts it is killed mid-sweep: (1) restarted
    at once, the sweep goes on and MLflow ends with every trial once; (2) never back while
    a widened sweep runs: it finishes from the ledger, and the next run fills MLflow in."""
    import os
    import signal
    import subprocess
    import sys

    import pandas as pd
    import yaml
    from mlflow.tracking import MlflowClient

    from tests.orchestrator.test_cluster import (
        CLUSTER_YAML, ROOT, _free_port, _mlflow_command, _stop_group,
    )

    home, shared, out = tmp_path / "home", tmp_path / "shared", tmp_path / "out"
    home.mkdir()
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    _, command = _mlflow_command(yaml.safe_load(CLUSTER_YAML.read_text()))
    command = command.replace("--port 5000", f"--port {port}")
    server_env = {**os.environ, "HOME": str(home), "MLFLOW_HOST": "127.0.0.1",
                  "SPARSE_TRANSFER_SHARED": str(shared),
                  "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"}
    server_env.pop("MLFLOW_BACKEND_STORE_URI", None)
    sweep_env = {**os.environ, "NM_DISABLE_ANALYTICS": "1", "PYTHONPATH": str(ROOT),
                 # MLflow's own retries (7, minutes of back-off) would hide the outage.
                 "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    sweep_env.pop("MLFLOW_TRACKING_URI", None)
    sweep_env.pop("RAY_ADDRESS", None)

    def sweep(datasets: str) -> subprocess.Popen:
        argv = [sys.executable, "-m", "orchestrator.sweep", "--smoke-test", "--no-speed",
                "--no-report", "--methods", "gmp", "--modes", "linear", "--seeds", "2",
                "--datasets", datasets, "--archs", "resnet_tiny", "--num-cpus", "2",
                "--out", str(out),
                "--tracking-uri", uri]
        return subprocess.Popen(argv, cwd=ROOT, env=sweep_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def ledger_size() -> int:
        return len(list((out / "trials").glob("*.json")))

    def tracked() -> dict[str, list[str]]:
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("sparse-transfer/tiny")
        found: dict[str, list[str]] = {}
        for run in client.search_runs([exp.experiment_id], max_results=1000):
            if TRIAL_TAG in run.data.tags:
                found.setdefault(run.data.tags[TRIAL_TAG], []).append(
                    f"{run.info.status}/{run.data.tags.get('status')}")
        return found

    def results() -> list[str]:
        df = pd.read_parquet(out / "results.parquet")
        assert set(df["status"]) == {"finished"}, df.to_string()
        return sorted(df["trial_id"])

    pgid = _start_server(command, server_env, uri, home)
    try:
        # (1) Killed after the first trial (pretraining) ends, restarted by the same command.
        proc = sweep("digits")
        _wait_for(lambda: ledger_size() >= 1, proc, 400, "the first trial")
        os.killpg(pgid, signal.SIGKILL)
        pgid = _start_server(command, server_env, uri, home)
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, log[-4000:]
        # pretrain, prune, 2 checkpoint (dense, GMP), 2 backbones x 2 seeds of linear
        assert ledger_size() == 8
        first = results()
        assert len(first) == 8
        runs = tracked()
        assert sorted(runs) == first, log[-3000:]
        assert all(v == ["FINISHED/finished"] for v in runs.values()), runs

        # (2) Two more datasets' trials; the server dies at the first and stays down.
        proc = sweep("digits,textures")
        _wait_for(lambda: ledger_size() >= 9, proc, 400, "the first new trial")
        os.killpg(pgid, signal.SIGKILL)
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, log[-4000:]
        assert "training goes on" in log and "did not answer at the end" in log, log[-3000:]
        everything = results()
        assert len(everything) == 12 and set(first) < set(everything)

        pgid = _start_server(command, server_env, uri, home)
        missed = tracked()  # the dead server missed some ends (runs left RUNNING) or more
        assert len(missed) < 12 or any(v != ["FINISHED/finished"] for v in missed.values())
        proc = sweep("digits,textures")  # the next run: every trial done, MLflow filled in
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, log[-4000:]
        assert "logged from the ledger" in log, log[-3000:]
        runs = tracked()
        assert sorted(runs) == everything
        assert all(v == ["FINISHED/finished"] for v in runs.values()), runs
    finally:
        _stop_group(pgid)
