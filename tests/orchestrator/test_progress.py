"""What of a trial's last result is kept as its metrics."""

from __future__ import annotations

import json

from orchestrator.progress import split_result


def test_split_result_keeps_the_trial_facts_and_drops_tune_bookkeeping():
    result = {
        "accuracy": 71.5, "sparsity_profile": "uniform", "epoch_extrapolated": True,
        "cpu_model": "Intel(R) Xeon(R)", "history_json": json.dumps([{"epoch": 1, "loss": 2.0}]),
        "time_total_s": 3.2, "training_iteration": 1, "done": True, "pid": 4,
        "config": {"x": 1}, "node_ip": "127.0.0.1",
    }
    metrics, history = split_result(result)
    assert metrics == {"accuracy": 71.5, "sparsity_profile": "uniform",
                       "epoch_extrapolated": True, "cpu_model": "Intel(R) Xeon(R)"}
    assert history == [{"epoch": 1, "loss": 2.0}]


ERROR_TXT = """Failure # 1 (occurred at 2026-11-30_13-00-00)
ray::ImplicitFunc.train() (pid=11, ip=127.0.0.1, actor_id=ab, repr=run_linear)
  File "trainables/entry/trial.py", line 45, in run_trial
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB

Failure # 2 (occurred at 2026-11-30_13-00-09)
\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=12, ip=127.0.0.1, actor_id=cd, repr=run_linear)
  File "trainables/entry/trial.py", line 45, in run_trial
    out = entry(spec, ctx, report)
          ^^^^^^^^^^^^^^^^^^^^^^^^
  File "trainables/entry/linear.py", line 66, in run_linear
TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'
"""


def test_an_errored_trial_keeps_the_last_attempts_traceback():
    from orchestrator.progress import last_failure, last_line

    text = last_failure(ERROR_TXT)
    assert text.startswith("ray::ImplicitFunc.train() (pid=12")
    assert "OutOfMemoryError" not in text and "line 66, in run_linear" in text
    assert "\x1b" not in text and "^^^" not in text and "out = entry(" in text
    assert last_line(text) == "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'"
    assert last_failure(None) == "the trial errored (Ray Tune kept no message)"


def test_live_record_keeps_the_epoch_and_drops_tune_bookkeeping():
    from orchestrator.progress import live_record

    result = {"epoch": 2, "accuracy": 60.0, "train_loss": 0.4, "training_iteration": 2,
              "time_total_s": 3.0, "timestamp": 17, "done": False, "trial_id": "x",
              "cpu_model": "Xeon"}
    assert live_record(result) == {"epoch": 2, "accuracy": 60.0, "train_loss": 0.4}


class _Trial:
    def __init__(self, status):
        self.status = status


def test_stage_line_counts_waiting_trials_and_says_rate_and_time_left(monkeypatch):
    from orchestrator import progress as P

    clock = [1000.0]
    monkeypatch.setattr(P.time, "monotonic", lambda: clock[0])
    lines: list[str] = []
    study = P.StudyProgress({"pretrain": 1, "linear": 10, "full": 4}, {"pretrain": 1})
    prog = P.Progress("linear", 10, out=lines.append, study=study)
    cb = P.RecordTrials(ledger=None, tracker=None, progress=prog)
    # Tune's own statuses: 2 RUNNING, 3 PENDING (held until resources free up), 1 done.
    cb.on_step_end(0, [_Trial(s) for s in ["RUNNING"] * 2 + ["PENDING"] * 3 + ["TERMINATED"]])
    assert "0/10 done" in lines[-1] and "2 running · 3 waiting · 5 queued" \
        in lines[-1]
    assert "no trial done yet" in lines[-1]
    assert "study 1/15 done (not yet timed: linear, full)" in lines[-1]
    clock[0] += 120
    prog.finished, prog.failed = 3, 1
    prog.show(force=True)
    # 4 trials in 2 minutes: 2.0/min, 6 left -> 3 minutes; the study's 4 full trials untimed.
    assert "4/10 done (1 failed)" in lines[-1] and "2.0/min · ~3m00s left" in lines[-1]
    assert "study 5/15 done, ≥3m00s left (not yet timed: full)" in lines[-1]
    prog.finished = 9
    study.finish_stage(prog)
    prog.show(force=True)  # the last line of a stage counts its trials once
    assert "study 11/15 done (not yet timed: full)" in lines[-1]
    full = P.Progress("full", 4, out=lines.append, study=study)
    clock[0] += 60
    full.finished = 1
    full.show(force=True)
    assert "study 12/15 done, ~3m00s left" in lines[-1] and "not yet timed" not in lines[-1]


def test_v_gives_ray_tunes_own_output_back(monkeypatch, tmp_path):
    """-q: the sweep's stage headers only; default: its progress lines; -v: Ray Tune's status
    table and the trials' logs too (Tune's ``verbose`` = options.verbose - 1)."""
    import orchestrator.runner as runner
    from orchestrator.sweep import main

    seen = []
    monkeypatch.setattr(runner, "run_sweep", lambda study, options: seen.append(options) or 0)
    for flags, verbose in (([], 1), (["-q"], 0), (["-v"], 2), (["-vv"], 3)):
        assert main(["--smoke-test", "--out", str(tmp_path / "out"), *flags]) == 0
        assert seen[-1].verbose == verbose, flags
