"""A sweep writes nowhere but its output folder (and the store the user named): not in
``$HOME``, not in the folder it runs from, not in an earlier folder it was copied from; and
a rerun checks its outputs, not only their existence.

One tiny study (linear finetuning of a random ``resnet_tiny`` on the built-in digits) is run
with ``HOME`` and the working folder pointing at folders of the test, whose file trees are
compared before and after. The finished folder is then copied, its report deleted, and the
copy rerun: the report is rebuilt from the ledger into the copy, and the original's files
(MLflow artifacts included: MLflow keeps absolute artifact paths) are untouched.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.bad_input import kit

pytestmark = pytest.mark.slow


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: relative path -> (size, mtime in ns)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def sweep(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**kit.BASE_ENV, "HOME": str(home), "PYTHONPATH": str(kit.REPO)}
    return subprocess.run(kit.sweep_cmd(*args, "--num-cpus", "2"), cwd=cwd, env=env,
                          timeout=900, capture_output=True, text=True)


def artifact_roots(out: Path) -> set[str]:
    with sqlite3.connect(out / "mlflow.db") as db:
        found = {r[0] for r in db.execute("SELECT artifact_location FROM experiments "
                                          "WHERE name LIKE 'sparse-transfer/%'")}
        found |= {r[0].split("/mlartifacts/")[0] + "/mlartifacts"
                  for r in db.execute("SELECT artifact_uri FROM runs")}
    return found


def test_a_sweep_writes_only_its_folder_and_a_copy_stays_its_own(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    for folder in (home, cwd):
        folder.mkdir()
        (folder / "keep.txt").write_text("mine")
    kit.write_good_zoo(tmp_path / "ckpt")
    study = kit.write_study(tmp_path / "study.yaml", ckpt_dir=tmp_path / "ckpt")
    inputs = tmp_path / "ckpt"
    before = {p: tree(p) for p in (home, cwd, inputs)}
    out = tmp_path / "out"
    done = sweep(["--study", str(study), "--out", str(out)], home, cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    for path, files in before.items():
        assert tree(path) == files, f"{path} changed"
    assert artifact_roots(out) == {(out / "mlartifacts").as_uri()}
    assert (out / "mlartifacts").is_dir() and (out / "report" / "report.md").is_file()

    original = tree(out)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "report")
    again = sweep(["--study", str(study), "--out", str(copy)], home, cwd)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already done" in again.stderr and (copy / "report" / "report.md").is_file()
    assert tree(out) == original, "the rerun of the copy wrote into the original folder"
    assert artifact_roots(copy) == {(copy / "mlartifacts").as_uri()}

    # Its outputs now stamped as its own: a deleted report is noticed, not "nothing to do".
    shutil.rmtree(copy / "report")
    third = sweep(["--study", str(study), "--out", str(copy)], home, cwd)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "report.md is missing; rebuilding the report from the ledger" in third.stderr
    assert "nothing to do" not in third.stderr and (copy / "report" / "report.md").is_file()

    other = kit.write_study(tmp_path / "other.yaml", ckpt_dir=tmp_path / "ckpt", name="other")
    refused = sweep(["--study", str(other), "--out", str(out)], home, cwd)
    assert refused.returncode == 2
    assert f"--out {out} holds study 'faults'" in refused.stderr and "not 'other'" in refused.stderr
    assert tree(out) == original
