"""Tune callbacks of the sweep: record each trial (ledger + MLflow) and show progress."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ray.tune import Callback

from orchestrator.ledger import ERROR, FAILED, FINISHED, Ledger
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
        self.finished = self.failed = self.errors = self.running = 0
        self.latest = ""
        self.t0 = time.monotonic()
        self._last = 0.0
        self._out = out or (lambda s: print(s, file=sys.stderr, flush=True))

    def line(self) -> str:
        done = self.finished + self.failed + self.errors
        pending = self.total - done - self.running
        el = int(time.monotonic() - self.t0)
        errors = f", {self.errors} error" if self.errors else ""
        return (f"[{self.stage}] {done}/{self.total} done "
                f"({self.failed} failed{errors}) · {self.running} running · {pending} pending · "
                f"{el // 60}m{el % 60:02d}s"
                + (f" · latest: {self.latest}" if self.latest else ""))

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            self._out(self.line())


class RecordTrials(Callback):
    """Writes every trial to the ledger and to MLflow as soon as Tune knows its outcome.

    A trial that raised (anything but bad input, which is a ``failed`` result) is retried by
    Tune; each retry is one line here, and when none are left the last attempt's traceback is
    printed and recorded as ``status="error"``. Tune's own traceback per attempt is turned off
    (``TUNE_PRINT_ALL_TRIAL_ERRORS=0`` in ``runner.init_ray``) so each shows once.
    """

    def __init__(self, ledger: Ledger, tracker: Tracker, progress: Progress,
                 say: Callable[[str], None] | None = None) -> None:
        self.ledger, self.tracker, self.progress = ledger, tracker, progress
        self._say = say or (lambda s: print(s, file=sys.stderr, flush=True))
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

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        spec = self._spec(trial)
        attempts = trial.run_metadata.num_failures
        self._say(f"[{spec.stage}] trial {spec.trial_id} raised "
                  f"{last_line(last_failure(error_text(trial)))} (attempt {attempts} of "
                  f"{trial.max_failures + 1}); Ray Tune runs it again")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        spec = self._spec(trial)
        attempts = trial.run_metadata.num_failures
        text = last_failure(error_text(trial))
        self._say(f"[{spec.stage}] trial {spec.trial_id} errored on all {attempts} attempt(s); "
                  f"the last one's traceback:\n{text}\n[{spec.stage}] recorded as error; "
                  "rerunning the sweep tries it again")
        record_error(self.ledger, self.tracker, spec, text, attempts)
        self.progress.errors += 1
        self.progress.running -= 1
        self.progress.show()


def error_text(trial: Any) -> str | None:
    """Tune's ``error.txt`` of a trial: its driver-side copy, which is written at once (the
    copy in storage that ``trial.get_error`` reads is synced later)."""
    local = trial.error_file
    if local:
        try:
            return Path(local).read_text()
        except OSError:
            pass
    return trial.get_error()


def last_failure(text: str | None) -> str:
    """The last attempt's part of Tune's ``error.txt`` (one "Failure # n" block per attempt:
    the traceback of the trial function, as Ray tells it), without colours and the lines of
    ``^^^`` under expressions."""
    if not text or not text.strip():
        return "the trial errored (Ray Tune kept no message)"
    blocks = re.split(r"^Failure # \d+ \(occurred at [^)]*\)\n", text, flags=re.M)
    last = re.sub(r"\x1b\[[0-9;]*m", "", blocks[-1])
    lines = [ln for ln in last.splitlines() if ln.strip(" ^~")]
    return "\n".join(lines).strip() or text.strip()


def last_line(text: str) -> str:
    """The exception line that ends a traceback (``TypeError: ...``), cut to 300 characters."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else text[:300]


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


def record_error(ledger: Ledger, tracker: Tracker, spec: TrialSpec, traceback_text: str,
                 attempts: int) -> None:
    """A trial that raised on every attempt: kept apart from bad input (``failed``), so a
    rerun of the sweep tries it again; the traceback is kept whole in the ledger."""
    tracker.fail(spec, traceback_text, status=ERROR)
    ledger.record(spec.trial_id, {"status": ERROR, "spec": spec_dict(spec),
                                  "error": traceback_text, "attempts": attempts,
                                  "metrics": {}, "history": []})


def spec_dict(spec: TrialSpec) -> dict[str, Any]:
    from search_spaces.trial import to_dict

    return to_dict(spec)
