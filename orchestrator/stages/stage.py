"""What a stage of a study is: one record per stage, declared in the stage's own module.

A stage is a kind of trial the sweep runs for every cell of the study's grid: its trials (built
from the study and its backbones), the trainables entry each trial runs (and the rehearsal's
stand-in for it), what one trial asks of the cluster, how the sweep runs them (a Ray Tune run,
or the DeepSparse actor pool, with Ray tasks before the trials where it needs them), and what
the sweep does after it. The sweep is a loop over ``orchestrator.stages.STAGES`` that reads
these fields and names no stage.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.backbones import Backbone
from orchestrator.capacity import Alternatives, Node, Request
from orchestrator.options import SweepOptions
from search_spaces.schema import Study
from search_spaces.trial import TrialSpec
from trainables.entry.context import FullPlan

# How a stage's trials run (``Stage.runs_on``).
TUNE = "Ray Tune"  # one Ray Tune run (in batches), each trial a function trainable
ACTOR_POOL = "the DeepSparse actor pool"  # orchestrator.speed_pool: one actor per speed node

Resources = Mapping[str, float]
# (study, its backbones, the trials' root: the output folder or --storage's URI for it)
TrialBuilder = Callable[[Study, Sequence[Backbone], str | Path], list[TrialSpec]]


@dataclass(frozen=True)
class Tasks:
    """Ray tasks that run before a stage's trials, one per distinct ``key`` of its trials.

    ``fn(spec_dict, ctx_dict)`` is a trainables function (``ensure_features``); a task that
    fails is only reported: the trials that need its output fail on their own (as bad input).
    ``start_after``: the earlier stage after which the tasks may already start, when what
    they read is made by then (the features read the zoo, done after ``prune``): they then
    run beside the stages in between, on the cores those leave idle, and the stage waits for
    them before its trials. None: they start with the stage.
    """

    label: str  # in the progress lines: "[features] ..."
    fn: Callable[[dict[str, Any], dict[str, Any]], None]
    key: Callable[[TrialSpec], Hashable]
    start_after: str | None = None


# Defaults of the fields below: what a stage without that concern declares.

def no_backbones(study: Study, out_dir: str | Path) -> list[Backbone]:
    """Its trials write no backbone."""
    return []


def one_cpu(study: Study, res: Resources) -> dict[str, float]:
    """One thread per trial: on a shared 2-core box, 2 torch threads per process ran
    pretraining about 10x slower (262 s vs 20 s an epoch) once anything else wanted a core."""
    return {"cpu": 1}


def no_requests(study: Study, nodes: list[Node]) -> list[tuple[Request, Alternatives]]:
    """Nothing for the capacity check (the actor pool picks its own nodes)."""
    return []


def no_plan(study: Study, res: Resources) -> FullPlan:
    """No full-finetuning worker plan (the default one, never read)."""
    return FullPlan()


def as_given(study: Study, res: Resources, cap: int | None) -> int | None:
    """``--max-concurrent`` as given (None: as many as the cluster holds)."""
    return cap


def always(options: SweepOptions) -> bool:
    """Run under every option."""
    return True


def no_text(study: Study) -> dict[str, str]:
    """Nothing to say in the dry run."""
    return {}


def no_estimate(study: Study, trials: list[TrialSpec]) -> dict[str, float]:
    """No GPU-hours worth estimating."""
    return {}


@dataclass(frozen=True)
class Stage:
    """One stage, as the grid, the capacity check and the sweep read it.

    Args:
        name: the stage's name (``TrialSpec.stage``, so part of every trial id; the MLflow
            parent run; the progress lines).
        mode: what its rows measure, the results table's ``mode`` (``common.columns``).
        trials: its trials for a study, from the study's backbones (and the output folder,
            where the zoo is written).
        entry: the trainables function a trial runs: ``entry(spec, ctx, report) -> result``
            in Ray Tune; for the actor pool, ``entry(spec, ctx)`` builds the pool's job.
        rehearsal: the rehearsal's stand-in for ``entry`` (``--rehearsal``: run in Ray Tune).
        resources: what one Tune trial asks for (``{"cpu": .., "gpu": ..}``), given the
            cluster's totals.
        requests: every kind of request a trial makes, as the capacity check sees it, with
            the study values to try instead when it cannot start.
        runs_on: ``TUNE`` or ``ACTOR_POOL``.
        tasks: Ray tasks before its trials (None: none).
        plan: the full-finetuning worker plan its trials get (``TrialContext.full_plan``).
        concurrency: the most trials at once, from the cluster and ``--max-concurrent``.
        reuse_actors: Tune may reuse a trial's process for the next (with the plan's
            ``in_trial``: a process that only drives a TorchTrainer holds nothing worth it).
        backbones: the backbones its trials write (the tiny study's zoo).
        feeds_later: later stages read its outputs, so the sweep stops after it when one of
            its trials errored (their trials would fail on the missing checkpoint).
        writes_outputs: results.parquet and the MLflow aggregates are written after it.
        enabled: whether the sweep runs it under these options (``--no-speed``).
        resources_text: each kind of its trials' request in words, for the dry run.
        estimate: GPU-hours of its trials by kind, for the dry run.
    """

    name: str
    mode: str
    trials: TrialBuilder
    entry: Callable[..., Any]
    rehearsal: Callable[..., Any]
    resources: Callable[[Study, Resources], dict[str, float]] = one_cpu
    requests: Callable[[Study, list[Node]], list[tuple[Request, Alternatives]]] = no_requests
    runs_on: str = TUNE
    tasks: Tasks | None = None
    plan: Callable[[Study, Resources], FullPlan] = no_plan
    concurrency: Callable[[Study, Resources, int | None], int | None] = as_given
    reuse_actors: bool = False
    backbones: Callable[[Study, Path], list[Backbone]] = no_backbones
    feeds_later: bool = False
    writes_outputs: bool = False
    enabled: Callable[[SweepOptions], bool] = always
    resources_text: Callable[[Study], dict[str, str]] = no_text
    estimate: Callable[[Study, list[TrialSpec]], dict[str, float]] = no_estimate
