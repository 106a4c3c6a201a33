"""MLflow down or restarted mid-sweep: the sweep goes on, and MLflow catches up from the ledger.

The ledger is the record, MLflow a copy: ``Tolerant`` wraps a ``Tracker`` so that a failing
call is reported once and skipped (one quick probe every ``retry_s`` finds the server back),
and ``sync_from_ledger`` gives MLflow every trial it lacks or holds in another state, once.
``catch_up`` is what the sweep calls after every stage, at the end and when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from orchestrator.ledger import ERROR, FAILED, FINISHED, Ledger
from common.masking import redact
from orchestrator.logs import say
from orchestrator.tracking import TRIAL_TAG, Tracker, quick_http
from search_spaces.trial import from_dict


class Tolerant:
    """A ``Tracker`` whose calls never stop the sweep: the ledger is the record, MLflow a copy.

    Why: an MLflow server that is restarted (or gone) mid-sweep made a tracking call raise
    inside Tune's callback, which stopped the whole stage, trials included. Here a failing call
    is reported once and skipped; while the server is down, calls are skipped and one quick
    probe every ``retry_s`` finds it back. What MLflow missed is filled in from the ledger
    by ``sync_from_ledger`` (after each stage, at the end, and when the next run starts).
    """

    def __init__(self, tracker: Tracker, say: Callable[[str], None],
                 retry_s: float = 30.0) -> None:
        self.tracker, self._say, self.retry_s = tracker, say, retry_s
        self.down_since: float | None = None
        self.missed = 0
        self._probe_at = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.tracker, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self.guarded(attr, *args, **kwargs)

    def probe_now(self) -> None:
        """Let the next call try the server even within ``retry_s`` (a stage's end, where a
        catch-up is worth one quick probe: a short stage would otherwise end unsynced)."""
        self._probe_at = 0.0

    def guarded(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, or None when the server is down (skipped, or it failed)."""
        now = time.monotonic()
        if self.down_since is not None and now < self._probe_at:
            self.missed += 1
            return None
        try:
            if self.down_since is None:
                result = fn(*args, **kwargs)
            else:
                with quick_http():
                    result = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - tracking never stops training
            self.missed += 1
            self._probe_at = time.monotonic() + self.retry_s
            if self.down_since is None:
                self.down_since = now
                first = str(e).splitlines()[0] if str(e) else ""
                self._say(f"warning: MLflow at {redact(self.tracker.uri)} failed "
                          f"({type(e).__name__}: {redact(first)[:200]}); training goes on, "
                          "every result is in the ledger, and MLflow is filled in from it "
                          "once the server answers again")
            return None
        if self.down_since is not None:
            self._say(f"MLflow at {redact(self.tracker.uri)} answers again after "
                      f"{time.monotonic() - self.down_since:.0f} s")
            self.down_since = None
        return result


def sync_from_ledger(tracker: Tracker, entries: Iterable[Mapping[str, Any]]) -> int:
    """Make MLflow hold every recorded trial exactly once, as the ledger has it; returns the
    number of trials written.

    A trial recorded in the ledger whose run is missing, still RUNNING or of another status
    (the server was down when it ended, or the driver died between the two writes) is logged
    now; a second run of one trial (a create request that reached a server which died before
    answering, then retried) is deleted, keeping the one the tracker uses.
    """
    client = tracker.client
    seen: dict[str, list[Any]] = {}
    token = None
    while True:
        page = client.search_runs([tracker.experiment_id], max_results=5000, page_token=token)
        for run in page:
            tid = run.data.tags.get(TRIAL_TAG)
            if tid:
                seen.setdefault(tid, []).append(run)
        token = page.token
        if not token:
            break
    written = 0
    for entry in entries:
        status, tid = entry.get("status"), entry.get("trial_id")
        if status not in (FINISHED, FAILED, ERROR) or not tid or "spec" not in entry:
            continue
        runs = seen.get(tid, [])
        ids = [r.info.run_id for r in runs]
        keep = tracker.run_id(tid)
        if keep not in ids:  # never delete every run of a trial
            keep = ids[-1] if ids else None
        for run in runs:
            if run.info.run_id != keep:
                client.delete_run(run.info.run_id)
        run = next((r for r in runs if r.info.run_id == keep), None)
        want = "FINISHED" if status == FINISHED else "FAILED"
        if run is not None and run.info.status == want and run.data.tags.get("status") == status:
            continue
        spec = from_dict(entry["spec"])
        if status == FINISHED:
            tracker.finish(spec, dict(entry.get("metrics") or {}), entry.get("history") or ())
        else:
            tracker.fail(spec, str(entry.get("error", "")), status=status)
        written += 1
    return written


def catch_up(tracker: Tracker | Tolerant, ledger: Ledger) -> None:
    """MLflow gets every trial the ledger has and it lacks (``sync_from_ledger``); a server
    that is still down is tried again later (after the next stage, or by the next run)."""
    if not isinstance(tracker, Tolerant):
        sync_from_ledger(tracker, ledger.entries())
        return
    tracker.probe_now()
    n = tracker.guarded(sync_from_ledger, tracker.tracker, ledger.entries())
    if n:
        say(f"MLflow: {n} trial(s) logged from the ledger (missed while the server was down)")
