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
