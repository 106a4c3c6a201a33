"""Running a study: the stages in order (``orchestrator.stages``), each over its trials not
yet done, run as the stage declares (``orchestrator.execute``), then the outputs.

Resume works through the ledger (``<out>/trials``): a trial whose id is recorded as finished
is never run again, one recorded as failed (bad input) only with ``--retry-failed``, one
recorded as error (it raised on every one of Tune's attempts) by every rerun; an interrupted
full-finetuning trial restarts from its last Ray Train checkpoint (stored by trial id).

Exit codes: 0 every trial finished; 1 some failed on bad input; 2 bad study or options, a
request the cluster can never meet, or another sweep running on the same ``--out``; 3 the sweep
itself stopped; 4 some trials errored (a crash or a bug), rerun to try them again; 130 stopped
by Ctrl-C (SIGINT); 143 stopped by SIGTERM (``kill``, ``ray job stop``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import shlex
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common import columns as C
from common.atomic import atomic_write_text
from common.errors import BadInput
from common.masking import redact
from common.storage import masked
from orchestrator.capacity import Unschedulable, check_capacity
from orchestrator.changed import retire_changed
from orchestrator.execute import Launched, SweepContext, launch_tasks, run_stage
from orchestrator.grid import Grid, expand
from orchestrator.ledger import ERROR, FAILED, FINISHED, Ledger
from orchestrator.local_ray import resolve_auto
from orchestrator.lock import SweepRunning, driver_lock
from orchestrator.options import (StorageDown, SweepOptions, check_folder_kind,
                                  check_folder_study, check_sqlite_store, mark_folder_study,
                                  mark_rehearsal_folder, storage_answers)
from orchestrator.options import default_tracking_uri
from orchestrator.logs import (
    current_log_file, flush_log, library_logging, log_files, say, sweep_logging,
)
from orchestrator.provenance import provenance
from orchestrator.resume import (
    STAMP, all_done, end_of_run, method_labels, outputs_stamp, pending,
)
from orchestrator.study_record import change_line, write_study
from orchestrator.stages import STAGES
from orchestrator.stages.stage import Stage
from orchestrator.tracking import Tracker, TrackingError
from orchestrator.tracking_outage import Tolerant, catch_up
from search_spaces.schema import Study
from search_spaces.trial import TrialSpec
from trainables.entry.context import TrialContext

LOG = logging.getLogger("orchestrator")


def ray_address(options: SweepOptions,
                environ: Mapping[str, str] = os.environ) -> str | None:
    """The Ray cluster to join: ``--address``, else ``$RAY_ADDRESS``, else None (a local Ray
    of the sweep's own).

    Why the variable: Ray Jobs runs the submitted program with ``RAY_ADDRESS`` set to the
    cluster, and Ray users expect a driver to join it; ignoring it ran the whole study on the
    head node alone. ``--address local`` asks for the sweep's own local Ray even when the
    variable is set. An ``http(s)://`` value is the dashboard's address, which ``ray job
    submit`` reads but a driver cannot join. ``auto`` is the one Ray this user started on this
    machine (``orchestrator.local_ray``), never another user's.
    """
    given = options.address
    address = given or environ.get("RAY_ADDRESS", "").strip() or None
    if address == "local":
        return None
    if address and address.split("://")[0].lower() in ("http", "https"):
        where = "--address" if given else "RAY_ADDRESS"
        raise BadInput(
            f"{where} {redact(address)!r} is the Ray dashboard's address (what `ray job submit` "
            "reads), not a cluster a driver can join: submit the sweep with `ray job submit "
            "--working-dir . -- python -m orchestrator.sweep ...`, or run it on the head with "
            "--address auto (or the GCS address, <head>:6379)")
    if address == "auto":
        return resolve_auto("--address" if given else "RAY_ADDRESS")
    return address


def init_ray(options: SweepOptions) -> None:
    """Join the cluster (``ray_address``) or start the sweep's own local Ray, quiet, with the
    Tune settings the sweep relies on (its own Ctrl-C handling, one line per retry)."""
    address = ray_address(options)
    if not address:
        # A local Ray serves this machine only: Ray then binds its ports (GCS, raylet, workers)
        # to 127.0.0.1 instead of all interfaces. Read by Ray at import; "1" opts out.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
    # RecordTrials prints one line per retry and the last attempt's traceback once; Tune's
    # own log would add the whole traceback of every attempt.
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    # Tune's own Ctrl-C handler ends the stage early and returns as if it were done, so the
    # sweep went on to the next stage; the driver's handler (stop_on_signals) stops it all.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    # Tune's ResultGrid warns that it cannot read result.json, which the sweep turns off on
    # purpose (the ledger and MLflow hold every result); the warning would only alarm users.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    if ray.is_initialized():
        library_logging(options.log)
        return
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, logging_level=options.log.level_of("ray"),
        log_to_driver=options.verbose > 1,
    )
    if address:
        ray.init(address=address, **kwargs)
    else:
        # Ray 2.60 turns token auth on for a new local Ray and saves a token in
        # ~/.ray/auth_token; this Ray's own token lives in its processes' environment only.
        if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(16)
        # "local": always a fresh Ray of our own; with no address, ray.init() would join the
        # last `ray start` cluster on this machine (another user's, or a dead one's address).
        ray.init(address="local", num_cpus=options.num_cpus, **kwargs)
    library_logging(options.log)  # Ray's logger as asked, its records in the log file too


def cluster_warnings(study: Study, options: SweepOptions) -> list[str]:
    """Paths that work on one machine but not across a cluster's nodes (``--address``).

    Without ``--storage``, trials on every node write under ``--out`` (features, zoo, Ray
    Tune storage), so it must be on a shared mount; on every node they read the data and
    checkpoint folders, which must be absolute paths there.
    """
    if not ray_address(options):
        return []
    found = []
    tmp = Path(tempfile.gettempdir()).resolve()
    shared = os.environ.get("SPARSE_TRANSFER_SHARED")  # set on every node by cluster.yaml
    if options.storage:
        pass  # trials keep their files under --storage; --out is the driver's alone
    elif shared:
        if not options.out_dir.resolve().is_relative_to(Path(shared).resolve()):
            found.append(f"--out {options.out_dir} is not under $SPARSE_TRANSFER_SHARED "
                         f"({shared}): other nodes cannot see it; use --out {shared}/runs/...")
    elif options.out_dir.resolve().is_relative_to(tmp):
        found.append(f"--out {options.out_dir} is under {tmp}, local to each node; on a "
                     "multi-node cluster put it on the shared mount (README: Run on a cluster)")
    for key, value in (("data_root", study.data_root), ("checkpoint_dir", study.checkpoint_dir)):
        if value and not Path(value).expanduser().is_absolute():
            found.append(f"{key} {value!r} is relative: trials on other nodes (and Tune trials, "
                         "which run in their own folder) cannot find it; pass an absolute path "
                         "on the shared mount")
    return found


def study_clock(grid: Grid, todo_by_stage: Mapping[str, list[TrialSpec]],
                options: SweepOptions) -> Any:
    """The study's overall count and time left on every progress line (``StudyProgress``);
    speed trials count only when they will run."""
    from orchestrator.progress import StudyProgress

    stages = [st.name for st in STAGES if st.enabled(options)]
    totals = {st: len(grid.stages.get(st, [])) for st in stages}
    done = {st: totals[st] - len(todo_by_stage.get(st, [])) for st in stages}
    return StudyProgress(totals, done)


def mlflow_hint(uri: str, experiment_id: str) -> str:
    """How to open the study in MLflow: the UI command for a local store, then the runs page
    in the classic-ML view (a new browser's MLflow 3 opens in its GenAI view, whatever the
    experiment's kind; the URL asks for the other, and MLflow remembers the choice)."""
    page = f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    if uri.startswith(("http://", "https://")):
        return f"{redact(uri).rstrip('/')}/{page}"
    return (f"mlflow ui --backend-store-uri {redact(uri)} --host 127.0.0.1 --port 5000, then "
            f"open http://127.0.0.1:5000/{page}")


def write_outputs(study: Study, ctx: TrialContext, ledger: Ledger, tracker: Tracker,
                  options: SweepOptions, final: bool) -> None:
    """results.parquet, MLflow aggregates and (at the end) the report."""
    from orchestrator.aggregate import (SUMMARY_KEY, log_aggregates, log_paper_comparison,
                                        results_frame, write_results)

    labels = method_labels(study)
    catch_up(tracker, ledger)
    df = results_frame(ledger, labels, study.method_facts)
    out = Path(ctx.out_dir)
    write_results(df, out / "results.parquet")
    log_aggregates(df, tracker)
    if final and options.report and not df.empty:
        from reports.report import write_report

        # The report opens on the study's own architecture, its methods by the study's labels.
        paths = write_report(df, out / "report", title=f"Study {study.name}",
                             source=f"{out / 'results.parquet'} (the sweep's results table)",
                             main_arch=study.arch, method_labels=labels,
                             rehearsal=options.rehearsal)
        # On the study's summary run, next to the findings' verdicts: every figure and table
        # at its artifact root.
        tracker.log_report(SUMMARY_KEY, out / "report")
        log_paper_comparison(out / "report", tracker)
        say(f"report: {getattr(paths, 'markdown', out / 'report' / 'report.md')}")


class Stopped(KeyboardInterrupt):
    """SIGTERM or Ctrl-C in the driver: unwinds like Ctrl-C, remembering which signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# The signal that stopped the driver. Kept here, not only in ``Stopped``: Ray's ``ray.get``
# turns any exception a signal handler raises while it waits into a plain KeyboardInterrupt.
_stopped_by: int | None = None


# Seconds from the stop signal to the process's end, whatever blocks the unwinding.
STOP_DEADLINE_S = 9.0


def _on_stop_signal(signum: int, frame: Any) -> None:
    global _stopped_by
    if _stopped_by is not None:  # a second signal while the first unwinds: stop waiting
        os._exit(128 + _stopped_by)
    _stopped_by = signum
    exit_by_deadline(128 + signum, STOP_DEADLINE_S)
    raise Stopped(signum)


def exit_by_deadline(code: int, seconds: float) -> None:
    """Ends the process with ``code`` after ``seconds`` unless it has ended by then: a stopped
    sweep exits within 10 s even where its unwinding blocks (a thread stuck reading a FIFO,
    Ray's shutdown waiting on a stuck worker, a non-daemon thread). A daemon thread, so a
    sweep that ends in time never waits for it."""
    import threading

    def _exit() -> None:
        time.sleep(seconds)
        sys.stderr.flush()
        os._exit(code)

    threading.Thread(target=_exit, name="stop-deadline", daemon=True).start()


def stop_signal(exc: KeyboardInterrupt) -> int:
    """The signal behind a KeyboardInterrupt: SIGTERM or SIGINT (Ctrl-C)."""
    if isinstance(exc, Stopped):
        return exc.signum
    return _stopped_by or signal.SIGINT


def stop_on_signals() -> None:
    """SIGTERM (``kill``, ``ray job stop``) and Ctrl-C stop the driver with one line (see
    ``stopped_line``) and exit code 143 or 130.

    Called after ``ray.init``, which sets its own SIGTERM handler (``sys.exit``) and whose
    core worker installs a failure signal handler that prints a native stack dump
    (``*** SIGTERM received ... PC: @``) on SIGTERM: ``signal.signal`` replaces both at the C
    level. Ray's processes (a local Ray's, the trial actors) end with the driver as before.
    """
    import threading

    global _stopped_by
    _stopped_by = None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_stop_signal)
        signal.signal(signal.SIGINT, _on_stop_signal)


def _restore_signals(previous: dict[int, Any]) -> None:
    """Give the caller back its handlers (tests and scripts call ``run_sweep`` in-process)."""
    global _stopped_by
    import threading

    _stopped_by = None
    if threading.current_thread() is threading.main_thread():
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)


def shown_command(options: SweepOptions) -> str | None:
    """The command line with a password in any URI (``--tracking-uri``) shown as ``***``, as
    in every message: it goes to the terminal and into ``<out>/sweep.lock``."""
    if not options.command:
        return None
    return shlex.join(redact(word) for word in shlex.split(options.command))


def resume_command(options: SweepOptions, environ: Mapping[str, str] = os.environ) -> str:
    """The command that resumes this sweep: under Ray Jobs, the same job submitted again."""
    command = shown_command(options) or "python -m orchestrator.sweep --out " + shlex.quote(
        str(options.out_dir))
    if "RAY_JOB_CONFIG_JSON_ENV_VAR" in environ:  # set by Ray Jobs for the driver it runs
        return f"ray job submit --working-dir . -- {command}"
    return f"cd {shlex.quote(os.getcwd())} && {command}"


def stopped_line(signum: int, grid: Grid, ledger: Ledger, options: SweepOptions) -> str:
    """One line: what a stopped sweep keeps and the exact command that resumes it."""
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    trials = grid.all_trials()
    done = sum(ledger.status(t.trial_id) in (FINISHED, FAILED) for t in trials)
    return (f"stopped by {name}: {done} of {len(trials)} trials are done and kept in "
            f"{options.out_dir} (ledger trials/, MLflow); running trials start again, full "
            f"finetuning after its last epoch. Resume: {resume_command(options)}")


def errored(stage: Stage, trials: list[TrialSpec], ledger: Ledger) -> int:
    """Errored trials of a stage whose outputs later stages read (``Stage.feeds_later``).

    Why the sweep stops on them: every later trial of their backbone would fail on the
    missing checkpoint, and that failure is bad input that a rerun skips; stopping leaves
    those trials unrun, so the rerun that retries the errored one runs them too.
    """
    if not stage.feeds_later:
        return 0
    return sum(ledger.status(t.trial_id) == ERROR for t in trials)


def run_sweep(study: Study, options: SweepOptions) -> int:
    """Run (or resume) the study; returns the exit code (module docstring).

    One driver per output folder: the lock (``orchestrator.lock``) is taken before anything
    is read or written there, and a second sweep on the same ``--out`` exits 2 at once.
    Everything said goes through ``logging``, into this run's ``<out>/logs/`` file too.
    """
    with sweep_logging(options.log):  # the terminal (the CLI has set it up already)
        try:
            ray_address(options)
            check_folder_study(options.out_dir, study.name)  # before the lock writes anything
        except BadInput as e:
            say(f"error: {e}")
            return 2
        out = options.out_dir
        out.mkdir(parents=True, exist_ok=True)
        try:
            with driver_lock(out, shown_command(options), warn=lambda m: say(f"warning: {m}")):
                # The run's log file, once the folder is this driver's (a refused one writes
                # none there)
                with sweep_logging(options.log, out):
                    for note in options.notes:
                        say(note)
                    return _run_sweep(study, options)
        except SweepRunning as e:
            say(f"error: {e}")
            return 2


def _run_sweep(study: Study, options: SweepOptions) -> int:
    """``run_sweep`` under the folder's lock: the grid, the study as run, the ledger, MLflow,
    then the stages."""
    out = options.out_dir
    t0 = time.monotonic()
    try:
        check_folder_kind(out, options.rehearsal)
        check_sqlite_store(options.tracking_uri or default_tracking_uri(out))
        # A rehearsal reads no checkpoint: its trial ids carry no file hashes.
        grid = expand(study, out, hash_files=not options.rehearsal,
                      root=options.trials_root())
    except (ValueError, BadInput) as e:
        say(f"error: {e}")
        return 2
    if options.rehearsal:
        mark_rehearsal_folder(out)
    mark_folder_study(out, study.name)
    changed = change_line(out, study)  # before anything runs, against the last run's study
    if changed:
        say(f"warning: {changed}")
    study_path = write_study(out, study, options.study_source, options.overrides)
    uri = options.tracking_uri or default_tracking_uri(out)
    made_by = provenance()
    ledger = Ledger(out / "trials", provenance=made_by, warn=say)
    retire_changed(grid, ledger, say)
    if all_done(grid, ledger, study, options, outputs_stamp(study, options, ledger, uri)):
        return _finish(grid, ledger, out, uri, t0)
    try:
        tracker = open_tracker(study, options, grid, uri, made_by)
    except TrackingError as e:
        say(f"error: {e}")
        return 2
    catch_up(tracker, ledger)  # what an earlier run could not log (MLflow was down)
    log_study(tracker, study_path, options)
    announce(study, options, grid, uri)
    ctx = TrialContext(out_dir=str(out), storage=options.trials_root(),
                       data_root=study.data_root, threads=1, rehearsal=options.rehearsal)
    code = _run(grid, SweepContext(study, ctx, ledger, tracker, options), uri, t0)
    attach_logs(tracker, out)
    return code


def _run(grid: Grid, sweep: SweepContext, uri: str, t0: float) -> int:
    """Ray, the stages and the final outputs; how a stop or an error ends the run."""
    ledger, options, out = sweep.ledger, sweep.options, sweep.options.out_dir
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        init_ray(options)
        stop_on_signals()
        run_stages(grid, sweep)
        finish_outputs(sweep, uri)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM through stop_on_signals
        signum = stop_signal(e)
        say(stopped_line(signum, grid, ledger, options))
        return 128 + signum
    except Unschedulable as e:
        say(f"error: {e}")
        if e.fits:
            say(f"to run with the first: {resume_command(options)} {e.fits[0]}")
        return 2
    except OSError as e:  # full disk, lost mount, a storage gone: the message names it
        say(stopped_on(e, options))
        return 3
    except Exception:  # noqa: BLE001 - say what broke, keep what finished
        LOG.error(traceback.format_exc().rstrip())
        say("the sweep stopped on an error; finished trials are saved; rerun to resume")
        return 3
    finally:
        _restore_signals(previous)
    return _finish(grid, ledger, out, uri, t0, sweep.tracker)


def log_study(tracker: Tolerant, study_path: Path, options: SweepOptions) -> None:
    """The study as run (``<out>/study.yaml``) on the summary run, with tags naming its file
    (``study_source``) and the ``--set`` options (``study_overrides``)."""
    from orchestrator.aggregate import SUMMARY_KEY

    tracker.attach(SUMMARY_KEY, [study_path], tags={
        "study_source": options.study_source or "(given as a Study)",
        "study_overrides": " ".join(shlex.join(["--set", o]) for o in options.overrides)})


def attach_logs(tracker: Tolerant, out: Path) -> None:
    """Every run's log file (this one's up to now) under ``logs/`` of the summary run: at the
    end, at a stop (SIGTERM, Ctrl-C) and after an error."""
    from orchestrator.aggregate import SUMMARY_KEY

    flush_log()
    files = log_files(out)
    if files:
        tracker.attach(SUMMARY_KEY, files, "logs")


def stopped_on(error: OSError, options: SweepOptions) -> str:
    """The message of a sweep stopped by an ``OSError``: ``StorageDown``'s own, or, when
    ``--storage`` no longer answers (Ray Tune's storage raised it, not a trial), that."""
    if not isinstance(error, StorageDown):
        try:
            storage_answers(options)
        except StorageDown as down:
            error = down
    if isinstance(error, StorageDown):
        return f"error: {error.strerror}"
    return f"error: {error}\nthe sweep stopped; finished trials are saved; fix it and rerun"


def open_tracker(study: Study, options: SweepOptions, grid: Grid, uri: str,
                 made_by: Mapping[str, str] | None = None) -> Tolerant:
    """The study's MLflow experiment (a rehearsal's own), behind ``Tolerant``: a tracking
    call that fails never stops the sweep. Raises ``TrackingError`` when the store cannot be
    used at all."""
    # With a SQLite store (the default one or the user's), artifacts (the report) stay in the
    # output folder: MLflow's own default is ./mlruns of whatever folder the sweep runs in.
    artifacts = (options.out_dir / "mlartifacts").as_uri() if uri.startswith("sqlite:") else None
    suffix = "-rehearsal" if options.rehearsal else ""
    tracker = Tracker(uri, experiment=f"sparse-transfer/{study.name}{suffix}",
                      artifact_location=artifacts, method_labels=method_labels(study),
                      method_facts=study.method_facts,
                      description=study.description, data_root=study.data_root,
                      sparsity_levels={t.sparsity for t in grid.all_trials()},
                      run_tags={C.REHEARSAL: "True"} if options.rehearsal else None,
                      provenance=made_by)
    return Tolerant(tracker, say)


def announce(study: Study, options: SweepOptions, grid: Grid, uri: str) -> None:
    """The study's first line (trials, output, MLflow, the Ray cluster joined) and any path
    that would not work across the cluster's nodes."""
    address = ray_address(options)
    log = current_log_file()
    say(f"study {study.name!r}: {len(grid.all_trials())} trials · output {options.out_dir} · "
        + (f"storage {masked(options.trials_root())} · " if options.storage else "")
        + f"MLflow {redact(uri)}" + (f" · Ray {redact(address)}" + (
            "" if options.address else " (RAY_ADDRESS)") if address else "")
        + (f" · log {log}" if log else ""))
    for warning in cluster_warnings(study, options):
        say(f"warning: {warning}")


def run_stages(grid: Grid, sweep: SweepContext) -> None:
    """Every stage in order over its trials the ledger does not have yet, as it declares.

    Every stage with work is checked against the cluster first, so a full-finetuning request
    that can never start stops the sweep before hours of linear trials, and again when it
    starts (nodes may have gone since). After a stage that says so, the outputs are written;
    after one whose errored trials later stages would need, the sweep stops.
    """
    study, ledger, options = sweep.study, sweep.ledger, sweep.options
    todo_by_stage = {stage.name: pending(grid.stages.get(stage.name, []), ledger,
                                         options.retry_failed) for stage in STAGES}
    joined = ray_address(options) is not None  # a cluster, which may have an autoscaler
    check_capacity(study, [st for st in STAGES if todo_by_stage[st.name]], autoscaling=joined)
    sweep = dataclasses.replace(sweep, clock=study_clock(grid, todo_by_stage, options))
    launched: dict[str, Launched] = {}
    for stage in STAGES:
        trials = grid.stages.get(stage.name, [])
        todo = pending(trials, ledger, options.retry_failed)
        if trials and not todo:
            say(f"[{stage.name}] all {len(trials)} trial(s) already done")
        if todo:
            check_capacity(study, [stage], autoscaling=joined)
            storage_answers(options)
            if stage.enabled(options):
                run_stage(stage, todo, sweep, launched.pop(stage.name, None))
            storage_answers(options)
            if stage.writes_outputs:
                write_outputs(study, sweep.ctx, ledger, sweep.tracker, options, final=False)
            if errored(stage, trials, ledger):
                say(f"[{stage.name}] some trials errored and later stages need their "
                    "checkpoints: the sweep stops here; rerun it to try them again")
                break
        launched.update(launch_early(stage, grid, sweep))


def launch_early(done: Stage, grid: Grid, sweep: SweepContext) -> dict[str, Launched]:
    """The Ray tasks of later stages that may start once ``done`` is (``Tasks.start_after``),
    started now, by the stage they belong to: they run beside the stages in between."""
    found = {}
    for later in STAGES:
        if later.tasks is None or later.tasks.start_after != done.name:
            continue
        todo = pending(grid.stages.get(later.name, []), sweep.ledger, sweep.options.retry_failed)
        if todo and later.enabled(sweep.options):
            found[later.name] = launch_tasks(later, todo, sweep)
    return found


def finish_outputs(sweep: SweepContext, uri: str) -> None:
    """The final outputs (results.parquet, aggregates, the report) and their stamp.

    Only a run that left MLflow complete may let the next one skip it: with the server down
    at the end, the next run must start MLflow and fill it in from the ledger.
    """
    study, options, ledger = sweep.study, sweep.options, sweep.ledger
    write_outputs(study, sweep.ctx, ledger, sweep.tracker, options, final=True)
    if sweep.tracker.down_since is None:
        atomic_write_text(options.out_dir / STAMP, outputs_stamp(study, options, ledger, uri))
    else:
        (options.out_dir / STAMP).unlink(missing_ok=True)


def _finish(grid: Grid, ledger: Ledger, out: Path, uri: str, t0: float,
            tracker: Tolerant | None = None) -> int:
    """The summary lines and the exit code (module docstring)."""
    code = end_of_run(grid, ledger, out, uri, t0,
                      mlflow_hint(uri, tracker.experiment_id) if tracker is not None else None)
    if tracker is not None and tracker.down_since is not None:
        say(f"warning: MLflow at {redact(uri)} did not answer at the end: every result is in "
            f"{out / 'trials'} and results.parquet; once it is back, rerun the same command "
            "(it finds every trial done) and it logs what MLflow is missing")
    return code
