"""The stages of a study, in the order the sweep runs them: the one list of them.

Each stage is a module of this package declaring a ``Stage`` (``stages.stage``): its name,
its trials, its trial entry, its resource requests and how it runs. The order is the order
of dependency: ``pretrain`` and ``prune`` make the tiny study's zoo, ``checkpoint`` measures
every backbone, ``linear`` and ``full`` transfer it, ``speed`` times it.
"""

from __future__ import annotations

from common.errors import BadInput
from orchestrator.stages import checkpoint, full, linear, pretrain, prune, speed
from orchestrator.stages.stage import Stage

STAGES: tuple[Stage, ...] = (
    pretrain.STAGE, prune.STAGE, checkpoint.STAGE, linear.STAGE, full.STAGE, speed.STAGE,
)
ORDER: tuple[str, ...] = tuple(s.name for s in STAGES)
_BY_NAME = {s.name: s for s in STAGES}


def named(name: str) -> Stage:
    """The stage called ``name`` (a ``TrialSpec.stage``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise BadInput(f"stage {name!r} is not one of {', '.join(ORDER)}") from None


def mode_of(stage: str) -> str:
    """The results table's ``mode`` of a stage's rows (``pretrain`` and ``prune``:
    ``upstream``)."""
    return named(stage).mode
