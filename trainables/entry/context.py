"""Where a trial's files live and how it may use its machine: typed, not a dict.

Why its own module: the orchestrator builds it (paths, the cluster's worker plan) and every
trial reads it; it crosses the Ray boundary as a plain dict (``as_dict`` / ``from_dict``) so
Tune's config stays JSON-like, and is typed again at once on the other side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.storage import join


def zoo_path(root: str | Path, arch: str, method: str, sparsity: int) -> str:
    """Where the tiny study's upstream stage writes one checkpoint of its zoo (the paper's
    checkpoint_dir layout) under the trials' root (the output folder, or ``--storage``'s URI):
    the grid names it, the pretrain and prune trials write it."""
    return join(root, "zoo", arch, f"{method}_{sparsity}.pth")


@dataclass(frozen=True)
class FullPlan:
    """How a full-finetuning trial trains: Ray Train workers, or in the trial's own process.

    ``in_trial``: one CPU worker and ``trainer: auto``, so there is nothing to distribute and
    a TorchTrainer's start-up (~20 s here) is skipped.
    """

    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    in_trial: bool = True
    start_timeout_s: float = 900.0  # modes.full.start_timeout_s: the worker group's wait


@dataclass(frozen=True)
class TrialContext:
    """What every trial needs to know about where things live (paths: not part of trial ids).

    Args:
        out_dir: the study's output folder (``--out``), the driver's.
        storage: where trials keep what outlives them when the nodes share no folder
            (``--storage``: a URI, the study's folder in it); None: under ``out_dir``.
        data_root: where downstream datasets are read from (None: built-in tasks only).
        threads: torch threads of the trial (its CPUs).
        full_plan: see ``FullPlan``.
        rehearsal: the trial is a rehearsal's stand-in (``trainables.entry.rehearsal``:
            synthetic numbers, no data, no torch; ``--rehearsal``).
    """

    out_dir: str
    storage: str | None = None
    data_root: str | None = None
    threads: int = 1
    full_plan: FullPlan = FullPlan()
    rehearsal: bool = False

    @property
    def out(self) -> Path:
        return Path(self.out_dir)

    @property
    def root(self) -> str:
        """Where trials keep their files (feature cache, zoo, Ray storage, full-finetuning
        state, dataset statistics): ``--storage``'s URI, else the output folder."""
        return self.storage or self.out_dir

    def location(self, *parts: str) -> str:
        """A file or folder under ``root`` (a local path or a URI)."""
        return join(self.root, *parts)

    def zoo_checkpoint(self, arch: str, method: str, sparsity: int) -> str:
        return zoo_path(self.root, arch, method, sparsity)

    def full_state_dir(self, trial_id: str) -> str:
        """Full-finetuning state of one trial (Ray Train storage ``name`` or the state file)."""
        return self.location("ray", "train", trial_id)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | TrialContext) -> TrialContext:
        if isinstance(d, TrialContext):
            return d
        d = dict(d)
        plan = d.pop("full_plan", None) or {}
        return cls(**d, full_plan=plan if isinstance(plan, FullPlan) else FullPlan(**plan))
