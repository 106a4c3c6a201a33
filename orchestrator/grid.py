"""Expanding a study into trials, stage by stage, with stable ids.

First the study's backbones (the zoo its upstream stages write, or the checkpoint files it
names: ``orchestrator.backbones``), then each stage's trials in the order of
``orchestrator.stages.STAGES``, each stage building its own. Paths depend on the output
folder; ids do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.backbones import Backbone, FileHashes, given_backbones
from orchestrator.stages import ORDER, STAGES
from search_spaces.schema import Study
from search_spaces.trial import TrialSpec


@dataclass
class Grid:
    """A study's trials by stage name, and the backbones they start from."""

    study: Study
    out_dir: Path
    stages: dict[str, list[TrialSpec]] = field(default_factory=dict)
    backbones: list[Backbone] = field(default_factory=list)

    def all_trials(self) -> list[TrialSpec]:
        return [t for s in ORDER for t in self.stages.get(s, [])]


def backbones(study: Study, out_dir: str | Path, hashes: FileHashes) -> list[Backbone]:
    """The study's backbones: those its stages write (a study with an ``upstream`` block),
    else the checkpoint files it names."""
    if study.upstream is not None:
        return [b for stage in STAGES for b in stage.backbones(study, out_dir)]
    return given_backbones(study, hashes)


def expand(study: Study, out_dir: Path, hash_files: bool = True,
           root: str | None = None) -> Grid:
    """All trials of a study. ``hash_files=False`` (dry run) skips reading checkpoints.

    ``root`` is where the trials keep their files (``--storage``'s URI for the study); the
    stages name the zoo under it. None: the output folder, as without ``--storage``. The
    driver's own files (the checkpoint hashes) stay in ``out_dir`` either way.
    """
    hashes = FileHashes(out_dir / ".checkpoint_hashes.json" if hash_files else None, hash_files)
    where = root or out_dir
    grid = Grid(study=study, out_dir=out_dir, backbones=backbones(study, where, hashes))
    for stage in STAGES:
        grid.stages[stage.name] = stage.trials(study, grid.backbones, where)
    return grid
