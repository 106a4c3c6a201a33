"""What the two transfer stages (linear, full) share: a trial per backbone, dataset and seed.

A mode's settings enter a trial's params only where they differ from what the project did
before they were study keys, so trials that keep that behaviour keep their ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator.backbones import Backbone
from search_spaces.recipe import PAPER_CROP_SCALE, Recipe
from search_spaces.schema import DatasetSpec, ModeSpec, Study
from search_spaces.trial import TrialSpec

Params = tuple[tuple[str, object], ...]
# A mode's recipe and params for one dataset.
PerDataset = Callable[[ModeSpec, DatasetSpec], tuple[Recipe, Params]]


def protocol_params(mode: ModeSpec) -> Params:
    """A mode's normalisation and epoch rule as params, where they are not ImageNet mean/std
    and the best epoch by the dataset's metric."""
    params: Params = ()
    if mode.normalize != "imagenet":
        params += (("normalize", mode.normalize),)
    if mode.epoch_selection != "metric":
        params += (("epoch_selection", mode.epoch_selection),)
    return params


def augmentation_params(mode: ModeSpec) -> Params:
    """Full finetuning's augmentation as params, where it is not the paper's."""
    if mode.crop_scale == PAPER_CROP_SCALE:
        return ()
    return (("crop_scale", tuple(mode.crop_scale)),)


def study_mode(study: Study, name: str) -> ModeSpec | None:
    """The study's ``modes.<name>``, None when the study does not run that mode."""
    return next((m for m in study.modes if m.name == name), None)


def transfer_trials(study: Study, backbones: Sequence[Backbone], stage: str, mode_name: str,
                    per_dataset: PerDataset) -> list[TrialSpec]:
    """Every transferable backbone x dataset x seed of the study's ``modes.<mode_name>``."""
    mode = study_mode(study, mode_name)
    if mode is None:
        return []
    trials = []
    for b in backbones:
        if not b.transfer:
            continue
        for d in study.datasets:
            recipe, params = per_dataset(mode, d)
            for seed in mode.seeds_for(b.arch):
                trials.append(TrialSpec(
                    stage=stage, method=b.method, sparsity=b.sparsity, arch=b.arch,
                    dataset=d.name, seed=seed, recipe=recipe, num_classes=d.classes,
                    metric=d.metric, group=d.group, image_size=study.image_size,
                    interpolation=b.interpolation, checkpoint=b.checkpoint,
                    checkpoint_hash=b.checkpoint_hash, mask_checkpoint=b.mask_checkpoint,
                    mask_checkpoint_hash=b.mask_checkpoint_hash, params=params,
                ))
    return trials
