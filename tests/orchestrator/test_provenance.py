"""Provenance of every run: which code (the git commit, or a digest of the package files where
there is no git checkout, as under Ray Jobs), versions and machine; in every ledger entry and
so every row of results.parquet, and as tags of MLflow's parent runs and summary run."""

from __future__ import annotations

import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

from common import columns as C
from orchestrator.aggregate import SUMMARY_KEY, results_frame
from orchestrator.ledger import FINISHED, Ledger
from orchestrator.provenance import (
    PACKAGES, code_digest, package_digest, project_version, provenance,
)
from orchestrator.tracking import Tracker
from search_spaces.trial import TrialSpec, to_dict

REPO = Path(__file__).resolve().parents[2]
MADE_BY = {C.PROJECT_VERSION: "0.1.0", C.CODE_DIGEST: "sha256:0123456789abcdef",
           C.PYTHON_VERSION: "3.11.7", C.TORCH_VERSION: "2.14.1", C.RAY_VERSION: "2.60.0",
           C.DEEPSPARSE_VERSION: "1.8.0", C.MLFLOW_VERSION: "3.17.2", C.HOSTNAME: "driver",
           C.CPU_MODEL: "Driver CPU"}


def copy_without_git(dest: Path) -> Path:
    """The project's packages and pyproject.toml as Ray Jobs uploads them: no ``.git``."""
    for name in PACKAGES:
        shutil.copytree(REPO / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_every_fact_and_the_installed_versions():
    facts = provenance()
    assert tuple(facts) == C.PROVENANCE
    assert facts[C.PYTHON_VERSION] == platform.python_version()
    for column, dist in ((C.TORCH_VERSION, "torch"), (C.RAY_VERSION, "ray"),
                         (C.DEEPSPARSE_VERSION, "deepsparse"), (C.MLFLOW_VERSION, "mlflow")):
        assert facts[column] == metadata.version(dist)
    assert facts[C.PROJECT_VERSION] == project_version() != "not installed"
    assert all(facts.values())


def test_a_git_checkout_is_named_by_its_commit():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=False)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert code_digest().removesuffix("-dirty") == f"git:{head.stdout.strip()}"


def test_without_git_the_package_files_are_digested_wherever_they_were_copied(tmp_path):
    copy = copy_without_git(tmp_path / "job")
    digest = package_digest(copy)
    assert code_digest(copy) == f"sha256:{digest[:16]}"
    assert package_digest(copy_without_git(tmp_path / "again")) == digest  # same code
    (copy / "orchestrator" / "__pycache__").mkdir(exist_ok=True)
    (copy / "orchestrator" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert package_digest(copy) == digest  # caches are not code
    runner = copy / "orchestrator" / "runner.py"
    runner.write_text(runner.read_text() + "\n# changed\n")
    assert package_digest(copy) != digest
    assert project_version(copy) == project_version()  # read from the copy's pyproject.toml


def test_a_git_repository_above_the_packages_is_not_their_checkout(tmp_path):
    """A copy inside another repository (a home folder kept in git, around an installed copy
    or a job's upload) is digested by its files: that repository's commit is not its code."""
    outer = tmp_path / "home"
    outer.mkdir()
    for args in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                                  "--allow-empty", "-m", "dotfiles"]):
        done = subprocess.run(["git", *args], cwd=outer, capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip("git is not usable here")
    copy = copy_without_git(outer / "job")
    assert code_digest(copy) == f"sha256:{package_digest(copy)[:16]}"


def _entry(spec: TrialSpec, metrics: dict) -> dict:
    return {"status": FINISHED, "spec": to_dict(spec), "metrics": metrics, "history": []}


def test_every_row_carries_who_recorded_it_and_a_speed_row_its_own_machine(tmp_path):
    ledger = Ledger(tmp_path / "trials", provenance=MADE_BY)
    linear = TrialSpec("linear", "gmp", 90, "resnet_tiny", "digits", 21)
    speed = TrialSpec("speed", "gmp", 90, "resnet_tiny", "digits", 0)
    ledger.record(linear.trial_id, _entry(linear, {"accuracy": 50.0}))
    ledger.record(speed.trial_id, _entry(speed, {C.CPU_MODEL: "Speed node CPU",
                                                  C.HOSTNAME: "speed-node",
                                                  C.TORCH_VERSION: "2.14.1"}))
    old = TrialSpec("linear", "dense", 0, "resnet_tiny", "digits", 21)
    Ledger(tmp_path / "trials").record(old.trial_id, _entry(old, {"accuracy": 60.0}))
    df = results_frame(Ledger(tmp_path / "trials")).set_index(C.TRIAL_ID)
    row = df.loc[linear.trial_id]
    assert {c: row[c] for c in C.PROVENANCE} == MADE_BY
    timed = df.loc[speed.trial_id]
    assert (timed[C.CPU_MODEL], timed[C.HOSTNAME]) == ("Speed node CPU", "speed-node")
    assert timed[C.CODE_DIGEST] == MADE_BY[C.CODE_DIGEST]
    assert pd.isna(df.loc[old.trial_id, C.CODE_DIGEST])  # recorded without: empty, not guessed


def test_parent_and_summary_runs_are_tagged_by_each_run_that_uses_them(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    first = Tracker(uri, "sparse-transfer/test", provenance=MADE_BY)
    first.start_stage("linear", 2)
    summary = first.log_aggregate(SUMMARY_KEY, {"kind": "summary"}, {"x": 1.0}, 1)
    cell = first.log_aggregate("cell/linear/gmp/90/digits", {"mode": "linear"}, {"mean": 1}, 1)
    for rid in (first.parent("linear"), first.parent("cells"), summary):
        tags = first.client.get_run(rid).data.tags
        assert {c: tags[c] for c in C.PROVENANCE} == MADE_BY
    assert C.CODE_DIGEST not in first.client.get_run(cell).data.tags
    resumed = {**MADE_BY, C.CODE_DIGEST: "git:abc", C.HOSTNAME: "other"}
    second = Tracker(uri, "sparse-transfer/test", provenance=resumed)
    second.start_stage("linear", 2)
    second.log_aggregate(SUMMARY_KEY, {"kind": "summary"}, {"x": 2.0}, 2)
    for rid in (second.parent("linear"), summary):
        tags = second.client.get_run(rid).data.tags
        assert (tags[C.CODE_DIGEST], tags[C.HOSTNAME]) == ("git:abc", "other")


def test_files_and_tags_attached_to_the_summary_run(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "sparse-transfer/test",
                      artifact_location=(tmp_path / "art").as_uri())
    (tmp_path / "logs").mkdir()
    for name in ("sweep-1.log", "sweep-2.log"):
        (tmp_path / "logs" / name).write_text(name)
    (tmp_path / "study.yaml").write_text("name: x\n")
    rid = tracker.attach(SUMMARY_KEY, [tmp_path / "study.yaml"],
                         tags={"study_overrides": "--set a=1"})
    assert tracker.attach(SUMMARY_KEY, sorted((tmp_path / "logs").iterdir()), "logs") == rid
    assert tracker.client.get_run(rid).data.tags["study_overrides"] == "--set a=1"
    assert {f.path for f in tracker.client.list_artifacts(rid)} == {"study.yaml", "logs"}
    assert {f.path for f in tracker.client.list_artifacts(rid, "logs")} == {
        "logs/sweep-1.log", "logs/sweep-2.log"}
    assert tracker.client.get_run(rid).data.params == {"kind": "summary"}
