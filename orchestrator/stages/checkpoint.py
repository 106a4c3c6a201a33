"""A backbone's own trial before transfer: per-layer sparsity, fully pruned filters
(Appendix E) and its upstream validation accuracy (Table 3).

One trial per backbone, in every study. The tiny study's are evaluated on the procedural
validation split of its pretraining (the same params and seed); given checkpoints on
ImageNet's validation set (with ReaL labels and ImageNetV2) when the data root has it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from common import columns as C
from orchestrator import capacity
from orchestrator.backbones import Backbone
from orchestrator.capacity import Alternatives, Node, Request
from orchestrator.stages.pretrain import procedural_params
from orchestrator.stages.stage import Stage
from search_spaces.schema import Study
from search_spaces.trial import TrialSpec
from trainables.entry.checkpoint import run_checkpoint
from trainables.entry.rehearsal import rehearse_upstream

NAME = "checkpoint"
UPSTREAM_DATASET = "imagenet"  # what given checkpoints were trained on (Table 3's validation)


def trials(study: Study, backbones: Sequence[Backbone], out_dir: str | Path) -> list[TrialSpec]:
    """One trial per backbone, evaluated on its upstream set (the procedural one with the
    pretraining trial's params and seed, else ImageNet's validation set)."""
    u = study.upstream
    if u is not None:
        upstream = dict(dataset=u.dataset, num_classes=u.num_classes, seed=u.seed,
                        params=procedural_params(u))
    else:
        upstream = dict(dataset=UPSTREAM_DATASET, num_classes=1000, seed=0, params=())
    return [TrialSpec(
        stage=NAME, method=b.method, sparsity=b.sparsity, arch=b.arch,
        metric="top1", image_size=study.image_size, interpolation=b.interpolation,
        checkpoint=b.checkpoint, checkpoint_hash=b.checkpoint_hash,
        mask_checkpoint=b.mask_checkpoint, mask_checkpoint_hash=b.mask_checkpoint_hash,
        **upstream,
    ) for b in backbones]


def resources(study: Study, res: Mapping[str, float]) -> dict[str, float]:
    """One CPU; for given checkpoints (ImageNet's 50,000 validation images each) a GPU too
    when the cluster has one."""
    if study.upstream is None and res.get("GPU", 0) >= 1:
        return {"cpu": 1, "gpu": 1}
    return {"cpu": 1}


def requests(study: Study, nodes: list[Node]) -> list[tuple[Request, Alternatives]]:
    """One CPU a trial (the GPU is taken only where the cluster has one)."""
    return capacity.one_cpu(f"{NAME} trials")


def resources_text(study: Study) -> dict[str, str]:
    """The dry run's line for the stage."""
    return {NAME: "1 CPU each (a GPU when the node has one): statistics and upstream "
                  "accuracy of every backbone"}


STAGE = Stage(
    name=NAME, mode=C.MODE_CHECKPOINT, trials=trials, entry=run_checkpoint,
    rehearsal=rehearse_upstream, resources=resources, requests=requests, reuse_actors=True,
    resources_text=resources_text,
)
