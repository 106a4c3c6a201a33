"""Running a study: stages in order, each a Ray Tune run of the trials not yet done.

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
import math
import os
import shlex
import signal
import tempfile
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common import columns as C
from common.atomic import atomic_write_text
from common.errors import BadInput
from orchestrator.capacity import (
    Alternatives, Node, Request, Unschedulable, check, cluster_nodes,
)
from orchestrator.grid import STAGE_ORDER, Grid, expand
from orchestrator.ledger import ERROR, FAILED, FINISHED, Ledger
from orchestrator.lock import SweepRunning, driver_lock
from orchestrator.options import SweepOptions, check_folder_kind, mark_rehearsal_folder
from orchestrator.options import default_tracking_uri, redact
from orchestrator.resume import (
    STAMP, all_done, end_of_run, method_labels, outputs_stamp, pending, say,
)
from orchestrator.tracking import Tolerant, Tracker, TrackingError, sync_from_ledger
from search_spaces.schema import Study
from search_spaces.trial import TrialSpec, to_dict
from trainables.context import FullPlan, TrialContext

log = logging.getLogger("orchestrator")


def ray_address(options: SweepOptions,
                environ: Mapping[str, str] = os.environ) -> str | None:
    """The Ray cluster to join: ``--address``, else ``$RAY_ADDRESS``, else None (a local Ray
    of the sweep's own).

    Why the variable: Ray Jobs runs the submitted program with ``RAY_ADDRESS`` set to the
    cluster, and Ray users expect a driver to join it; ignoring it ran the whole study on the
    head node alone. ``--address local`` asks for the sweep's own local Ray even when the
    variable is set. An ``http(s)://`` value is the dashboard's address, which ``ray job
    submit`` reads but a driver cannot join.
    """
    given = options.address
    address = given or environ.get("RAY_ADDRESS", "").strip() or None
    if address == "local":
        return None
    if address and address.split("://")[0].lower() in ("http", "https"):
        where = "--address" if given else "RAY_ADDRESS"
        raise BadInput(
            f"{where} {address!r} is the Ray dashboard's address (what `ray job submit` "
            "reads), not a cluster a driver can join: submit the sweep with `ray job submit "
            "--working-dir . -- python -m orchestrator.sweep ...`, or run it on the head with "
            "--address auto (or the GCS address, <head>:6379)")
    return address


def init_ray(options: SweepOptions) -> None:
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
        return
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, logging_level=logging.WARNING, log_to_driver=options.verbose > 1,
    )
    if address:
        ray.init(address=address, **kwargs)
    else:
        # "local": always a fresh Ray of our own; with no address, ray.init() would join the
        # last `ray start` cluster on this machine (another user's, or a dead one's address).
        ray.init(address="local", num_cpus=options.num_cpus, **kwargs)


def cluster_warnings(study: Study, options: SweepOptions) -> list[str]:
    """Paths that work on one machine but not across a cluster's nodes (``--address``).

    Trials on every node write under ``--out`` (features, zoo, Ray Tune storage) and read
    the data and checkpoint folders, so these must be absolute paths on a shared mount.
    """
    if not ray_address(options):
        return []
    found = []
    tmp = Path(tempfile.gettempdir()).resolve()
    shared = os.environ.get("SPARSE_TRANSFER_SHARED")  # set on every node by cluster.yaml
    if shared:
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


def cluster_resources() -> dict[str, float]:
    import ray

    return dict(ray.cluster_resources())


def stage_resources(study: Study, stage: str,
                    res: dict[str, float] | None = None) -> dict[str, float]:
    """What one Tune trial of ``stage`` asks for (``res``: the cluster's totals, else Ray's)."""
    if stage == "checkpoint" and study.upstream is None:
        # ImageNet's 50 000 validation images per checkpoint: a GPU when the cluster has one.
        res = cluster_resources() if res is None else res
        return {"cpu": 1, "gpu": 1} if res.get("GPU", 0) >= 1 else {"cpu": 1}
    if stage in ("pretrain", "prune", "checkpoint"):
        # One thread each: on a shared 2-core box, 2 torch threads per process ran pretraining
        # about 10x slower (262 s vs 20 s an epoch) once anything else wanted a core.
        return {"cpu": 1}
    mode = study.mode(stage)
    if stage == "linear":
        return {"cpu": mode.cpus, "gpu": mode.gpus}
    if full_worker_plan(study, cluster_resources() if res is None else res).in_trial:
        return {"cpu": mode.cpus}
    return {"cpu": 0.2}  # the Tune trial only drives a TorchTrainer, whose workers ask more


def full_worker_plan(study: Study, res: dict[str, float]) -> FullPlan:
    """Ray Train workers of a full-finetuning trial: GPUs when present (auto), else CPU."""
    mode = study.mode("full")
    has_gpu = res.get("GPU", 0) >= 1
    use_gpu = mode.use_gpu == "yes" or (mode.use_gpu == "auto" and has_gpu)
    cpus = min(mode.cpus, max(1.0, res.get("CPU", 1) - 0.2))
    in_trial = mode.trainer == "auto" and mode.workers == 1 and not use_gpu
    return FullPlan(num_workers=mode.workers, use_gpu=use_gpu, cpus_per_worker=cpus,
                    gpus_per_worker=mode.gpus if use_gpu else 0, in_trial=in_trial,
                    start_timeout_s=mode.start_timeout_s)


def worker_resources(plan: FullPlan) -> dict[str, float]:
    """What each Ray Train worker asks for: ``ScalingConfig`` adds one GPU per worker when
    ``use_gpu`` (``run_full_finetune_trainer`` passes only the CPUs)."""
    return {"CPU": plan.cpus_per_worker, "GPU": 1.0 if plan.use_gpu else 0.0}


def _cpu_steps(cpus: float) -> list[float]:
    """CPU counts below ``cpus`` in 0.1 steps, largest first: the candidates that might fit."""
    top = math.ceil(round(cpus * 10, 6)) - 1
    return [round(i / 10, 1) for i in range(top, 0, -1)]


def stage_requests(study: Study, stage: str,
                   nodes: list[Node]) -> list[tuple[Request, Alternatives]]:
    """Each kind of trial ``stage`` starts, as the cluster of ``nodes`` would get it, with the
    changed study values to try when it cannot start (from each group, the first that fits)."""
    res: dict[str, float] = {}
    for n in nodes:
        for k, v in n.resources.items():
            res[k] = res.get(k, 0.0) + v
    if stage in ("pretrain", "prune", "checkpoint"):
        return [(Request(f"{stage} trials", {"CPU": 1.0}), [])]
    if stage == "speed":  # the speed pool picks its nodes and says when there are none
        return []
    mode = study.mode(stage)
    found: list[tuple[Request, Alternatives]] = []
    key = f"modes.{stage}"
    if stage == "linear":
        found.append((Request("feature extraction tasks (before the linear trials)",
                              {"CPU": 1.0}), []))
        trial = {"CPU": float(mode.cpus), "GPU": float(mode.gpus)}
        req = Request("linear trials", trial,
                      keys=((f"{key}.cpus", mode.cpus), (f"{key}.gpus", mode.gpus)))
        gpus = sorted({math.floor(n.get("GPU")) for n in nodes if n.get("GPU") < mode.gpus},
                      reverse=True)
        found.append((req, [
            [(f"{key}.cpus: {c:g}", dataclasses.replace(req, trial={**trial, "CPU": c}))
             for c in _cpu_steps(mode.cpus)],
            [(f"{key}.gpus: {g:g}", dataclasses.replace(req, trial={**trial, "GPU": float(g)}))
             for g in gpus],
        ]))
        return found
    plan = full_worker_plan(study, res)
    gpus = mode.gpus if plan.use_gpu else (
        f"{mode.gpus:g} (unused: the workers train on CPU, {key}.use_gpu = {mode.use_gpu})")
    keys = ((f"{key}.workers", mode.workers), (f"{key}.cpus", mode.cpus),
            (f"{key}.gpus", gpus), (f"{key}.use_gpu", mode.use_gpu))
    if plan.in_trial:
        trial = {"CPU": float(stage_resources(study, stage, res)["cpu"])}
        req = Request("full-finetuning trials (in the Tune trial: one CPU worker)", trial,
                      keys=keys[1:2])
        return [(req, [[(f"{key}.cpus: {c:g}", dataclasses.replace(req, trial={"CPU": c}))
                        for c in _cpu_steps(trial["CPU"])]])]
    trial = {"CPU": float(stage_resources(study, stage, res)["cpu"])}
    per = worker_resources(plan)
    req = Request("full-finetuning trials (Ray Train, DDP)", trial, plan.num_workers, per,
                  keys=keys if plan.use_gpu else keys[:3])
    alternatives: Alternatives = [
        [(f"{key}.workers: {w}", dataclasses.replace(req, workers=w))
         for w in range(plan.num_workers - 1, 0, -1)],
        [(f"{key}.cpus: {c:g} (with workers: {plan.num_workers})",
          dataclasses.replace(req, per_worker={**per, "CPU": c}))
         for c in _cpu_steps(plan.cpus_per_worker)],
    ]
    if plan.use_gpu:
        alternatives.append([(f"{key}.use_gpu: no (CPU workers)",
                              dataclasses.replace(req, per_worker={**per, "GPU": 0.0}))])
    found.append((req, alternatives))
    return found


def check_capacity(study: Study, stages: list[str], nodes: list[Node] | None = None,
                   autoscaling: bool = False) -> None:
    """Raise ``Unschedulable`` when a trial of one of ``stages`` can never start on the
    cluster's live nodes, or the nodes its autoscaler can launch (Ray would queue it
    forever)."""
    nodes = cluster_nodes(autoscaling) if nodes is None else nodes
    for stage in stages:
        for req, alternatives in stage_requests(study, stage, nodes):
            check(req, nodes, alternatives)


def max_concurrent(stage: str, study: Study, res: dict[str, float],
                   options: SweepOptions) -> int | None:
    cap = options.max_concurrent
    if stage == "full" and not full_worker_plan(study, res).in_trial:
        plan = full_worker_plan(study, res)
        per = plan.num_workers * plan.cpus_per_worker + 0.2
        n = max(1, math.floor(res.get("CPU", 1) / per))
        if plan.use_gpu:
            gpus = plan.num_workers * worker_resources(plan)["GPU"]
            n = min(n, max(1, math.floor(res.get("GPU", 1) / gpus)))
        cap = min(cap, n) if cap else n
    return cap


# Trials per Tuner: a stage with more runs as several Tuners, one after another. Why: Tune's
# driver loop and its experiment-state snapshots walk every trial of the Tuner, so its cost
# per trial grows with the Tuner's size (benchmarks/RESULTS.md, issue #20); batches keep it
# flat, and the ledger, not the Tuner, knows what is done.
TUNE_BATCH = 500

# What a rehearsal trial asks for: a CPU slot, whatever the stage (it computes nothing).
REHEARSAL_RESOURCES = {"cpu": 1}


def run_stage(stage: str, trials: list[TrialSpec], study: Study, ctx: TrialContext,
              ledger: Ledger, tracker: Tracker, options: SweepOptions,
              study_progress: Any = None, batch: int | None = None) -> None:
    from orchestrator.progress import Progress

    batch = batch or TUNE_BATCH
    progress = Progress(stage, len(trials), out=say if options.verbose else (lambda s: None),
                        study=study_progress)
    parts = math.ceil(len(trials) / batch)
    say(f"[{stage}] {len(trials)} trial(s) to run"
        + (f" in {parts} Ray Tune runs of at most {batch}" if parts > 1 else ""))
    tracker.start_stage(stage, len(trials))
    try:
        for i in range(parts):
            name = stage if parts == 1 else f"{stage}-{i + 1:03d}"
            _tune(stage, name, trials[i * batch:(i + 1) * batch], study, ctx, ledger, tracker,
                  options, progress)
    finally:
        if study_progress is not None:
            study_progress.finish_stage(progress)
    tracker.end_stage(stage, {"finished": progress.finished, "failed": progress.failed,
                              "error": progress.errors})
    progress.show(force=True)


def _tune(stage: str, name: str, trials: list[TrialSpec], study: Study, ctx: TrialContext,
          ledger: Ledger, tracker: Tracker, options: SweepOptions, progress: Any) -> None:
    """One Ray Tune run over ``trials`` (a stage, or one batch of it)."""
    from ray import tune

    from orchestrator.progress import RecordTrials
    from trainables.trials import tune_entry

    res = cluster_resources()
    plan = full_worker_plan(study, res) if stage == "full" else FullPlan()
    space = {
        "trial": tune.grid_search([{"id": t.trial_id, "spec": to_dict(t)} for t in trials]),
    }
    resources = REHEARSAL_RESOURCES if ctx.rehearsal else stage_resources(study, stage)
    threads = max(1, int(resources["cpu"]))
    space["ctx"] = dataclasses.replace(ctx, threads=threads, full_plan=plan).as_dict()
    tuner = tune.Tuner(
        tune.with_resources(tune_entry, resources),
        param_space=space,
        tune_config=tune.TuneConfig(
            max_concurrent_trials=(options.max_concurrent if ctx.rehearsal
                                   else max_concurrent(stage, study, res, options)),
            # Reusing trial processes skips their start-up (torch imports, dataset loads);
            # a TorchTrainer-driving trial holds nothing worth keeping.
            reuse_actors=(ctx.rehearsal or stage in ("linear", "checkpoint")
                          or (stage == "full" and plan.in_trial)),
            trial_name_creator=lambda t: t.config["trial"]["id"],
            trial_dirname_creator=lambda t: t.config["trial"]["id"],
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(Path(ctx.out_dir) / "ray"),
            callbacks=[RecordTrials(ledger, tracker, progress, say=say)],
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            # -v: Ray Tune's own status table too (-vv: and each trial's results).
            verbose=min(max(options.verbose - 1, 0), 3),
        ),
    )
    tuner.fit()


def run_features(trials: list[TrialSpec], ctx: TrialContext, options: SweepOptions) -> None:
    """Extract features once per (backbone, dataset) before the linear trials need them."""
    import ray

    from trainables.trials import ensure_features

    seen: dict[tuple, TrialSpec] = {}
    for t in trials:
        seen.setdefault((t.arch, t.method, t.sparsity, t.checkpoint_hash,
                         t.mask_checkpoint_hash, t.dataset), t)
    if not seen:
        return
    say(f"[features] {len(seen)} (backbone, dataset) pair(s)")
    task = ray.remote(num_cpus=1, max_retries=options.max_failures)(ensure_features)
    refs = {task.remote(to_dict(t), ctx.as_dict()): t for t in seen.values()}
    done = failed = 0
    t0 = time.monotonic()
    remaining = list(refs)
    last = 0.0
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=1, timeout=30)
        for r in ready:
            try:
                ray.get(r)
                done += 1
            except Exception as e:  # noqa: BLE001 - the linear trials will record the error
                failed += 1
                t = refs[r]
                say(f"[features] {t.method} {t.sparsity}% on {t.dataset} failed: "
                    f"{str(e).strip().splitlines()[-1][:300]} (its linear trials try again)")
        if options.verbose and (time.monotonic() - last > 10 or not remaining):
            from orchestrator.progress import pace_text

            last = time.monotonic()
            el = time.monotonic() - t0
            say(f"[features] {done + failed}/{len(seen)} done ({failed} failed) · "
                f"{pace_text(done + failed, len(seen), el)} · {int(el)}s")


def run_speed(trials: list[TrialSpec], ctx: TrialContext, ledger: Ledger, tracker: Tracker,
              options: SweepOptions, study_progress: Any = None) -> None:
    from orchestrator.progress import Progress, record_error, record_failure, record_success
    from orchestrator.speed_pool import run_speed_trials
    from trainables.trials import speed_spec_from

    progress = Progress("speed", len(trials), out=say if options.verbose else (lambda s: None),
                        study=study_progress)
    tracker.start_stage("speed", len(trials))
    say(f"[speed] {len(trials)} DeepSparse speed trial(s)")
    specs, by_key = [], {}
    for t in trials:
        try:
            s = speed_spec_from(t, ctx)
        except BadInput as e:
            record_failure(ledger, tracker, t, f"{type(e).__name__}: {e}")
            progress.failed += 1
            continue
        tracker.ensure_run(t)
        specs.append(s)
        by_key[id(s)] = t

    def on_result(spec: Any, result: dict[str, Any]) -> None:
        t = by_key[id(spec)]
        if result.get("status") == FAILED:
            record_failure(ledger, tracker, t, str(result.get("error", "")))
            progress.failed += 1
        elif result.get("status") == ERROR:
            record_error(ledger, tracker, t, str(result.get("error", "")), attempts=1)
            progress.errors += 1
        else:
            record_success(ledger, tracker, t, result)
            progress.finished += 1
        progress.show()

    if specs:
        try:
            run_speed_trials(specs, on_result=on_result)
        finally:
            if study_progress is not None:
                study_progress.finish_stage(progress)
    tracker.end_stage("speed", {"finished": progress.finished, "failed": progress.failed,
                                "error": progress.errors})
    progress.show(force=True)


def study_clock(grid: Grid, todo_by_stage: Mapping[str, list[TrialSpec]],
                options: SweepOptions) -> Any:
    """The study's overall count and time left on every progress line (``StudyProgress``);
    speed trials count only when they will run."""
    from orchestrator.progress import StudyProgress

    stages = [st for st in STAGE_ORDER if st != "speed" or options.speed]
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


def _on_stop_signal(signum: int, frame: Any) -> None:
    global _stopped_by
    if _stopped_by is not None:  # a second signal while the first unwinds: stop waiting
        os._exit(128 + _stopped_by)
    _stopped_by = signum
    raise Stopped(signum)


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


def upstream_errors(stage: str, trials: list[TrialSpec], ledger: Ledger) -> int:
    """Errored trials of a stage whose checkpoints later stages read (pretrain, prune).

    Why the sweep stops on them: every later trial of their backbone would fail on the
    missing checkpoint, and that failure is bad input that a rerun skips; stopping leaves
    those trials unrun, so the rerun that retries the errored one runs them too.
    """
    if stage not in ("pretrain", "prune"):
        return 0
    return sum(ledger.status(t.trial_id) == ERROR for t in trials)


def run_sweep(study: Study, options: SweepOptions) -> int:
    """Run (or resume) the study; returns the exit code (module docstring).

    One driver per output folder: the lock (``orchestrator.lock``) is taken before anything
    is read or written there, and a second sweep on the same ``--out`` exits 2 at once.
    """
    try:
        ray_address(options)
    except BadInput as e:
        say(f"error: {e}")
        return 2
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    try:
        with driver_lock(out, shown_command(options), warn=lambda m: say(f"warning: {m}")):
            return _run_sweep(study, options)
    except SweepRunning as e:
        say(f"error: {e}")
        return 2


def _run_sweep(study: Study, options: SweepOptions) -> int:
    out = options.out_dir
    t0 = time.monotonic()
    try:
        check_folder_kind(out, options.rehearsal)
        # A rehearsal reads no checkpoint: its trial ids carry no file hashes.
        grid = expand(study, out, hash_files=not options.rehearsal)
    except (ValueError, BadInput) as e:
        say(f"error: {e}")
        return 2
    if options.rehearsal:
        mark_rehearsal_folder(out)
    uri = options.tracking_uri or default_tracking_uri(out)
    ledger = Ledger(out / "trials")
    stamp = outputs_stamp(study, options, ledger, uri)
    if all_done(grid, ledger, study, options, stamp):
        return _finish(grid, ledger, out, uri, t0)
    try:
        # With the default SQLite store, artifacts (the report) stay in the output folder too.
        artifacts = None if options.tracking_uri else (out / "mlartifacts").as_uri()
        suffix = "-rehearsal" if options.rehearsal else ""
        tracker = Tracker(uri, experiment=f"sparse-transfer/{study.name}{suffix}",
                          artifact_location=artifacts, method_labels=method_labels(study),
                          method_facts=study.method_facts,
                          description=study.description, data_root=study.data_root,
                          sparsity_levels={t.sparsity for t in grid.all_trials()},
                          run_tags={C.REHEARSAL: "True"} if options.rehearsal else None)
    except TrackingError as e:
        say(f"error: {e}")
        return 2
    tracker = Tolerant(tracker, say)
    catch_up(tracker, ledger)  # what an earlier run could not log (MLflow was down)
    address = ray_address(options)
    say(f"study {study.name!r}: {len(grid.all_trials())} trials · output {out} · "
        f"MLflow {redact(uri)}" + (f" · Ray {address}" + (
            "" if options.address else " (RAY_ADDRESS)") if address else ""))
    for warning in cluster_warnings(study, options):
        say(f"warning: {warning}")
    threads = 1
    ctx = TrialContext(out_dir=str(out), data_root=study.data_root, threads=threads,
                       rehearsal=options.rehearsal)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        init_ray(options)
        stop_on_signals()
        todo_by_stage = {stage: pending(grid.stages.get(stage, []), ledger,
                                        options.retry_failed) for stage in STAGE_ORDER}
        # Every stage with work is checked now, so a full-finetuning request that can never
        # start stops the sweep before hours of linear trials, and again when it starts
        # (nodes may have gone since).
        joined = address is not None  # a cluster, which may have an autoscaler
        check_capacity(study, [st for st, todo in todo_by_stage.items() if todo],
                       autoscaling=joined)
        study_progress = study_clock(grid, todo_by_stage, options)
        for stage in STAGE_ORDER:
            trials = grid.stages.get(stage, [])
            todo = pending(trials, ledger, options.retry_failed)
            if trials and not todo:
                say(f"[{stage}] all {len(trials)} trial(s) already done")
            if not todo:
                continue
            check_capacity(study, [stage], autoscaling=joined)
            if stage == "speed" and not options.rehearsal:  # a rehearsal runs it in Tune
                if options.speed:
                    run_speed(todo, ctx, ledger, tracker, options, study_progress)
            elif stage != "speed" or options.speed:
                if stage == "linear" and not options.rehearsal:
                    run_features(todo, ctx, options)
                run_stage(stage, todo, study, ctx, ledger, tracker, options, study_progress)
            if stage in ("linear", "full"):
                write_outputs(study, ctx, ledger, tracker, options, final=False)
            if upstream_errors(stage, trials, ledger):
                say(f"[{stage}] some trials errored and later stages need their checkpoints: "
                    "the sweep stops here; rerun it to try them again")
                break
        write_outputs(study, ctx, ledger, tracker, options, final=True)
        # Only a run that left MLflow complete may let the next one skip it: with the server
        # down at the end, the next run must start MLflow and fill it in from the ledger.
        if tracker.down_since is None:
            atomic_write_text(out / STAMP, outputs_stamp(study, options, ledger, uri))
        else:
            (out / STAMP).unlink(missing_ok=True)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM through stop_on_signals
        signum = stop_signal(e)
        say(stopped_line(signum, grid, ledger, options))
        return 128 + signum
    except Unschedulable as e:
        say(f"error: {e}")
        return 2
    except OSError as e:  # full disk, lost mount: the message names the file
        say(f"error: {e}\nthe sweep stopped; finished trials are saved; fix it and rerun")
        return 3
    except Exception:  # noqa: BLE001 - say what broke, keep what finished
        traceback.print_exc()
        say("the sweep stopped on an error; finished trials are saved; rerun to resume")
        return 3
    finally:
        _restore_signals(previous)
    return _finish(grid, ledger, out, uri, t0, tracker)


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
