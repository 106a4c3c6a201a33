"""Stopping a sweep: SIGTERM and Ctrl-C print one line saying what is kept and
the exact command that resumes (no native stack dump, no traceback); a second sweep on the
same output folder is refused at once; a request the cluster can never meet exits 2 before
any trial runs. Each sweep is a subprocess on a small study (dense + GMP 80 % on digits)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bad_input import kit

pytestmark = pytest.mark.slow

NATIVE_DUMP = ("*** SIGTERM received", "PC: @", "*** SIGINT received")


def make_study(root: Path, **full: object) -> Path:
    """Linear (1 seed) and full finetuning (1 seed, 8 epochs in the Tune trial): 4 trials, the
    full ones long enough to be stopped mid-run; ``full`` changes modes.full and drops linear."""
    ckpt = root / "ckpt"
    kit.write_good_zoo(ckpt, sparsities=(80,))
    long_full = {**kit.FULL, "trainer": "auto", "recipe": {**kit.FULL["recipe"], "epochs": 8}}
    modes = ({"full": {**kit.FULL, **full}} if full
             else {"linear": kit.LINEAR, "full": long_full})
    return kit.write_study(root / "study.yaml", ckpt_dir=ckpt, modes=modes)


def resume_of(text: str) -> str:
    (line,) = [ln for ln in text.splitlines() if ln.startswith("stopped by ")]
    return line.split("Resume: ", 1)[1]


def assert_clean(text: str) -> None:
    for bad in NATIVE_DUMP + ("Traceback",):
        assert bad not in text, text[-3000:]


OVERRIDES = ["--set", "modes.full.recipe.epochs=7", "--set", "description=stopped, then resumed"]


@pytest.mark.timeout(900)
def test_sigterm_prints_one_line_and_its_command_resumes(tmp_path):
    study = make_study(tmp_path)
    out = tmp_path / "out"
    args = ["--study", str(study), "--out", str(out), "--num-cpus", "2", *OVERRIDES]
    sweep = kit.Sweep(args, tmp_path / "first.log")
    try:
        sweep.wait_for("the full stage", lambda: "[full] " in sweep.output(), 300)
        # A second driver on the same --out is refused at once, naming the first.
        t0 = time.monotonic()
        second = kit.run_cli(kit.sweep_cmd(*args), timeout=120)
        assert second.returncode == 2, second.stderr
        assert time.monotonic() - t0 < 60
        assert f"another sweep is running on {out}" in second.stderr
        assert f"PID {sweep.proc.pid}" in second.stderr
        os.kill(sweep.proc.pid, signal.SIGTERM)  # a plain `kill PID`, as `ray job stop` does
        code = sweep.wait(120)
    finally:
        sweep.kill()
    text = sweep.output()
    assert code == 143, text[-3000:]
    assert_clean(text)
    stopped = [ln for ln in text.splitlines() if ln.startswith("stopped by ")]
    assert len(stopped) == 1 and stopped[0].startswith("stopped by SIGTERM: ")
    assert f"kept in {out} (ledger trials/, MLflow)" in stopped[0]
    # What the overrides change is said before anything runs: the 2 full trials' ids.
    note = ("--set modes.full.recipe.epochs=7 --set 'description=stopped, then resumed': 2 "
            "trial(s) get ids the study file's grid does not have (full 2)")
    assert text.index(note) < text.index("[checkpoint]")
    resume = resume_of(text)
    assert resume == (f"cd {kit.REPO} && python -m orchestrator.sweep --study {study} "
                      f"--out {out} --num-cpus 2 --set modes.full.recipe.epochs=7 "
                      "--set 'description=stopped, then resumed'")

    # The printed command, run as printed, finishes the study: every trial once.
    as_printed = resume.replace("python -m", f"{sys.executable} -m")
    done = subprocess.run(["bash", "-c", as_printed], env=kit.BASE_ENV, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ledger = sorted(p.stem for p in (out / "trials").glob("*.json"))
    assert len(ledger) == 6  # dense and GMP 80 %: checkpoint, linear and full
    assert "[linear] all 2 trial(s) already done" in done.stderr
    assert_logs_and_study_kept(out, text, done.stderr)


def assert_logs_and_study_kept(out: Path, first: str, second: str) -> None:
    """Each run's log file: the terminal's lines with a time, a level and a logger, the
    stopped run's kept when the resumed one ran; both, and the study as run, on MLflow's
    summary run."""
    from mlflow.tracking import MlflowClient

    from search_spaces.loader import load_study

    logs = sorted((out / "logs").glob("sweep-*.log"))
    assert len(logs) == 2, logs
    stamped = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (\w+) +([\w.]+): (.*)$")
    for log, terminal in zip(logs, (first, second)):
        records = [stamped.match(line) for line in log.read_text().splitlines()]
        messages = [r.group(3) for r in records if r]
        ours = [ln for ln in terminal.splitlines() if ln.startswith(("[", "stopped by ",
                                                                     "study ", "--set "))]
        assert ours and all(ln in messages for ln in ours), (ours, messages)
        assert not stamped.match(terminal.splitlines()[0])  # no time on the terminal
    assert re.search(r" INFO +orchestrator: stopped by SIGTERM: ", logs[0].read_text())
    study = load_study(out / "study.yaml")
    assert study.mode("full").recipe.epochs == 7
    assert study.description == "stopped, then resumed"
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (exp,) = client.search_experiments(filter_string="name = 'sparse-transfer/faults'")
    (summary,) = client.search_runs([exp.experiment_id], "tags.aggregate_key = 'summary'")
    rid = summary.info.run_id
    assert {f.path for f in client.list_artifacts(rid, "logs")} == {
        f"logs/{p.name}" for p in logs}
    assert "study.yaml" in {f.path for f in client.list_artifacts(rid)}
    assert summary.data.tags["study_overrides"] == (
        "--set modes.full.recipe.epochs=7 --set 'description=stopped, then resumed'")


@pytest.mark.timeout(600)
def test_ctrl_c_to_the_whole_process_group_stops_with_one_line(tmp_path):
    study = make_study(tmp_path)
    out = tmp_path / "out"
    sweep = kit.Sweep(["--study", str(study), "--out", str(out), "--num-cpus", "2"],
                      tmp_path / "sweep.log")
    try:
        sweep.wait_for("the linear stage", lambda: "[linear] " in sweep.output(), 300)
        os.killpg(sweep.sid, signal.SIGINT)  # what a terminal's Ctrl-C sends
        code = sweep.wait(120)
    finally:
        sweep.kill()
    text = sweep.output()
    assert code == 130, text[-3000:]
    assert_clean(text)
    assert re.search(r"^stopped by Ctrl-C: \d+ of 6 trials are done", text, re.M), text[-3000:]
    assert "Tuner.restore" not in text  # Tune's own hint names the wrong way to resume
    assert "[full]" not in text and "summary" not in text  # nothing went on after the stop


@pytest.mark.timeout(300)
def test_a_worker_group_no_node_can_hold_exits_2_before_any_trial(tmp_path):
    # The case: 2 DDP workers x 1 CPU plus the trial's 0.2 on a 2-CPU machine.
    study = make_study(tmp_path, workers=2, cpus=1, trainer="ray_train")
    out = tmp_path / "out"
    done = kit.run_cli(kit.sweep_cmd("--study", str(study), "--out", str(out),
                                     "--num-cpus", "2"), timeout=240)
    assert done.returncode == 2, done.stderr[-3000:]
    err = done.stderr
    assert "full-finetuning trials (Ray Train, DDP) cannot start on this cluster" in err
    assert "modes.full.workers = 2" in err and "modes.full.cpus = 1" in err
    assert "largest node: {CPU: 2, GPU: 0}" in err
    assert ("What fits here (add one to the command): --set modes.full.workers=1; or "
            "--set modes.full.cpus=0.9") in err
    # ... and the whole command with the first, ready to paste
    assert re.search(r"^to run with the first: cd .* && python -m orchestrator\.sweep .*"
                     r"--num-cpus 2 --set modes\.full\.workers=1$", err, re.M), err[-2000:]
    assert not list((out / "trials").glob("*.json"))
