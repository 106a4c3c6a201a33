"""What a rerun has left to do, answered from the ledger and the outputs stamp alone.

A module of its own that imports neither MLflow, torch nor Ray: a finished sweep run again
(a 10,000-trial study, a Ray Job submitted once more) says "nothing to do" from the shell in
about a second, where importing the runner (MLflow) and checking the pruning settings (torch)
first took 3-8 s on this project's machine (benchmarks/RESULTS.md). The runner
uses the same functions under its lock.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from common.errors import BadInput
from common.masking import redact
from orchestrator.changed import stale_entries
from orchestrator.grid import Grid, expand
from orchestrator.ledger import ERROR, FAILED, FINISHED, Ledger
from orchestrator.logs import say
from orchestrator.options import SweepOptions, check_folder_study, default_tracking_uri
from orchestrator.stages import ORDER, STAGES
from search_spaces.schema import Study
from search_spaces.trial import TrialSpec

STAMP = "outputs-stamp.json"


def pending(trials: list[TrialSpec], ledger: Ledger, retry_failed: bool) -> list[TrialSpec]:
    """Trials to run: not recorded, recorded as error, or failed when ``retry_failed``."""
    todo = []
    for t in trials:
        status = ledger.status(t.trial_id)
        if status == FINISHED or (status == FAILED and not retry_failed):
            continue
        todo.append(t)
    return todo


def method_labels(study: Study) -> dict[str, str]:
    """The study's label of each method key (``acdc`` -> ``AC/DC``), for tables and MLflow."""
    return {m.name: m.label for m in study.methods}


def outputs_stamp(study: Study, options: SweepOptions, ledger: Ledger, uri: str) -> str:
    """What the final outputs (results.parquet, MLflow aggregates, report) were built from:
    the ledger's entries and what else shapes them. Equal stamps: nothing to rebuild."""
    # Hashed: the tracking URI may hold a password, which must not reach a file.
    shaped = json.dumps({"labels": method_labels(study), "arch": study.arch,
                         "report": options.report, "tracking": uri,
                         "rehearsal": options.rehearsal}, sort_keys=True)
    return json.dumps({"ledger": ledger.fingerprint(), "entries": len(ledger),
                       "options": hashlib.sha256(shaped.encode()).hexdigest()[:16]})


def outputs_current(out: Path, stamp: str, report: bool = True) -> bool:
    """Whether the outputs were built from this ledger and are still whole: the stamp
    matches, ``results.parquet`` is a Parquet file that reads (its footer, not only its
    name) and, when the sweep writes one, the report is there. Anything else is rebuilt
    from the ledger, with one line saying why."""
    try:
        if (out / STAMP).read_text() != stamp:
            return False
    except OSError:
        return False
    import pyarrow.parquet as pq

    try:
        rows = pq.read_metadata(out / "results.parquet").num_rows
    except (OSError, ValueError) as e:
        say(f"{out / 'results.parquet'} cannot be read ({e}); rebuilding it from the ledger")
        return False
    if report and rows and not (out / "report" / "report.md").is_file():
        say(f"{out / 'report' / 'report.md'} is missing; rebuilding the report from the ledger")
        return False
    return True


def all_done(grid: Grid, ledger: Ledger, study: Study, options: SweepOptions,
             stamp: str) -> bool:
    """A rerun with nothing to do: no trial pending and the outputs built from this ledger.

    Why a path of its own: at 10,000 trials, starting Ray, reading every MLflow run and
    rebuilding the table, aggregates and report took far longer than the work there was
    (none); this answers from the ledger and the stamp alone (benchmarks/scale.py).
    """
    for stage in STAGES:
        if stage.enabled(options) and pending(grid.stages.get(stage.name, []), ledger,
                                               options.retry_failed):
            return False
    if not outputs_current(options.out_dir, stamp, options.report):
        return False
    for stage in ORDER:
        if grid.stages.get(stage):
            say(f"[{stage}] all {len(grid.stages[stage])} trial(s) already done")
    say("results.parquet, MLflow aggregates and the report are up to date "
        f"({len(ledger)} ledger entries): nothing to do")
    return True


