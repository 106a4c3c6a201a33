"""How a stage's pending trials run: Ray tasks first where the stage has them, then one Ray
Tune run (in batches) or the DeepSparse actor pool, as the stage declares (``Stage.runs_on``).

Every trial ends in the ledger and MLflow as it finishes (``progress.RecordTrials`` for Tune,
``on_result`` for the pool), so an interrupted stage keeps what it did. A rehearsal runs every
stage in Ray Tune with the stage's stand-in entry, and no tasks (nothing to extract).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.errors import BadInput
from orchestrator.ledger import ERROR, FAILED, Ledger
from orchestrator.options import SweepOptions, storage_answers
from orchestrator.logs import PROGRESS, say
from orchestrator.stages.stage import ACTOR_POOL, TUNE, Stage
from search_spaces.schema import Study
from search_spaces.trial import TrialSpec, to_dict
from trainables.entry.context import TrialContext

# Trials per Tuner: a stage with more runs as several Tuners, one after another. Why: Tune's
# driver loop and its experiment-state snapshots walk every trial of the Tuner, so its cost
# per trial grows with the Tuner's size (benchmarks/RESULTS.md); batches keep it flat, and
# the ledger, not the Tuner, knows what is done.
TUNE_BATCH = 500

# What a rehearsal trial asks for: a CPU slot, whatever the stage (it computes nothing).
REHEARSAL_RESOURCES = {"cpu": 1}


@dataclass(frozen=True)
class SweepContext:
    """What every stage's run shares: the study, the trials' context, the ledger, the
    tracker (a ``tracking_outage.Tolerant``), the options and the study's progress clock."""

    study: Study
    ctx: TrialContext
    ledger: Ledger
    tracker: Any
    options: SweepOptions
    clock: Any = None  # progress.StudyProgress


def cluster_resources() -> dict[str, float]:
    """The Ray cluster's total resources (``{"CPU": .., "GPU": .., ...}``)."""
    import ray

    return dict(ray.cluster_resources())


@dataclass(frozen=True)
class Launched:
    """A stage's Ray tasks once started (``launch_tasks``): each task's ref -> the trial it
    was made for, and when they started (``time.monotonic``), so their pace counts from
    there even when they ran beside earlier stages."""

    refs: dict[Any, TrialSpec]
    started: float


def run_stage(stage: Stage, trials: list[TrialSpec], sweep: SweepContext,
              launched: Launched | None = None) -> None:
    """Run ``trials`` of ``stage`` as it declares (a rehearsal: in Ray Tune, no tasks);
    ``launched``: its tasks, already started after an earlier stage (``launch_tasks``)."""
    if sweep.options.rehearsal:
        run_tune(stage, trials, sweep)
        return
    if stage.tasks is not None:
        run_tasks(stage, trials, sweep, launched)
    RUNS_ON[stage.runs_on](stage, trials, sweep)


def _progress(stage: Stage, total: int, sweep: SweepContext) -> Any:
    """The stage's progress lines (on the terminal unless ``-q``, always in the log file),
    counted in the study's too."""
    from orchestrator.progress import Progress

    return Progress(stage.name, total, out=PROGRESS.info, study=sweep.clock)


def run_tune(stage: Stage, trials: list[TrialSpec], sweep: SweepContext,
             batch: int | None = None) -> None:
    """The stage's trials as Ray Tune runs of at most ``batch`` trials, one after another."""
    batch = batch or TUNE_BATCH
    progress = _progress(stage, len(trials), sweep)
    parts = math.ceil(len(trials) / batch)
    say(f"[{stage.name}] {len(trials)} trial(s) to run"
        + (f" in {parts} Ray Tune runs of at most {batch}" if parts > 1 else ""))
    sweep.tracker.start_stage(stage.name, len(trials))
    try:
        for i in range(parts):
            name = stage.name if parts == 1 else f"{stage.name}-{i + 1:03d}"
            _tune(stage, name, trials[i * batch:(i + 1) * batch], sweep, progress)
    finally:
        if sweep.clock is not None:
            sweep.clock.finish_stage(progress)
    _end(stage, sweep, progress)


def _end(stage: Stage, sweep: SweepContext, progress: Any) -> None:
    """The stage's MLflow run ends with its counts; its last progress line."""
    sweep.tracker.end_stage(stage.name, {"finished": progress.finished,
                                         "failed": progress.failed, "error": progress.errors})
    progress.show(force=True)


