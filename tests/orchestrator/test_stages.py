"""The stages: one module each, one ordered list, and nothing else that names them.

The grid, the capacity check and the sweep read the ``Stage`` records; these tests check the
records against what the sweep relies on (order, modes, the trials each builds, the trainable
Ray Tune gets), and that no other module spells a stage's name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from common import columns as C
from orchestrator import stages
from orchestrator.grid import expand
from orchestrator.options import SweepOptions
from orchestrator.stages import checkpoint, full, linear, pretrain, prune, speed
from orchestrator.stages.stage import ACTOR_POOL, TUNE
from search_spaces.loader import load_study

ROOT = Path(__file__).resolve().parents[2]
MODULES = (pretrain, prune, checkpoint, linear, full, speed)


def test_one_ordered_list_of_one_module_per_stage():
    assert stages.ORDER == ("pretrain", "prune", "checkpoint", "linear", "full", "speed")
    assert stages.STAGES == tuple(m.STAGE for m in MODULES)
    assert [m.NAME for m in MODULES] == list(stages.ORDER)
    assert stages.named("full") is full.STAGE
    with pytest.raises(ValueError, match="stage 'finetune' is not one of pretrain, prune"):
        stages.named("finetune")


def test_each_stage_says_what_its_rows_measure():
    modes = {s.name: stages.mode_of(s.name) for s in stages.STAGES}
    assert modes == {"pretrain": C.MODE_UPSTREAM, "prune": C.MODE_UPSTREAM,
                     "checkpoint": C.MODE_CHECKPOINT, "linear": C.MODE_LINEAR,
                     "full": C.MODE_FULL, "speed": C.MODE_SPEED}


def test_what_the_sweep_does_around_each_stage():
    by = {s.name: s for s in stages.STAGES}
    assert [s.name for s in stages.STAGES if s.feeds_later] == ["pretrain", "prune"]
    assert [s.name for s in stages.STAGES if s.writes_outputs] == ["linear", "full"]
    assert [s.name for s in stages.STAGES if s.tasks] == ["linear"]
    assert by["linear"].tasks.start_after == "prune"  # the features read only the zoo
    assert {s.name: s.runs_on for s in stages.STAGES} == {
        **{n: TUNE for n in stages.ORDER}, "speed": ACTOR_POOL}
    options = SweepOptions(out_dir=Path("x"))
    assert all(s.enabled(options) for s in stages.STAGES)
    no_speed = SweepOptions(out_dir=Path("x"), speed=False)
    assert [s.name for s in stages.STAGES if not s.enabled(no_speed)] == ["speed"]
    assert [n for n, s in by.items() if s.reuse_actors] == ["prune", "checkpoint", "linear",
                                                            "full"]


def test_every_stage_builds_its_own_trials_and_the_zoo_comes_from_prune(tmp_path):
    study = load_study("tiny")
    grid = expand(study, tmp_path, hash_files=False)
    for stage in stages.STAGES:
        trials = grid.stages[stage.name]
        assert trials and {t.stage for t in trials} == {stage.name}
    assert [b for s in stages.STAGES for b in s.backbones(study, tmp_path)] == grid.backbones
    # one pretraining trial per architecture, pruned by the methods of each
    assert [t.arch for t in grid.stages["pretrain"]] == list(study.archs) == [
        "resnet_tiny", "mobilenet_tiny"]
    assert {(t.arch, t.method) for t in grid.stages["prune"] if t.arch == "mobilenet_tiny"} == {
        ("mobilenet_tiny", m) for m in ("acdc", "str", "mfac")}
    # every backbone: one checkpoint trial; the prune trials' ids are the zoo's hashes
    assert len(grid.stages["checkpoint"]) == len(grid.backbones)
    made = {t.trial_id for t in grid.stages["pretrain"] + grid.stages["prune"]}
    assert {b.checkpoint_hash for b in grid.backbones} <= made
    paper = expand(load_study("paper"), tmp_path / "paper", hash_files=False)
    assert not paper.stages["pretrain"] and not paper.stages["prune"]


def test_the_training_block_reaches_every_training_trial_and_only_where_it_differs(tmp_path):
    """``training:`` is in the params (so the id) of pretrain, prune and full trials of the
    tiny study, which sets it; the paper study, which does not, keeps its ids."""
    grid = expand(load_study("tiny"), tmp_path, hash_files=False)
    for name in ("pretrain", "prune", "full"):
        for t in grid.stages[name]:
            assert t.param("augment") == "batch" and t.param("channels_last") is True, t
    for t in grid.stages["linear"] + grid.stages["checkpoint"]:
        assert t.param("augment") is None and t.param("channels_last") is None
    paper = expand(load_study("paper"), tmp_path / "paper", hash_files=False)
    assert not any(t.param("augment") or t.param("channels_last")
                   for trials in paper.stages.values() for t in trials)


def test_ray_tune_takes_every_entry_as_a_function_trainable_and_it_pickles():
    """The sweep gives Tune ``tune_trainable(entry)``: Tune must see a function of ``config``
    alone, and it must pickle by reference (it travels to the workers)."""
    cloudpickle = pytest.importorskip("ray.cloudpickle")
    from ray.tune.trainable import wrap_function

    from trainables.entry.trial import tune_trainable, tune_trial

    for stage in stages.STAGES:
        for entry in (stage.entry, stage.rehearsal):
            trainable = tune_trainable(entry)
            assert wrap_function(trainable)._name == entry.__name__
            again = cloudpickle.loads(cloudpickle.dumps(trainable))
            assert again.func is tune_trial and again.args == (entry,)
            assert again.__name__ == entry.__name__


# Strings that equal a stage's name but name something else: the feature cache's key field.
NOT_A_STAGE = {("trainables/entry/linear.py", "checkpoint")}


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module but its docstrings."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs]


def test_no_stage_name_is_written_outside_its_own_module():
    own = {ROOT / "orchestrator" / "stages" / f"{name}.py": name for name in stages.ORDER}
    found = []
    for folder in ("orchestrator", "trainables/entry", "trainables/training"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            for line, text in _string_constants(path):
                if (text in stages.ORDER and own.get(path) != text
                        and (rel, text) not in NOT_A_STAGE):
                    found.append(f"{rel}:{line}: {text!r}")
    assert not found
