"""Full finetuning: every weight of each backbone trained with its mask fixed, per dataset
and seed, at the dataset's own learning rate.

A trial drives a Ray Train TorchTrainer (DDP, one worker per GPU, CPU workers without GPUs),
or trains in the Tune trial itself when ``trainer: auto`` leaves one CPU worker
(``capacity.full_worker_plan``). Results are written after the stage.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

from common import columns as C
from orchestrator import capacity
from orchestrator.backbones import Backbone
from orchestrator.capacity import Alternatives, Node, Request
from orchestrator.stages.stage import Stage
from orchestrator.stages.transfer import (augmentation_params, protocol_params, study_mode,
                                          transfer_trials)
from search_spaces.recipe import Recipe
from search_spaces.schema import DatasetSpec, ModeSpec, Study, TrainingSpec
from search_spaces.trial import TrialSpec
from trainables.entry.context import FullPlan
from trainables.entry.full import run_full
from trainables.entry.rehearsal import rehearse_full

NAME = "full"


def _per_dataset(mode: ModeSpec, d: DatasetSpec, training: TrainingSpec) -> tuple[Recipe, tuple]:
    """The mode's recipe at the dataset's own learning rate, with the augmentation, protocol
    and training-loop params."""
    return (dataclasses.replace(mode.recipe, lr=d.full_lr),
            augmentation_params(mode) + protocol_params(mode) + training.params())


def trials(study: Study, backbones: Sequence[Backbone], out_dir: str | Path) -> list[TrialSpec]:
    """Every transferable backbone x dataset x seed of ``modes.full``."""
    return transfer_trials(study, backbones, NAME, C.MODE_FULL,
                           functools.partial(_per_dataset, training=study.training))


def plan(study: Study, res: Mapping[str, float]) -> FullPlan:
    """How a trial trains on a cluster with totals ``res`` (``capacity.full_worker_plan``)."""
    return capacity.full_worker_plan(study.mode(C.MODE_FULL), res)


def resources(study: Study, res: Mapping[str, float]) -> dict[str, float]:
    """The study's CPUs when the trial trains itself; else only what driving a TorchTrainer
    takes (its workers ask for the rest)."""
    if plan(study, res).in_trial:
        return {"cpu": study.mode(C.MODE_FULL).cpus}
    return {"cpu": capacity.DRIVER_CPUS}


def requests(study: Study, nodes: list[Node]) -> list[tuple[Request, Alternatives]]:
    """A trial and the worker group it starts, as the cluster of ``nodes`` would plan it."""
    res = capacity.totals(nodes)
    return [capacity.ray_train_trial(study.mode(C.MODE_FULL), plan(study, res),
                                     resources(study, res)["cpu"])]


def concurrency(study: Study, res: Mapping[str, float], cap: int | None) -> int | None:
    """As many trials as their worker groups fit side by side, at most ``cap``."""
    return capacity.ray_train_concurrency(plan(study, res), res, cap)


def resources_text(study: Study) -> dict[str, str]:
    """The dry run's line: the worker group, or the trial itself with one CPU worker."""
    m = study_mode(study, C.MODE_FULL)
    if m is None:
        return {}
    gpu = {"auto": "GPU if the cluster has GPUs", "yes": "GPU", "no": "CPU only"}[m.use_gpu]
    text = (f"Ray Train: {m.workers} worker(s) x ({m.cpus:g} CPU"
            + (f" + {m.gpus:g} GPU" if m.use_gpu != "no" else "")
            + f"), {gpu}; plus {capacity.DRIVER_CPUS:g} CPU for the Tune trial")
    if m.trainer == "auto" and m.workers == 1:
        text += f"; on CPU with 1 worker: the Tune trial itself, {m.cpus:g} CPU"
    return {NAME: text}


def estimate(study: Study, trials: list[TrialSpec]) -> dict[str, float]:
    """GPU-hours: each trial's epochs over its dataset's training and test images at the
    study's assumed throughputs."""
    est = study.estimate
    ds = {d.name: d for d in study.datasets}
    seconds = 0.0
    for t in trials:
        d = ds[t.dataset]
        epochs = t.recipe.epochs if t.recipe else 0
        seconds += epochs * (d.train_images / est.train_images_per_gpu_s
                             + d.test_images / est.inference_images_per_gpu_s)
    return {"full finetuning": seconds / 3600}


STAGE = Stage(
    name=NAME, mode=C.MODE_FULL, trials=trials, entry=run_full, rehearsal=rehearse_full,
    resources=resources, requests=requests, plan=plan, concurrency=concurrency,
    reuse_actors=True, writes_outputs=True, resources_text=resources_text, estimate=estimate,
)
