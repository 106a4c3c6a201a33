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
ray::ImplicitFunc.train() (pid=11, ip=127.0.0.1, actor_id=ab, repr=tune_entry)
  File "trainables/trials.py", line 330, in run_trial
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB

Failure # 2 (occurred at 2026-11-30_13-00-09)
\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=12, ip=127.0.0.1, actor_id=cd, repr=tune_entry)
  File "trainables/trials.py", line 330, in run_trial
    out = STAGES[spec.stage](spec, ctx, report)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "trainables/trials.py", line 250, in run_linear
TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'
"""


def test_an_errored_trial_keeps_the_last_attempts_traceback():
    from orchestrator.progress import last_failure, last_line

    text = last_failure(ERROR_TXT)
    assert text.startswith("ray::ImplicitFunc.train() (pid=12")
    assert "OutOfMemoryError" not in text and "line 250, in run_linear" in text
    assert "\x1b" not in text and "^^^" not in text and "out = STAGES" in text
    assert last_line(text) == "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'"
    assert last_failure(None) == "the trial errored (Ray Tune kept no message)"
