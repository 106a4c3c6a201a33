"""The sweep submitted as a Ray Job, as the README shows it: `ray job submit --working-dir .
-- python -m orchestrator.sweep ...` to a `ray start --head` cluster of the test's own
(loopback dashboard, token authentication), from a copy of the project without ``.git`` (what
a job's working directory is). The job is stopped mid-study (`ray job stop`) and submitted
again: every trial ends in the results once, every run says which code made it (a digest of
the package files, there being no git commit), and each job's log file is kept."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.orchestrator.ray_head import BIN, start_head
from tests.orchestrator.test_provenance import copy_without_git

ROOT = Path(__file__).resolve().parents[2]
PROGRESS = re.compile(r"^\[(\w+)\] (\d+)/(\d+) done", re.M)


def _ray(head, *args: str, timeout: float = 180, cwd: Path = ROOT
         ) -> subprocess.CompletedProcess:
    command, *rest = args  # the address goes before `--` and the entrypoint
    # The job CLI prefers RAY_ADDRESS (the GCS, in ``head.env``) over ``--address`` and then looks
    # the dashboard up through a GCS client, which timed out on a loaded CI machine; pointing it
    # at the dashboard itself is how a user outside the cluster talks to Ray Jobs: HTTP only.
    env = {k: v for k, v in head.env.items() if k != "RAY_ADDRESS"}
    env["RAY_API_SERVER_ADDRESS"] = head.dashboard
    return subprocess.run([str(BIN / "ray"), "job", command, "--address", head.dashboard, *rest],
                          env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _status(head, job: str) -> str:
    done = _ray(head, "status", job)
    out = done.stdout + done.stderr
    # How `ray job status` words each state (ray/dashboard/modules/job/cli.py).
    for state, words in (("SUCCEEDED", "' succeeded"), ("STOPPED", "' was stopped"),
                         ("FAILED", "' failed")):
        if words in out:
            return state
    found = re.findall(r"Status for job '[^']+': (\w+)", out)
    return found[-1] if found else out


def _logs(head, job: str) -> str:
    return _ray(head, "logs", job).stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_sweep_runs_as_a_ray_job_stops_and_resumes_with_every_trial_once(tmp_path):
    import pandas as pd
    import ray._private.utils

    missing = ray._private.utils.get_dashboard_dependency_error()
    if missing:
        pytest.skip(f"Ray Jobs needs ray[default] (the dashboard's job server): {missing}; "
                    "`make setup` installs it")

    from orchestrator.grid import expand
    from orchestrator.smoke import smoke_study
    from search_spaces.loader import load_study, narrow

    out = tmp_path / "out"
    sweep = ["python", "-m", "orchestrator.sweep", "--smoke-test", "--methods", "gmp",
             "--datasets", "digits", "--archs", "resnet_tiny", "--no-speed", "--no-report",
             "--out", str(out)]
    study = narrow(smoke_study(load_study("tiny")), methods="gmp", datasets="digits",
                   archs="resnet_tiny")
    trial_ids = sorted(t.trial_id for t in expand(study, out).all_trials()
                       if t.stage != "speed")
    assert len(trial_ids) == 10  # pretrain, prune, 2 checkpoint, 4 linear, 2 full

    job_dir = copy_without_git(tmp_path / "job")  # what a job's working directory holds
    head = start_head(num_cpus=2, dashboard=True)
    try:
        first = _ray(head, "submit", "--no-wait", "--working-dir", ".", "--submission-id",
                     "sweep-1", "--", *sweep, cwd=job_dir)
        assert first.returncode == 0, first.stderr[-3000:]

        # Progress reaches the job's logs (the driver's stderr): wait for a finished trial.
        deadline = time.monotonic() + 400
        while True:
            logs = _logs(head, "sweep-1")
            done = sum(int(m.group(2)) for m in PROGRESS.finditer(logs)
                       if m.group(1) == "pretrain")
            if done and len(list((out / "trials").glob("*.json"))) < len(trial_ids):
                break
            assert time.monotonic() < deadline, logs[-3000:]
            assert _status(head, "sweep-1") in ("PENDING", "RUNNING"), logs[-3000:]
            time.sleep(2)
        assert "(RAY_ADDRESS)" in logs  # the driver joined the job's cluster

        stopped = _ray(head, "stop", "sweep-1")
        assert stopped.returncode == 0, stopped.stderr[-2000:]
        deadline = time.monotonic() + 120
        while _status(head, "sweep-1") not in ("STOPPED", "FAILED", "SUCCEEDED"):
            assert time.monotonic() < deadline
            time.sleep(2)
        assert _status(head, "sweep-1") == "STOPPED"
        logs = _logs(head, "sweep-1")
        assert "stopped by SIGTERM" in logs, logs[-3000:]
        assert "Resume: ray job submit --working-dir . -- python -m orchestrator.sweep" in logs
        assert "PC: @" not in logs and "*** SIGTERM received" not in logs
        kept = len(list((out / "trials").glob("*.json")))
        assert 1 <= kept < len(trial_ids)

        second = _ray(head, "submit", "--working-dir", ".", "--submission-id", "sweep-2", "--",
                      *sweep, timeout=700, cwd=job_dir)
        assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
        assert _status(head, "sweep-2") == "SUCCEEDED"
        logs = _logs(head, "sweep-2")
        assert "[pretrain] all 1 trial(s) already done" in logs, logs[-3000:]
    finally:
        head.stop()

    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df["trial_id"]) == trial_ids  # every trial, once
    assert set(df["status"]) == {"finished"}, df[["trial_id", "status", "error"]].to_string()
    assert_made_by_the_uploaded_code(out, df, job_dir)


def assert_made_by_the_uploaded_code(out: Path, df, job_dir: Path) -> None:
    """No git checkout under Ray Jobs, yet every row and the parent and summary runs name the
    code (the package files' digest), its versions and machine; each job left its log file,
    and the summary run holds both and the study as run."""
    from mlflow.tracking import MlflowClient

    from common import columns as C
    from orchestrator.provenance import package_digest

    digest = f"sha256:{package_digest(job_dir)[:16]}"
    assert set(df[C.CODE_DIGEST]) == {digest}
    assert df[list(C.PROVENANCE)].notna().all().all()
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (exp,) = [e for e in client.search_experiments() if e.name.startswith("sparse-transfer/")]
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("kind") in ("stage", "group")]
    (summary,) = [r for r in runs if r.data.tags.get("aggregate_key") == "summary"]
    assert {r.data.tags["stage"] for r in parents if "stage" in r.data.tags} >= {
        "pretrain", "prune", "linear", "full"}
    for run in [*parents, summary]:
        tags = run.data.tags
        assert tags[C.CODE_DIGEST] == digest, (run.info.run_name, tags)
        assert all(tags.get(c) for c in C.PROVENANCE), (run.info.run_name, tags)
        assert "mlflow.source.git.commit" not in tags
    logs = sorted((out / "logs").glob("sweep-*.log"))
    assert len(logs) == 2, logs  # one per job, the first kept when the second ran
    assert re.search(r"^\S+ INFO +orchestrator: stopped by SIGTERM: ", logs[0].read_text(), re.M)
    assert "[pretrain] all 1 trial(s) already done" in logs[1].read_text()
    rid = summary.info.run_id
    attached = {f.path for f in client.list_artifacts(rid, "logs")}
    assert attached == {f"logs/{p.name}" for p in logs}
    assert "study.yaml" in {f.path for f in client.list_artifacts(rid)}
