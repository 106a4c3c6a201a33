"""Pretraining: the tiny study's dense upstream models, trained on its procedural set.

One trial per architecture of a study with an ``upstream`` block (none for a study of given
checkpoints), each on one core, so a study of two architectures keeps two cores busy. Each
checkpoint is the zoo's dense model of its architecture, which the prune stage prunes and
every later stage reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common import columns as C
from orchestrator import capacity
from orchestrator.backbones import Backbone
from orchestrator.capacity import Alternatives, Node, Request
from orchestrator.stages.stage import Stage
from search_spaces.schema import Study, UpstreamSpec
from search_spaces.trial import TrialSpec
from trainables.entry.rehearsal import rehearse_upstream
from trainables.entry.upstream import run_pretrain

NAME = "pretrain"


def procedural_params(u: UpstreamSpec) -> tuple[tuple[str, object], ...]:
    """The procedural set's size, in the params of every trial that reads it."""
    return (("images_per_class", u.images_per_class),
            ("val_images_per_class", u.val_images_per_class))


def dense_trial(study: Study, arch: str) -> TrialSpec:
    """The pretraining trial of ``arch`` (its id is the dense checkpoint's hash in later
    trials)."""
    u = study.upstream
    assert u is not None
    return TrialSpec(
        stage=NAME, method="dense", sparsity=0, seed=u.seed, recipe=u.pretrain,
        params=procedural_params(u) + study.training.params(), arch=arch, dataset=u.dataset,
        num_classes=u.num_classes, metric="top1", image_size=study.image_size,
    )


def trials(study: Study, backbones: Sequence[Backbone], out_dir: str | Path) -> list[TrialSpec]:
    """One pretraining trial per architecture of a study with an upstream block; none
    otherwise."""
    return [dense_trial(study, a) for a in study.archs] if study.upstream is not None else []


def requests(study: Study, nodes: list[Node]) -> list[tuple[Request, Alternatives]]:
    """One CPU a trial (``stage.one_cpu`` says why)."""
    return capacity.one_cpu(f"{NAME} trials")


def resources_text(study: Study) -> dict[str, str]:
    """The dry run's line for the stage."""
    if study.upstream is None:
        return {}
    return {NAME: "1 CPU each (the dense upstream model of each architecture, tiny study)"}


STAGE = Stage(
    name=NAME, mode=C.MODE_UPSTREAM, trials=trials, entry=run_pretrain,
    rehearsal=rehearse_upstream, requests=requests, feeds_later=True,
    resources_text=resources_text,
)
