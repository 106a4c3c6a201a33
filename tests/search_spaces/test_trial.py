"""Trial identity: same config -> same id, in any process; any change -> a new id."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from search_spaces.recipe import Recipe
from search_spaces.trial import TrialSpec, from_dict, to_dict

SPEC = TrialSpec(stage="linear", method="gmp", sparsity=90, arch="resnet50", dataset="pets",
                 seed=21, recipe=Recipe(), num_classes=37, metric="mean_per_class",
                 group="specialized", checkpoint="/a/gmp_90.pth", checkpoint_hash="abc123",
                 params=(("k", (1, 2)),))


def test_id_is_stable_and_readable():
    assert SPEC.trial_id == dataclasses.replace(SPEC).trial_id
    assert SPEC.trial_id.startswith("linear-gmp-90-pets-s21-")


def test_id_same_in_another_process():
    code = ("from search_spaces.trial import TrialSpec; from search_spaces.recipe import Recipe;"
            "print(TrialSpec(stage='linear', method='gmp', sparsity=90, arch='resnet50',"
            "dataset='pets', seed=21, recipe=Recipe(), num_classes=37, metric='mean_per_class',"
            "group='specialized', checkpoint='/elsewhere/x.pth', checkpoint_hash='abc123',"
            "params=(('k', (1, 2)),)).trial_id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == SPEC.trial_id  # the path differs: not part of the id
    # A speed trial's dense baseline is a path too (its hash is a param).
    assert dataclasses.replace(SPEC, dense_checkpoint="/a/dense_0.pth").trial_id == SPEC.trial_id


def test_any_config_change_changes_the_id():
    changes = [dict(seed=51), dict(sparsity=95), dict(method="acdc"), dict(dataset="dtd"),
               dict(arch="resnet18"), dict(stage="full"), dict(checkpoint_hash="abc124"),
               dict(recipe=Recipe(lr=0.001)), dict(recipe=Recipe(epochs=149)),
               dict(params=(("k", (1, 3)),))]
    ids = {dataclasses.replace(SPEC, **c).trial_id for c in changes}
    assert len(ids) == len(changes) and SPEC.trial_id not in ids


def test_dict_round_trip():
    assert from_dict(to_dict(SPEC)) == SPEC
    assert from_dict(to_dict(SPEC)).trial_id == SPEC.trial_id
