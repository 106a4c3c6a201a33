"""Pruning: the tiny study's zoo, each dense model pruned by every method at its sparsities.

One trial per architecture, method (but the dense one and those that borrow a mask,
``mask_from``) and sparsity of that architecture, for a study with an ``upstream`` block. With the pretraining trial these make the
study's backbones (``zoo_backbones``): each sparse model, the dense one, and a ``mask_from``
method's backbone (another method's mask on the dense weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common import columns as C
from orchestrator import capacity
from orchestrator.backbones import Backbone
from orchestrator.capacity import Alternatives, Node, Request
from orchestrator.stages.pretrain import dense_trial, procedural_params
from orchestrator.stages.stage import Stage
from search_spaces.schema import MethodSpec, Study
from search_spaces.trial import TrialSpec
from trainables.entry.context import zoo_path
from trainables.entry.rehearsal import rehearse_upstream
from trainables.entry.upstream import run_prune

NAME = "prune"


def _prune_trials(study: Study, out_dir: str | Path) -> list[tuple[MethodSpec, TrialSpec]]:
    """Each pruning trial with its method, architecture by architecture: the study's
    ``upstream.prune`` settings, the method's own overrides on top."""
    u = study.upstream
    if u is None:
        return []
    overrides = dict(u.prune_overrides)
    found = []
    for arch in study.archs:
        dense = dense_trial(study, arch)
        for m in study.methods:
            if m.family == "dense" or m.mask_from:
                continue
            for s in m.sparsities_for(arch):
                cfg = tuple(sorted({**dict(u.prune), **dict(overrides.get(m.name, ()))}.items()))
                found.append((m, TrialSpec(
                    stage=NAME, method=m.name, sparsity=s, seed=u.seed, recipe=None,
                    checkpoint=str(zoo_path(out_dir, arch, "dense", 0)),
                    checkpoint_hash=dense.trial_id,
                    params=cfg + procedural_params(u) + study.training.params(),
                    arch=arch, dataset=u.dataset, num_classes=u.num_classes, metric="top1",
                    image_size=study.image_size,
                )))
    return found


def trials(study: Study, backbones: Sequence[Backbone], out_dir: str | Path) -> list[TrialSpec]:
    """One pruning trial per architecture, method and sparsity of a study with an upstream
    block."""
    return [t for _, t in _prune_trials(study, out_dir)]


def zoo_backbones(study: Study, out_dir: str | Path) -> list[Backbone]:
    """The zoo's backbones, architecture by architecture in the study's method order: the
    dense model, each pruned one, then each ``mask_from`` method's (its source's mask on the
    dense weights)."""
    if study.upstream is None:
        return []
    pruned = {(t.arch, m.name, t.sparsity): t for m, t in _prune_trials(study, out_dir)}
    return [b for arch in study.archs for b in _arch_backbones(study, arch, out_dir, pruned)]


def _arch_backbones(study: Study, arch: str, out_dir: str | Path,
                    pruned: dict[tuple[str, str, int], TrialSpec]) -> list[Backbone]:
    """One architecture's zoo backbones (``zoo_backbones``)."""
    dense_id = dense_trial(study, arch).trial_id
    dense_ckpt = str(zoo_path(out_dir, arch, "dense", 0))
    found = []
    for m in study.methods:
        if m.family == "dense":
            found.append(Backbone(arch, "dense", 0, dense_ckpt, dense_id))
        elif not m.mask_from:
            for s in m.sparsities_for(arch):
                found.append(Backbone(
                    arch, m.name, s, str(zoo_path(out_dir, arch, m.name, s)),
                    pruned[(arch, m.name, s)].trial_id, interpolation=m.interpolation,
                    transfer=m.transfer))
    for m in study.methods:
        if not m.mask_from:
            continue
        src = {(b.method, b.sparsity): b for b in found}
        for s in m.sparsities_for(arch):
            if (m.mask_from, s) not in src:
                raise ValueError(
                    f"methods.{m.name}: mask_from {m.mask_from!r} has no sparsity {s} for "
                    f"{arch}; it has {list(study.method(m.mask_from).sparsities_for(arch))}")
            b = src[(m.mask_from, s)]
            found.append(Backbone(arch, m.name, s, dense_ckpt, dense_id, b.checkpoint,
                                  b.checkpoint_hash, interpolation=m.interpolation,
                                  transfer=m.transfer))
    return found


def requests(study: Study, nodes: list[Node]) -> list[tuple[Request, Alternatives]]:
    """One CPU a trial (``stage.one_cpu`` says why)."""
    return capacity.one_cpu(f"{NAME} trials")


def resources_text(study: Study) -> dict[str, str]:
    """The dry run's line for the stage."""
    if study.upstream is None:
        return {}
    return {NAME: "1 CPU each (the upstream zoo's sparse models, tiny study)"}


STAGE = Stage(
    name=NAME, mode=C.MODE_UPSTREAM, trials=trials, entry=run_prune,
    rehearsal=rehearse_upstream, requests=requests, backbones=zoo_backbones, feeds_later=True,
    # a trial process's start (torch imports, the upstream set read) is seconds of a trial
    # of tens: the next trial reuses it (every trial seeds its own randomness)
    reuse_actors=True, resources_text=resources_text,
)