def summary(grid: Grid, ledger: Ledger) -> tuple[str, int, int]:
    """(per-stage table, trials failed on bad input, trials errored)."""
    lines, failed_total, error_total = [], 0, 0
    for stage in ORDER:
        trials = grid.stages.get(stage, [])
        if not trials:
            continue
        st = [ledger.status(t.trial_id) for t in trials]
        fin, fail, err = st.count(FINISHED), st.count(FAILED), st.count(ERROR)
        failed_total += fail
        error_total += err
        lines.append(f"  {stage:<10} {fin:>5} finished  {fail:>4} failed  {err:>4} error  "
                     f"{len(trials) - fin - fail - err:>4} not run")
    return "\n".join(lines), failed_total, error_total


# Less free space than this where the output folder is: errors may be a full disk's.
LOW_DISK_BYTES = 64 * 2**20


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the disk holding ``folder``, None where that cannot be read."""
    import shutil

    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full(grid: Grid, ledger: Ledger) -> list[str]:
    """The errored trials whose last error was a full disk (``ENOSPC``): a cause the user
    can fix, not a bug to report."""
    ids = [t.trial_id for t in grid.all_trials() if ledger.status(t.trial_id) == ERROR]
    return [i for i in ids if any(mark in str((ledger.get(i) or {}).get("error", ""))
                                  for mark in ("[Errno 28]", "No space left on device"))]


def end_of_run(grid: Grid, ledger: Ledger, out: Path, uri: str, t0: float,
               mlflow_ui: str | None = None) -> int:
    """The summary lines and the exit code (``orchestrator.runner``'s docstring)."""
    text, failed, errors = summary(grid, ledger)
    el = int(time.monotonic() - t0)
    say(f"\nsummary ({el // 60}m{el % 60:02d}s):\n{text}")
    if failed:
        say(f"{failed} trial(s) failed on bad input: their errors are in MLflow and "
            "results.parquet; fix the input and rerun with --retry-failed to try them again")
    full = disk_full(grid, ledger)
    if full:
        say(f"{len(full)} trial(s) errored because a disk was full (No space left on device: "
            f"{', '.join(full[:3])}{' ...' if len(full) > 3 else ''}): free space there "
            f"(`df -h {out}`), then rerun the same command; finished trials are kept")
    free = free_bytes(out)
    if errors > len(full) and free is not None and free < LOW_DISK_BYTES:
        say(f"warning: the disk holding {out} has {free / 2**20:.1f} MiB free: the errors "
            "below may come from it (a library's write cut short); free space there "
            f"(`df -h {out}`), then rerun the same command")
    if errors > len(full):
        say(f"{errors - len(full)} trial(s) errored on every attempt (a crash or a bug, not "
            f"bad input): tracebacks above, in {out / 'trials'} and in MLflow; rerun the same "
            "command to try them again")
    hint = mlflow_ui or f"mlflow ui --backend-store-uri {redact(uri)} --host 127.0.0.1"
    say(f"results: {out / 'results.parquet'}\nMLflow UI: {hint}")
    return 4 if errors else 1 if failed else 0


def rerun_exit_code(study: Study, options: SweepOptions) -> int | None:
    """A finished sweep run again: its summary and exit code, else None (there is work, or
    something the runner must report: a new folder, a bad study, a rehearsal mix-up)."""
    t0 = time.monotonic()
    out = options.out_dir
    if not (out / STAMP).is_file():
        return None
    try:
        check_folder_study(out, study.name)
        grid = expand(study, out, hash_files=not options.rehearsal,
                      root=options.trials_root())
    except (ValueError, BadInput, OSError):
        return None
    ledger = Ledger(out / "trials", warn=say)
    if stale_entries(grid, ledger):
        return None  # a checkpoint changed: the runner says which and reruns its trials
    uri = options.tracking_uri or default_tracking_uri(out)
    if not all_done(grid, ledger, study, options, outputs_stamp(study, options, ledger, uri)):
        return None
    return end_of_run(grid, ledger, out, uri, t0)
