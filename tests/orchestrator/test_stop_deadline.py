"""SIGTERM ends the driver in time even when its unwinding blocks: a thread stuck reading a
FIFO (the hang a checkpoint path that is a FIFO once caused) keeps a process from exiting,
and the stop deadline (``runner.exit_by_deadline``) ends it with 128 + the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, threading, time
from orchestrator import runner
runner.STOP_DEADLINE_S = float(sys.argv[2])
if sys.argv[1] != "-":  # a non-daemon thread blocked for good: interpreter exit waits on it
    threading.Thread(target=lambda: open(sys.argv[1]).read()).start()
runner.stop_on_signals()
print("ready", flush=True)
try:
    while True:
        time.sleep(0.05)
except KeyboardInterrupt as e:
    print("stopped by", int(runner.stop_signal(e)), flush=True)
sys.exit(5)
"""


def _stop(fifo: str, deadline: float) -> tuple[int, float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, fifo, str(deadline)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    t0 = time.monotonic()
    child.send_signal(signal.SIGTERM)
    try:
        code = child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail("the process was still running 30 s after SIGTERM")
    return code, time.monotonic() - t0, child.stdout.read()


def test_sigterm_ends_a_process_whose_unwinding_blocks_at_the_deadline(tmp_path):
    fifo = tmp_path / "checkpoint.pth"
    os.mkfifo(fifo)
    code, waited, out = _stop(str(fifo), deadline=1.5)
    assert "stopped by 15" in out
    assert code == 128 + signal.SIGTERM
    assert 1.4 <= waited < 10


def test_a_process_that_unwinds_in_time_keeps_its_own_exit_code():
    code, waited, out = _stop("-", deadline=20)
    assert "stopped by 15" in out and code == 5 and waited < 10
