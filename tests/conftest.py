"""Fixtures shared across test packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_study_dir(tmp_path_factory) -> Path:
    """The output folder of one ``--smoke-test`` sweep, run as the README says (in a
    subprocess, so Ray and its settings end with it); shared by every slow test that reads a
    real study's outputs, since the sweep takes minutes."""
    out = tmp_path_factory.mktemp("smoke-study") / "out"
    env = {**os.environ, "NM_DISABLE_ANALYTICS": "1", "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)  # the study's own SQLite store, as by default
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.sweep", "--smoke-test", "--out", str(out), "-q"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200, check=False,
    )
    assert proc.returncode == 0, f"smoke sweep failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return out


@pytest.fixture(scope="session")
def s3_bucket(tmp_path_factory):
    """A bucket ``bucket`` on one S3 server (moto's) on 127.0.0.1 for the session, with this
    process's environment pointed at it (``tests/common/s3_server.py``)."""
    from tests.common.s3_server import s3_environment, start_s3_server

    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    server.make_bucket("bucket")
    with s3_environment(server):
        yield server
    server.stop()
