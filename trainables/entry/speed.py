"""Speed trials' entry: a ``TrialSpec`` turned into the ``SpeedSpec`` a DeepSparse actor runs.

The speed stage does not run in Ray Tune: the orchestrator's actor pool
(``orchestrator.speed_pool``) runs ``trainables.speed.trial.speed_trial`` on the spec built
here, one trial at a time per speed node, so timings do not share cores.
"""

from __future__ import annotations

import functools
from typing import Any

from search_spaces.trial import TrialSpec
from trainables.entry.context import TrialContext
from trainables.entry.trial import epoch_selection, load_backbone


def speed_spec_from(spec: TrialSpec, ctx: TrialContext) -> Any:
    """The DeepSparse speed trial of a backbone (trained weights) or of random weights.

    The grid copies the study's ``speed`` settings into ``spec.params``; a setting missing
    there (a hand-made spec) falls back to ``SpeedSettings``' default, not to a number of its own.
    A backbone's online runs train on its dataset's training split with ``spec.recipe`` and
    are evaluated on its test split; random weights time synthetic images, with no accuracy.
    """
    from search_spaces.schema import SpeedSettings
    from trainables.speed.trial import SpeedSpec

    study = SpeedSettings()
    weights = spec.param("weights", "trained")
    batch_sizes = spec.param("batch_sizes", study.batch_sizes)
    common = dict(
        arch=spec.arch, method=spec.method, sparsity=spec.sparsity,
        profile=spec.param("profile", study.random_profile),
        image_size=spec.image_size, batch=max(batch_sizes),
        warmup=spec.param("warmup", study.warmup), reps=spec.param("reps", study.reps),
        online_batches=spec.param("online_batches", study.online_batches), seed=spec.seed,
        loader_workers=spec.param("loader_workers", study.loader_workers),
        # Under --storage the ONNX files are scratch in a temporary folder: nothing is left
        # on the speed node's disk.
        work_dir=None if ctx.storage else str(ctx.out / "onnx" / spec.trial_id),
        trial_id=spec.trial_id,
    )
    if weights != "trained":
        return SpeedSpec(**common)
    online = spec.param("online_dataset") or spec.dataset
    task = _online_task(spec, online, ctx.data_root) if online else {}
    dense = (functools.partial(_dense_speed_model, spec.dense_checkpoint, spec.arch)
             if spec.dense_checkpoint else None)
    return SpeedSpec(**common, load_model=functools.partial(_speed_model, spec),
                     dense_model=dense, **task)


def _online_task(spec: TrialSpec, name: str, data_root: str | None) -> dict[str, Any]:
    """What a backbone's online runs learn: the dataset's splits, classes and metric (the
    spec's, else the registry's), the recipe, epoch rule and augmentation of the study."""
    from search_spaces.recipe import PAPER_CROP_SCALE
    from trainables.datasets import dataset_info

    info = dataset_info(name, data_root)
    return dict(
        online_dataset=functools.partial(_raw_dataset, name, data_root, "train"),
        online_test=functools.partial(_raw_dataset, name, data_root, "test"),
        online_dataset_name=name,
        online_classes=spec.num_classes or info.classes,
        online_metric=spec.metric if spec.num_classes else info.metric,
        online_recipe=spec.recipe, online_epoch_selection=epoch_selection(spec),
        interpolation=spec.interpolation,
        online_crop_scale=tuple(spec.param("crop_scale", PAPER_CROP_SCALE)),
        online_hflip=info.hflip,
    )


def _speed_model(spec: TrialSpec) -> Any:
    """The trial's backbone as a model (the speed trial exports it to ONNX)."""
    from trainables.checkpoints import build_backbone_model

    return build_backbone_model(load_backbone(spec))


def _dense_speed_model(path: str, arch: str) -> Any:
    """The study's dense backbone: the speed trial's dense reference and online baseline."""
    from trainables.checkpoints import build_backbone_model, load_checkpoint

    return build_backbone_model(load_checkpoint(path, arch=arch, expect_sparsity=0))


def _raw_dataset(name: str, data_root: str | None, split: str) -> Any:
    """One split of a dataset, untransformed (the online runs add their own transforms)."""
    from trainables.datasets import build_dataset

    return build_dataset(name, data_root, split, None)