def _tune(stage: Stage, name: str, trials: list[TrialSpec], sweep: SweepContext,
          progress: Any) -> None:
    """One Ray Tune run over ``trials`` (a stage, or one batch of it)."""
    from ray import tune

    from orchestrator.progress import RecordTrials, StopWhenStorageDown
    from trainables.entry.trial import tune_trainable

    study, ctx, options = sweep.study, sweep.ctx, sweep.options
    res = cluster_resources()
    plan = stage.plan(study, res)
    resources = REHEARSAL_RESOURCES if ctx.rehearsal else stage.resources(study, res)
    space = {
        "trial": tune.grid_search([{"id": t.trial_id, "spec": to_dict(t)} for t in trials]),
        "ctx": dataclasses.replace(ctx, threads=max(1, int(resources["cpu"])),
                                   full_plan=plan).as_dict(),
    }
    entry = stage.rehearsal if ctx.rehearsal else stage.entry
    tuner = tune.Tuner(
        tune.with_resources(tune_trainable(entry), resources),
        param_space=space,
        tune_config=tune.TuneConfig(
            max_concurrent_trials=(options.max_concurrent if ctx.rehearsal
                                   else stage.concurrency(study, res, options.max_concurrent)),
            # Reusing trial processes skips their start-up (torch imports, dataset loads);
            # a TorchTrainer-driving trial holds nothing worth keeping.
            reuse_actors=ctx.rehearsal or (stage.reuse_actors and plan.in_trial),
            trial_name_creator=lambda t: t.config["trial"]["id"],
            trial_dirname_creator=lambda t: t.config["trial"]["id"],
        ),
        run_config=tune.RunConfig(
            name=name,
            # The output folder's ray/, or a URI under --storage (Ray resolves it on every
            # node with pyarrow, as its own documentation puts multi-node storage).
            storage_path=ctx.location("ray"),
            callbacks=[RecordTrials(sweep.ledger, sweep.tracker, progress, say=say)] + (
                [StopWhenStorageDown(lambda: storage_answers(options))] if options.storage
                else []),
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            # -v: Ray Tune's own status table too (-vv: and each trial's results).
            verbose=min(max(options.verbose - 1, 0), 3),
        ),
    )
    tuner.fit()


def launch_tasks(stage: Stage, trials: list[TrialSpec], sweep: SweepContext) -> Launched:
    """Start the stage's Ray tasks, one per distinct key of its trials, without waiting for
    them (``run_tasks`` waits). None in a rehearsal or for a stage without tasks."""
    import ray

    tasks, options, now = stage.tasks, sweep.options, time.monotonic()
    if tasks is None or options.rehearsal:
        return Launched({}, now)
    seen: dict[Any, TrialSpec] = {}
    for t in trials:
        seen.setdefault(tasks.key(t), t)
    if not seen:
        return Launched({}, now)
    say(f"[{tasks.label}] {len(seen)} (backbone, dataset) pair(s)")
    task = ray.remote(num_cpus=1, max_retries=options.max_failures)(tasks.fn)
    return Launched({task.remote(to_dict(t), sweep.ctx.as_dict()): t for t in seen.values()},
                    now)


def run_tasks(stage: Stage, trials: list[TrialSpec], sweep: SweepContext,
              launched: Launched | None = None) -> None:
    """The stage's Ray tasks (features once per (backbone, dataset) before the linear trials
    need them), started here unless ``launched`` earlier, waited for. A failed task is
    reported; the trials that need its output fail on their own."""
    import ray

    tasks, options = stage.tasks, sweep.options
    assert tasks is not None
    launched = launched if launched is not None else launch_tasks(stage, trials, sweep)
    refs, t0 = launched.refs, launched.started
    done = failed = 0
    last = time.monotonic()
    remaining = list(refs)
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=1, timeout=30)
        for r in ready:
            try:
                ray.get(r)
                done += 1
            except Exception as e:  # noqa: BLE001 - the stage's trials will record the error
                failed += 1
                t = refs[r]
                say(f"[{tasks.label}] {t.method} {t.sparsity}% on {t.dataset} failed: "
                    f"{str(e).strip().splitlines()[-1][:300]} (its {stage.name} trials try "
                    "again)")
        if time.monotonic() - last > 10 or not remaining:
            from orchestrator.progress import pace_text

            last = time.monotonic()
            el = time.monotonic() - t0
            PROGRESS.info(f"[{tasks.label}] {done + failed}/{len(refs)} done ({failed} failed) · "
                          f"{pace_text(done + failed, len(refs), el)} · {int(el)}s")


def run_pool(stage: Stage, trials: list[TrialSpec], sweep: SweepContext) -> None:
    """The stage's trials on the DeepSparse actor pool: ``stage.entry(spec, ctx)`` builds
    each trial's job; a job that cannot be built (bad input) is a failed trial at once."""
    from orchestrator.progress import record_failure
    from orchestrator.speed_pool import run_speed_trials

    ledger, tracker = sweep.ledger, sweep.tracker
    progress = _progress(stage, len(trials), sweep)
    tracker.start_stage(stage.name, len(trials))
    say(f"[{stage.name}] {len(trials)} DeepSparse speed trial(s)")
    jobs, by_key = [], {}
    for t in trials:
        try:
            job = stage.entry(t, sweep.ctx)
        except BadInput as e:
            record_failure(ledger, tracker, t, f"{type(e).__name__}: {e}")
            progress.failed += 1
            continue
        tracker.ensure_run(t)
        jobs.append(job)
        by_key[id(job)] = t
    if jobs:
        try:
            run_speed_trials(jobs, on_result=_recorder(by_key, sweep, progress))
        finally:
            if sweep.clock is not None:
                sweep.clock.finish_stage(progress)
    _end(stage, sweep, progress)


def _recorder(by_key: dict[int, TrialSpec], sweep: SweepContext,
              progress: Any) -> Callable[[Any, dict[str, Any]], None]:
    """The pool's ``on_result``: each result into the ledger and MLflow as it arrives."""
    from orchestrator.progress import record_error, record_failure, record_success

    ledger, tracker = sweep.ledger, sweep.tracker

    def on_result(job: Any, result: dict[str, Any]) -> None:
        t = by_key[id(job)]
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

    return on_result


RUNS_ON: dict[str, Callable[[Stage, list[TrialSpec], SweepContext], None]] = {
    TUNE: run_tune, ACTOR_POOL: run_pool,
}
