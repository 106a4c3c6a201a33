"""``--rehearsal``: the paper's grid through the real sweep with synthetic trials, marked as
such everywhere, and never mixed with a real study's folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from common.errors import BadInput
from orchestrator import sweep
from orchestrator.options import REHEARSAL_MARK, check_folder_kind
from tests.bad_input import kit

REPO = Path(__file__).resolve().parents[2]


def test_a_real_folder_and_a_rehearsal_folder_never_mix(tmp_path):
    fresh = tmp_path / "fresh"
    check_folder_kind(fresh, rehearsal=True)  # new folders are fine either way
    check_folder_kind(fresh, rehearsal=False)
    real = tmp_path / "real"
    (real / "trials").mkdir(parents=True)
    (real / "trials" / "linear-x.json").write_text("{}")
    with pytest.raises(BadInput, match="holds a real study's results"):
        check_folder_kind(real, rehearsal=True)
    check_folder_kind(real, rehearsal=False)
    rehearsal = tmp_path / "rehearsal"
    rehearsal.mkdir()
    (rehearsal / REHEARSAL_MARK).write_text("synthetic")
    (rehearsal / "results.parquet").write_text("")
    with pytest.raises(BadInput, match="rehearsal's folder"):
        check_folder_kind(rehearsal, rehearsal=False)
    check_folder_kind(rehearsal, rehearsal=True)


def test_the_rehearsal_has_its_own_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert sweep.main(["--study", "paper", "--rehearsal", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "output folder: runs/paper-rehearsal" in out and "2222" in out


def _sweep(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "NM_DISABLE_ANALYTICS": "1", "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "orchestrator.sweep", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slow
def test_a_paper_rehearsal_end_to_end(tmp_path):
    out = tmp_path / "out"
    args = ["--study", "paper", "--rehearsal", "--methods", "gmp", "--sparsities", "90",
            "--datasets", "pets,dtd", "--seeds", "1", "--num-cpus", "2", "--out", str(out), "-q"]
    done = _sweep(args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / REHEARSAL_MARK).exists()
    rows = pd.read_parquet(out / "results.parquet")
    # 2 backbones (dense, GMP 90 %) x (checkpoint 1 + linear 2 + full 2 + speed 4: Figure 4's
    # four online datasets)
    assert len(rows) == 18 and rows["rehearsal"].all() and (rows["status"] == "finished").all()
    assert set(rows["mode"]) == {"checkpoint", "linear", "full", "speed"}
    report = (out / "report" / "report.md").read_text()
    assert report.startswith("# REHEARSAL: ") and "synthetic numbers, not results" in report
    runs = kit.mlflow_runs(out)
    assert len(runs) > 10  # the trials and the aggregate runs
    assert all(r.data.tags.get("rehearsal") == "True" for r in runs)
    from mlflow.tracking import MlflowClient

    names = [e.name for e in MlflowClient(f"sqlite:///{out / 'mlflow.db'}").search_experiments()]
    assert "sparse-transfer/paper-rehearsal" in names and "sparse-transfer/paper" not in names

    # Rerun: nothing to do, answered from the ledger and the outputs stamp, no Ray started.
    again = _sweep(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "up to date (18 ledger entries): nothing to do" in again.stderr
    assert "Ray" not in again.stderr.replace("MLflow", "")

    # The real study refuses this folder, and the ledger's files still hold the marks.
    real = _sweep([a for a in args if a != "--rehearsal"])
    assert real.returncode == 2 and "rehearsal's folder" in real.stderr
    entry = json.loads(next((out / "trials").glob("linear-*.json")).read_text())
    assert entry["metrics"]["rehearsal"] is True
