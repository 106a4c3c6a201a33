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
import sys
import time
from pathlib import Path
from common.errors import BadInput
from orchestrator.grid import Grid, expand
from orchestrator.ledger import ERROR, FAILED, FINISHED, Ledger
from orchestrator.options import SweepOptions, default_tracking_uri, redact
from orchestrator.stages import ORDER, STAGES
from search_spaces.schema import Study
from search_spaces.trial import TrialSpec

STAMP = "outputs-stamp.json"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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


def outputs_current(out: Path, stamp: str) -> bool:
    try:
        return (out / STAMP).read_text() == stamp and (out / "results.parquet").exists()
    except OSError:
        return False


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
    if not outputs_current(options.out_dir, stamp):
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


def end_of_run(grid: Grid, ledger: Ledger, out: Path, uri: str, t0: float,
               mlflow_ui: str | None = None) -> int:
    """The summary lines and the exit code (``orchestrator.runner``'s docstring)."""
    text, failed, errors = summary(grid, ledger)
    el = int(time.monotonic() - t0)
    say(f"\nsummary ({el // 60}m{el % 60:02d}s):\n{text}")
    if failed:
        say(f"{failed} trial(s) failed on bad input: their errors are in MLflow and "
            "results.parquet; fix the input and rerun with --retry-failed to try them again")
    if errors:
        say(f"{errors} trial(s) errored on every attempt (a crash or a bug, not bad input): "
            f"tracebacks above, in {out / 'trials'} and in MLflow; rerun the same command to "
            "try them again")
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
        grid = expand(study, out, hash_files=not options.rehearsal,
                      root=options.trials_root())
    except (ValueError, BadInput, OSError):
        return None
    ledger = Ledger(out / "trials")
    uri = options.tracking_uri or default_tracking_uri(out)
    if not all_done(grid, ledger, study, options, outputs_stamp(study, options, ledger, uri)):
        return None
    return end_of_run(grid, ledger, out, uri, t0)
