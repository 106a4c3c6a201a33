"""linear_finetune: learns a separable problem, is seeded, reports per epoch, fails on NaN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces.recipe import Recipe
from trainables.training.engine import REPORT_KEYS
from trainables.training.linear import LinearResult, linear_finetune

RECIPE = Recipe(epochs=12, lr=0.05, batch_size=16, milestones=(8,), gamma=0.1)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread on a shared 2-core machine; restore after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _blobs(n_per_class: int, seed: int, classes: int = 3, dim: int = 8):
    """Well-separated Gaussian blobs: linearly separable with a wide margin."""
    rng = np.random.default_rng(seed)
    centers = np.eye(classes, dim) * 6.0
    x = np.concatenate([c + rng.standard_normal((n_per_class, dim)) * 0.5 for c in centers])
    y = np.repeat(np.arange(classes), n_per_class)
    return x.astype(np.float32), y.astype(np.int64)


TRAIN = _blobs(40, seed=0)
TEST = _blobs(20, seed=1)


def test_learns_a_separable_problem() -> None:
    reports: list[dict] = []
    result = linear_finetune(TRAIN, TEST, num_classes=3, metric="top1", recipe=RECIPE, seed=21,
                             report=reports.append)
    assert isinstance(result, LinearResult)
    assert result.accuracy_best == pytest.approx(100.0)
    assert result.accuracy_last >= 95.0
    assert 1 <= result.best_epoch <= RECIPE.epochs
    assert result.train_time_s > 0
    assert reports == result.history
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_reports_every_epoch_with_the_agreed_keys() -> None:
    reports: list[dict] = []
    result = linear_finetune(TRAIN, TEST, num_classes=3, metric="mean_per_class",
                             recipe=RECIPE, seed=0, report=reports.append)
    assert [r["epoch"] for r in reports] == list(range(1, RECIPE.epochs + 1))
    for r in reports:
        assert set(r) == set(REPORT_KEYS)
        assert r["accuracy_last"] == r["accuracy"]
        assert r["accuracy_best"] == max(x["accuracy"] for x in reports[: r["epoch"]])
        assert reports[r["best_epoch"] - 1]["accuracy"] == r["accuracy_best"]
    assert result.accuracy_best == reports[-1]["accuracy_best"]


def test_same_seed_same_history_other_seed_differs() -> None:
    def run(seed: int) -> list[dict]:
        return linear_finetune(TRAIN, TEST, num_classes=3, metric="top1", recipe=RECIPE,
                               seed=seed).history

    assert run(0) == run(0)  # seed 0 is a seed, not "no seed"
    assert [r["train_loss"] for r in run(0)] != [r["train_loss"] for r in run(1)]


def test_nan_loss_raises_with_the_epoch() -> None:
    x, y = TRAIN
    x = x.copy()
    x[3, 0] = np.nan
    with pytest.raises(FloatingPointError, match="epoch 1"):
        linear_finetune((x, y), TEST, num_classes=3, metric="top1", recipe=RECIPE, seed=0)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="labels must lie in"):
        linear_finetune(TRAIN, TEST, num_classes=2, metric="top1", recipe=RECIPE, seed=0)
    with pytest.raises(ValueError, match="features per sample"):
        linear_finetune(TRAIN, (TEST[0][:, :4], TEST[1]), num_classes=3, metric="top1",
                        recipe=RECIPE, seed=0)
