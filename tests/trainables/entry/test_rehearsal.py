"""The rehearsal's stand-in trial: synthetic, deterministic, marked, paper-shaped."""

from __future__ import annotations

import math

from search_spaces.recipe import Recipe
from search_spaces.trial import TrialSpec
from common import columns as C
from trainables.entry.context import TrialContext
from trainables.entry.rehearsal import (rehearse_full, rehearse_linear, rehearse_speed,
                                        rehearse_upstream, synthetic_accuracy)
from trainables.entry.trial import run_trial

RECIPE = Recipe(epochs=150, lr=0.01)


def spec(stage="linear", method="dense", sparsity=0, seed=1, **kw) -> TrialSpec:
    kw.setdefault("recipe", RECIPE)
    return TrialSpec(stage=stage, method=method, sparsity=sparsity, arch="resnet50",
                     dataset="pets", seed=seed, num_classes=37, **kw)


def test_numbers_are_fixed_by_the_trial_id_and_shaped_like_the_paper():
    linear = C.MODE_LINEAR
    assert synthetic_accuracy(spec(), linear) == synthetic_accuracy(spec(), linear)
    assert synthetic_accuracy(spec(seed=1), linear) != synthetic_accuracy(spec(seed=2), linear)
    dense_l = synthetic_accuracy(spec(), linear)
    dense_f = synthetic_accuracy(spec(stage="full"), C.MODE_FULL)
    assert dense_f > dense_l  # full above linear
    assert synthetic_accuracy(spec(method="gmp", sparsity=98), linear) < dense_l - 2


def test_every_stage_returns_a_marked_result_with_the_reporting_contract():
    reports = []
    out = rehearse_linear(spec(), None, reports.append)
    assert out["rehearsal"] is True and 0 < out["accuracy"] <= 100
    assert [r["epoch"] for r in reports] == [1, 2, 3] and len(out["history"]) == 3
    speed = rehearse_speed(spec(stage="speed", method="gmp", sparsity=90, recipe=None,
                                params=(("batch_sizes", (1, 64)),)), None, reports.append)
    assert speed["rehearsal"] is True and speed["speedup_inference"] > 2
    assert math.isnan(speed["accuracy"]) and speed["batch"] == 64
    up = rehearse_upstream(spec(stage="prune", method="gmp", sparsity=90, recipe=None), None,
                           reports.append)
    assert up["rehearsal"] is True and up["sparsity_measured"] == 90.0


def test_run_trial_takes_the_rehearsal_path_without_any_file():
    """No checkpoint exists, no dataset either: a rehearsal trial still finishes."""
    s = spec(stage="full", method="gmp", sparsity=90, checkpoint="/nonexistent/gmp_90.pth")
    res = run_trial(rehearse_full, s, TrialContext(out_dir="/nonexistent", rehearsal=True),
                    lambda r: None)
    assert res["status"] == "finished" and res["rehearsal"] is True
    assert res["trainer"] == "rehearsal"
