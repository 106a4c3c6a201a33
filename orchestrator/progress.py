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


def _duration(seconds: float) -> str:
    """3h05m, 12m30s, 45s: the two leading units."""
    s = int(round(max(0.0, seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def pace_text(done: int, total: int, elapsed: float) -> str:
    """Rate and time left at that rate: ``5.9/min · ~41s left`` (slow: ``2.0 min/trial``)."""
    if not done:
        return "no trial done yet"
    rate = done / max(elapsed, 1e-9) * 60
    pace = f"{rate:.1f}/min" if rate >= 0.95 else f"{elapsed / done / 60:.1f} min/trial"
    return pace + f" · ~{_duration((total - done) * elapsed / done)} left"


class StudyProgress:
    """The whole study's count and time left, shared by the stages' progress lines.

    Time left is what the stages still to run will take at the pace measured in this run
    (wall-clock seconds per finished trial of each stage); a stage not yet timed is named
    instead of guessed, so the estimate is a lower bound until every stage has run a while.
    """

    def __init__(self, totals: dict[str, int], done: dict[str, int]) -> None:
        self.totals = {k: v for k, v in totals.items() if v}
        self.done = {k: done.get(k, 0) for k in self.totals}
        self.pace: dict[str, float] = {}  # stage -> wall-clock seconds per trial
        self._folded: set[str] = set()  # stages whose counts are in ``done`` already

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def line(self, current: "Progress | None" = None) -> str:
        done = dict(self.done)
        pace = dict(self.pace)
        if current is not None and current.stage in done and current.stage not in self._folded:
            done[current.stage] += current.done
            if current.done:
                pace[current.stage] = current.elapsed / current.done
        left, untimed = 0.0, []
        for stage, total in self.totals.items():
            remaining = total - done[stage]
            if remaining <= 0:
                continue
            if stage in pace:
                left += remaining * pace[stage]
            else:
                untimed.append(stage)
        text = f"study {sum(done.values())}/{self.total} done"
        if left or not untimed:
            text += f", {'≥' if untimed else '~'}{_duration(left)} left"
        if untimed:
            text += f" (not yet timed: {', '.join(untimed)})"
        return text

    def finish_stage(self, progress: "Progress") -> None:
        """Fold a finished (or stopped) stage's counts and pace into the study's."""
        if progress.stage in self.done and progress.stage not in self._folded:
            self._folded.add(progress.stage)
            self.done[progress.stage] += progress.done
            if progress.done:
                self.pace[progress.stage] = progress.elapsed / progress.done


class Progress:
    """Counts per stage, printed at most every ``every`` seconds.

    ``running`` and ``waiting`` are Ray Tune's view (its trials RUNNING, and PENDING: made,
    but held until the cluster has the resources they ask for); ``queued`` trials are not
    made yet (``--max-concurrent`` and Tune's limit on pending trials hold them back).
    """

    def __init__(self, stage: str, total: int, every: float = 10.0,
                 out: Callable[[str], None] | None = None,
                 study: StudyProgress | None = None) -> None:
        self.stage, self.total, self.every = stage, total, every
        self.finished = self.failed = self.errors = self.running = self.waiting = 0
        self.latest = ""
        self.study = study
        self.t0 = time.monotonic()
        self._last = 0.0
        self._out = out or (lambda s: print(s, file=sys.stderr, flush=True))

    @property
    def done(self) -> int:
        return self.finished + self.failed + self.errors

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def line(self) -> str:
        done, el = self.done, self.elapsed
        queued = max(0, self.total - done - self.running - self.waiting)
        errors = f", {self.errors} error" if self.errors else ""
        waiting = f"{self.waiting} waiting · " if self.waiting else ""
        pace = pace_text(done, self.total, el)
        study = f" · {self.study.line(self)}" if self.study is not None else ""
        return (f"[{self.stage}] {done}/{self.total} done "
                f"({self.failed} failed{errors}) · {self.running} running · {waiting}"
                f"{queued} queued · {pace}{study} · {_duration(el)}"
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

    def on_step_end(self, iteration, trials, **info) -> None:
        """Tune's own view of its trials: RUNNING, and PENDING (waiting for resources)."""
        running = waiting = 0
        for t in trials:
            status = getattr(t, "status", None)
            running += status == "RUNNING"
            waiting += status == "PENDING"
        self.progress.running, self.progress.waiting = running, waiting
        self.progress.show()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        spec = self._spec(trial)
        self.tracker.ensure_run(spec)
        self._started.add(spec.trial_id)
        self.progress.show()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        """Each reported epoch (or pruning step) goes to MLflow at once, at its step; the
        trial's final report (``final``) is logged by ``on_trial_complete``."""
        if result.get("final"):
            return
        spec = self._spec(trial)
        step = result.get("epoch", result.get("step"))
        if step is not None:
            self.progress.latest = (f"{spec.method} {spec.sparsity}% {spec.dataset} "
                                    f"s{spec.seed}: {'epoch' if 'epoch' in result else 'step'} "
                                    f"{step}")
            try:
                self.tracker.log_epoch(spec, live_record(result))
            except Exception as e:  # noqa: BLE001 - a live point is not worth a trial
                self._say(f"[{spec.stage}] MLflow did not take epoch {step} of "
                          f"{spec.trial_id}: {type(e).__name__}: {str(e)[:200]} (the trial "
                          "goes on; its history is logged again when it ends)")
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
        self.progress.running = max(0, self.progress.running - 1)
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
        self.progress.running = max(0, self.progress.running - 1)
        self.progress.show()


class StopWhenStorageDown(Callback):
    """Under ``--storage``: when a trial is retried or errors, ``probe()`` asks whether the
    storage still answers and raises (``options.StorageDown``) out of the Ray Tune run if it
    does not. Why: with the storage gone every trial fails on it, one attempt after another,
    each after the storage client's own retries; stopping at the first one says why once."""

    def __init__(self, probe: Callable[[], None]) -> None:
        self.probe = probe

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self.probe()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.probe()


def live_record(result: dict[str, Any]) -> dict[str, Any]:
    """The trial's own numbers in one of Tune's per-epoch results (Tune's bookkeeping left
    out, ``epoch`` / ``step`` kept)."""
    metrics, _ = split_result(result)
    return {k: v for k, v in metrics.items() if not isinstance(v, str)}


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


# The ledger is written first, MLflow second: a result is never lost to a tracking store that
# is down (``tracking_outage.sync_from_ledger`` logs what MLflow missed when the sweep next starts).


def record_success(ledger: Ledger, tracker: Tracker, spec: TrialSpec,
                   result: dict[str, Any]) -> None:
    metrics, history = split_result(result)
    ledger.record(spec.trial_id, {"status": FINISHED, "spec": spec_dict(spec),
                                  "metrics": metrics, "history": history})
    tracker.finish(spec, metrics, history)


def record_failure(ledger: Ledger, tracker: Tracker, spec: TrialSpec, error: str) -> None:
    ledger.record(spec.trial_id, {"status": FAILED, "spec": spec_dict(spec), "error": error,
                                  "metrics": {}, "history": []})
    tracker.fail(spec, error)


def record_error(ledger: Ledger, tracker: Tracker, spec: TrialSpec, traceback_text: str,
                 attempts: int) -> None:
    """A trial that raised on every attempt: kept apart from bad input (``failed``), so a
    rerun of the sweep tries it again; the traceback is kept whole in the ledger."""
    ledger.record(spec.trial_id, {"status": ERROR, "spec": spec_dict(spec),
                                  "error": traceback_text, "attempts": attempts,
                                  "metrics": {}, "history": []})
    tracker.fail(spec, traceback_text, status=ERROR)


def spec_dict(spec: TrialSpec) -> dict[str, Any]:
    from search_spaces.trial import to_dict

    return to_dict(spec)
