"""One trial of a study and its stable identity.

The id is a hash of everything that changes the trial's outcome (stage, method, sparsity,
architecture, dataset, seed, recipe, extra parameters, checkpoint content hash) and of
nothing machine-specific (paths), so the same config gets the same id on every machine and
a resumed sweep recognises finished work; any change of config gives a new id. The stages
themselves (their names, order and what their rows measure) are the orchestrator's
(``orchestrator.stages``); here a stage is a name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from search_spaces.recipe import Recipe


@dataclass(frozen=True)
class TrialSpec:
    """Everything one trial needs, as plain values (it travels to Ray workers as a dict)."""

    stage: str
    method: str
    sparsity: int
    arch: str
    dataset: str
    seed: int
    recipe: Recipe | None = None
    num_classes: int = 0
    metric: str = "top1"
    group: str = ""
    image_size: int = 224
    interpolation: str = "bilinear"
    checkpoint: str | None = None  # a path: not part of the id
    checkpoint_hash: str | None = None  # file sha256, or the id of the trial that makes it
    mask_checkpoint: str | None = None  # LTH-T: the checkpoint whose mask is borrowed
    mask_checkpoint_hash: str | None = None
    params: tuple[tuple[str, Any], ...] = ()  # extra settings (pruning config, speed reps...)
    # speed: the dense baseline's checkpoint (a path; its hash is a param)
    dense_checkpoint: str | None = None

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    def identity(self) -> dict[str, Any]:
        """The fields that define the trial's outcome (paths excluded)."""
        d = to_dict(self)
        for k in ("checkpoint", "mask_checkpoint", "dense_checkpoint"):
            d.pop(k)
        return d

    @property
    def trial_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
        ds = self.dataset.replace(":", "_").replace("/", "_")[-24:]
        return f"{self.stage}-{self.method}-{self.sparsity}-{ds}-s{self.seed}-{digest}"


def to_dict(spec: TrialSpec) -> dict[str, Any]:
    """JSON-safe dict (the Tune config of the trial)."""
    d = dataclasses.asdict(spec)
    if spec.recipe is not None:
        d["recipe"]["milestones"] = list(spec.recipe.milestones)
    d["params"] = [[k, _jsonable(v)] for k, v in spec.params]
    return d


def from_dict(d: dict[str, Any]) -> TrialSpec:
    d = dict(d)
    if d.get("recipe") is not None:
        r = dict(d["recipe"])
        r["milestones"] = tuple(r["milestones"])
        d["recipe"] = Recipe(**r)
    d["params"] = tuple((k, _frozen(v)) for k, v in d.get("params", ()))
    return TrialSpec(**d)


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def _frozen(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_frozen(x) for x in v)
    return v
