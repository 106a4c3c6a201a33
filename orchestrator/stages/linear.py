"""Linear finetuning: a classifier on each backbone's frozen features, per dataset and seed.

Features are extracted first, once per (backbone, dataset), by Ray tasks that fill the
feature cache; every linear trial then trains on the cached features. Results are written
after the stage (results.parquet, the MLflow aggregates).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

from common import columns as C
from orchestrator import capacity
from orchestrator.backbones import Backbone
from orchestrator.capacity import Alternatives, Node, Request
from orchestrator.stages.prune import NAME as PRUNE
from orchestrator.stages.stage import Stage, Tasks
from orchestrator.stages.transfer import protocol_params, study_mode, transfer_trials
from search_spaces.recipe import Recipe
from search_spaces.schema import DatasetSpec, ModeSpec, Study
from search_spaces.trial import TrialSpec
from trainables.entry.linear import ensure_features, run_linear
from trainables.entry.rehearsal import rehearse_linear

NAME = "linear"


def _per_dataset(mode: ModeSpec, d: DatasetSpec) -> tuple[Recipe, tuple]:
    """The mode's recipe for every dataset, and its protocol params."""
    return mode.recipe, protocol_params(mode)


def trials(study: Study, backbones: Sequence[Backbone], out_dir: str | Path) -> list[TrialSpec]:
    """Every transferable backbone x dataset x seed of ``modes.linear``."""
    return transfer_trials(study, backbones, NAME, C.MODE_LINEAR, _per_dataset)


def feature_pair(spec: TrialSpec) -> Hashable:
    """The (backbone, dataset) pair whose features a trial reads: one task per pair."""
    return (spec.arch, spec.method, spec.sparsity, spec.checkpoint_hash,
            spec.mask_checkpoint_hash, spec.dataset)


def resources(study: Study, res: Mapping[str, float]) -> dict[str, float]:
    """``modes.linear.cpus`` and ``.gpus`` a trial."""
    mode = study.mode(C.MODE_LINEAR)
    return {"cpu": mode.cpus, "gpu": mode.gpus}


def requests(study: Study, nodes: list[Node]) -> list[tuple[Request, Alternatives]]:
    """The feature tasks (one CPU each) and the trials, with what to try when they cannot
    start."""
    return [*capacity.one_cpu("feature extraction tasks (before the linear trials)"),
            capacity.mode_trial(f"{NAME} trials", study.mode(C.MODE_LINEAR), nodes)]


def resources_text(study: Study) -> dict[str, str]:
    """The dry run's lines: the feature tasks and the trials."""
    mode = study_mode(study, C.MODE_LINEAR)
    if mode is None:
        return {}
    return {"features": "one Ray task per (backbone, dataset): 1 CPU, or 1 GPU if present",
            NAME: f"{mode.cpus:g} CPU" + (f", {mode.gpus:g} GPU" if mode.gpus else "")}


def estimate(study: Study, trials: list[TrialSpec]) -> dict[str, float]:
    """GPU-hours of feature extraction: every pair's images once, at the study's assumed
    inference throughput (the linear heads train on CPU in minutes)."""
    ds = {d.name: d for d in study.datasets}
    pairs = {(t.arch, t.method, t.sparsity, t.dataset) for t in trials}
    seconds = sum((ds[p[3]].train_images + ds[p[3]].test_images)
                  / study.estimate.inference_images_per_gpu_s for p in pairs)
    return {"feature extraction": seconds / 3600}


STAGE = Stage(
    name=NAME, mode=C.MODE_LINEAR, trials=trials, entry=run_linear, rehearsal=rehearse_linear,
    resources=resources, requests=requests,
    # the features read only the zoo: they run beside the checkpoint stage
    tasks=Tasks(label="features", fn=ensure_features, key=feature_pair, start_after=PRUNE),
    reuse_actors=True, writes_outputs=True, resources_text=resources_text, estimate=estimate,
)
