"""Speed: each backbone timed with DeepSparse on a speed node, and its online runs trained
there (Figure 4); random-weight ResNet50 at the study's random sparsities (the paper's speed
setting).

The trials do not run in Ray Tune: the actor pool (``orchestrator.speed_pool``) runs them,
one at a time per node with ``{"speed_node": 1}``, all its CPUs, so timings do not share
cores; it picks its nodes and says when there are none. ``--no-speed`` skips the stage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from common import columns as C
from orchestrator.backbones import Backbone
from orchestrator.options import SweepOptions
from orchestrator.stages.stage import ACTOR_POOL, Stage
from orchestrator.stages.transfer import augmentation_params, study_mode
from search_spaces.recipe import Recipe
from search_spaces.schema import Study
from search_spaces.trial import TrialSpec
from trainables.entry.rehearsal import rehearse_speed
from trainables.entry.speed import speed_spec_from

NAME = "speed"
Params = tuple[tuple[str, object], ...]


def online_recipe(study: Study) -> Recipe:
    """The online runs' recipe: the linear mode's (the paper's without one) for
    ``speed.online_epochs`` epochs at the speed trials' largest batch."""
    linear = study_mode(study, C.MODE_LINEAR)
    recipe = linear.recipe if linear is not None else Recipe()
    return dataclasses.replace(recipe, epochs=study.speed.online_epochs,
                               batch_size=max(study.speed.batch_sizes))


def online_protocol(study: Study) -> Params:
    """The online runs' epoch rule (the linear mode's) and augmentation (the full mode's), as
    params only where they differ from the defaults (``transfer.protocol_params``,
    ``transfer.augmentation_params``)."""
    params: Params = ()
    for mode in study.modes:
        if mode.name == C.MODE_LINEAR and mode.epoch_selection != "metric":
            params += (("epoch_selection", mode.epoch_selection),)
        if mode.name == C.MODE_FULL:
            params += augmentation_params(mode)
    return params


def _settings(study: Study) -> Params:
    """The study's speed settings, in every speed trial's params (so in its id)."""
    sp = study.speed
    return (("batch_sizes", sp.batch_sizes), ("warmup", sp.warmup), ("reps", sp.reps),
            ("online_dataset", sp.online_dataset), ("online_batches", sp.online_batches),
            ("loader_workers", sp.loader_workers))


def _backbone_trials(study: Study, backbones: Sequence[Backbone]) -> list[TrialSpec]:
    """Figure 4: per backbone and online dataset (params name it, so ids differ), a trial
    whose online runs train with ``online_recipe``, the arch's dense backbone as baseline."""
    sp, params = study.speed, _settings(study)
    online = sp.online_dataset or (study.datasets[0].name if study.datasets else "")
    onlines = sp.online_datasets or (online,)
    known = {d.name: d for d in study.datasets}  # others: classes and metric at run time
    dense = {b.arch: b for b in reversed(backbones) if b.sparsity == 0 and b.transfer}
    trials = []
    for b in (b for b in backbones if b.transfer):
        for name in onlines:
            each = params if not sp.online_datasets else tuple(
                (k, name if k == "online_dataset" else v) for k, v in params)
            d, base = known.get(name), dense.get(b.arch)
            baseline = (("dense_checkpoint_hash", base.checkpoint_hash),) if base else ()
            trials.append(TrialSpec(
                stage=NAME, method=b.method, sparsity=b.sparsity, arch=b.arch,
                dataset=name, seed=0, recipe=online_recipe(study),
                num_classes=d.classes if d else 0, metric=d.metric if d else "top1",
                image_size=study.image_size, interpolation=b.interpolation,
                checkpoint=b.checkpoint, checkpoint_hash=b.checkpoint_hash,
                mask_checkpoint=b.mask_checkpoint, mask_checkpoint_hash=b.mask_checkpoint_hash,
                dense_checkpoint=base.checkpoint if base else None,
                params=each + online_protocol(study) + baseline + (("weights", "trained"),),
            ))
    return trials


def _random_trials(study: Study) -> list[TrialSpec]:
    """Per random sparsity, a timing-only trial (no recipe: its online epoch reads synthetic
    224 px images); each times its dense references side by side, so no dense trial."""
    sp = study.speed
    timing = tuple((k, sp.random_online_batches if k == "online_batches" else v)
                   for k, v in _settings(study))
    return [TrialSpec(
        stage=NAME, method=f"random_{sp.random_profile}", sparsity=s, arch=sp.random_arch,
        dataset="synthetic", seed=0, image_size=224,
        params=timing + (("weights", "random"), ("profile", sp.random_profile)),
    ) for s in sorted(set(sp.random_sparsities) - {0})]


def trials(study: Study, backbones: Sequence[Backbone], out_dir: str | Path) -> list[TrialSpec]:
    """The backbones' trials, then the random-weight ones, as the study's ``speed`` says."""
    if not study.speed.enabled:
        return []
    found = _backbone_trials(study, backbones) if study.speed.backbones else []
    return found + (_random_trials(study) if study.speed.random_arch else [])


def enabled(options: SweepOptions) -> bool:
    """Not under ``--no-speed``."""
    return options.speed


def resources_text(study: Study) -> dict[str, str]:
    """The dry run's line for the stage."""
    if not study.speed.enabled:
        return {}
    return {NAME: 'one DeepSparse actor per node with {"speed_node": 1}, all its CPUs'}


STAGE = Stage(
    name=NAME, mode=C.MODE_SPEED, trials=trials, entry=speed_spec_from,
    rehearsal=rehearse_speed, runs_on=ACTOR_POOL, enabled=enabled,
    resources_text=resources_text,
)
