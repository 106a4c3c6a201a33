"""One driver per output folder: a second sweep on the same ``--out`` exits 2 at once naming
the running one, and a lock left by a driver killed with SIGKILL does not block the next."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import pytest

from orchestrator.lock import LOCK_NAME, SweepRunning, driver_lock

REPO = Path(__file__).resolve().parents[2]

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from orchestrator.lock import driver_lock
    with driver_lock(Path(sys.argv[1]), "python -m orchestrator.sweep --out X"):
        print("locked", flush=True)
        time.sleep(600)
""")


@pytest.fixture
def holder(tmp_path):
    """A separate driver process holding the lock of ``tmp_path``; SIGKILLed at the end."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_the_lock_file_names_the_driver(tmp_path):
    with driver_lock(tmp_path, "python -m orchestrator.sweep --out x") as info:
        on_disk = json.loads((tmp_path / LOCK_NAME).read_text())
    assert on_disk == info
    assert info["host"] == socket.gethostname() and info["pid"] == os.getpid()
    assert info["started"].endswith("+00:00") and info["command"].endswith("--out x")
    with driver_lock(tmp_path):  # released at the end of the block
        pass


def test_a_second_driver_is_refused_until_the_first_is_killed_with_sigkill(tmp_path, holder):
    t0 = time.monotonic()
    with pytest.raises(SweepRunning) as e:
        with driver_lock(tmp_path):
            pass
    assert time.monotonic() - t0 < 1  # at once, not after a wait
    text = str(e.value)
    assert f"another sweep is running on {tmp_path}" in text
    assert f"host {socket.gethostname()}, PID {holder.pid}, started 20" in text
    assert "(python -m orchestrator.sweep --out X)" in text

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    with driver_lock(tmp_path) as info:  # the kernel dropped the dead driver's lock
        assert info["pid"] == os.getpid()


def test_run_sweep_exits_2_on_a_locked_output_folder_before_touching_it(
        tmp_path, holder, capsys):
    from orchestrator.options import SweepOptions
    from orchestrator.runner import run_sweep
    from search_spaces.loader import load_study

    before = sorted(p.name for p in tmp_path.iterdir())
    code = run_sweep(load_study("tiny"), SweepOptions(out_dir=tmp_path))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: another sweep is running on {tmp_path}: host ")
    assert f"PID {holder.pid}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no MLflow store, no ledger


def test_a_file_system_without_locks_warns_and_runs(tmp_path, monkeypatch):
    import fcntl

    def no_locks(fd, op):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    said = []
    with driver_lock(tmp_path, warn=said.append):
        pass
    assert len(said) == 1 and "No locks available" in said[0]
