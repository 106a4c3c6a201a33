"""Tune callbacks of the sweep: record each trial (ledger + MLflow) and show progress."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

from ray.tune import Callback

from orchestrator.ledger import FAILED, FINISHED, Ledger
from orchestrator.tracking import Tracker
from search_spaces.trial import TrialSpec, from_dict

RESERVED = {"history_json", "status", "error", "final"}


def split_result(result: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(final metrics, per-epoch history) from a trial's last reported result."""
    history = json.loads(result.get("history_json") or "[]")
    metrics = {
        k: v for k, v in result.items()
        if k not in RESERVED and isinstance(v, (int, float, str))  # bools are ints
        and not k.startswith(("time_", "timestamp", "training_iteration", "done", "pid",
                              "date", "hostname", "node_ip", "iterations_since", "trial_id",
                              "experiment_tag", "config", "checkpoint_dir_name",
                              "should_checkpoint", "timesteps", "episodes"))
    }
    return metrics, history


class Progress:
    """Counts per stage, printed at most every ``every`` seconds."""

    def __init__(self, stage: str, total: int, every: float = 10.0,
                 out: Callable[[str], None] | None = None) -> None:
        self.stage, self.total, self.every = stage, total, every
        self.finished = self.failed = self.running = 0
        self.latest = ""
        self.t0 = time.monotonic()
        self._last = 0.0
        self._out = out or (lambda s: print(s, file=sys.stderr, flush=True))

    def line(self) -> str:
        pending = self.total - self.finished - self.failed - self.running
        el = int(time.monotonic() - self.t0)
        return (f"[{self.stage}] {self.finished + self.failed}/{self.total} done "
                f"({self.failed} failed) · {self.running} running · {pending} pending · "
                f"{el // 60}m{el % 60:02d}s"
                + (f" · latest: {self.latest}" if self.latest else ""))

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            self._out(self.line())


class RecordTrials(Callback):
    """Writes every trial to the ledger and to MLflow as soon as Tune knows its outcome."""

    def __init__(self, ledger: Ledger, tracker: Tracker, progress: Progress) -> None:
        self.ledger, self.tracker, self.progress = ledger, tracker, progress
        self._started: set[str] = set()

    @staticmethod
    def _spec(trial: Any) -> TrialSpec:
        return from_dict(trial.config["trial"]["spec"])

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        spec = self._spec(trial)
        self.tracker.ensure_run(spec)
        if spec.trial_id not in self._started:
            self._started.add(spec.trial_id)
            self.progress.running += 1
        self.progress.show()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        """A heartbeat for long trials: the latest epoch/step of the trial that reported."""
        step = result.get("epoch", result.get("step"))
        if step is not None:
            spec = self._spec(trial)
            self.progress.latest = (f"{spec.method} {spec.sparsity}% {spec.dataset} "
                                    f"s{spec.seed}: {'epoch' if 'epoch' in result else 'step'} "
                                    f"{step}")
        self.progress.show()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        spec = self._spec(trial)
        result = dict(trial.last_result or {})
        if result.get("status") == FAILED:
            record_failure(self.ledger, self.tracker, spec, str(result.get("error", "")))
            self.progress.failed += 1
        else:
            record_success(self.ledger, self.tracker, spec, result)
            self.progress.finished += 1
        self.progress.running -= 1
        self.progress.show()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        spec = self._spec(trial)
        err = trial.get_error()
        msg = str(err).strip().splitlines()[-1] if err else "trial errored (no message)"
        record_failure(self.ledger, self.tracker, spec, msg)
        self.progress.failed += 1
        self.progress.running -= 1
        self.progress.show()


def record_success(ledger: Ledger, tracker: Tracker, spec: TrialSpec,
                   result: dict[str, Any]) -> None:
    metrics, history = split_result(result)
    tracker.finish(spec, metrics, history)
    ledger.record(spec.trial_id, {"status": FINISHED, "spec": spec_dict(spec),
                                  "metrics": metrics, "history": history})


def record_failure(ledger: Ledger, tracker: Tracker, spec: TrialSpec, error: str) -> None:
    tracker.fail(spec, error)
    ledger.record(spec.trial_id, {"status": FAILED, "spec": spec_dict(spec), "error": error,
                                  "metrics": {}, "history": []})


def spec_dict(spec: TrialSpec) -> dict[str, Any]:
    from search_spaces.trial import to_dict

    return to_dict(spec)
