"""Online linear finetuning of the speed trials: DataLoader workers, loader share, accuracy."""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from common import columns as C
from search_spaces.recipe import Recipe
from trainables import models
from trainables import speed as S
from trainables.datasets.transforms import eval_transform
from trainables.speed import trial as T
from trainables.speed.runtimes import deepsparse_features
from trainables.training.metrics import compute_metric

ARCH = "resnet_tiny"
RED, BLUE = 0, 1


class Colours(Dataset):
    """Plain red (colour 0) or blue (colour 1) images; ``labels`` default to the colours."""

    def __init__(self, colours: list[int], labels: list[int] | None = None) -> None:
        self.colours = list(colours)
        self.labels = list(colours if labels is None else labels)

    def __len__(self) -> int:
        return len(self.colours)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        rgb = (255, 0, 0) if self.colours[i] == RED else (0, 0, 255)
        return Image.new("RGB", (12, 12), rgb), self.labels[i]


class PidImages(Dataset):
    """Synthetic images; loading one leaves a file named by the loading process's pid."""

    def __init__(self, length: int, folder: Path) -> None:
        self.inner = S.SyntheticImages(length, 12, 2)
        self.folder = folder

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        (self.folder / str(os.getpid())).touch()
        return self.inner[i]


class SlowImages(Dataset):
    """Synthetic images that take ``delay`` seconds each to load."""

    def __init__(self, length: int, delay: float) -> None:
        self.inner, self.delay = S.SyntheticImages(length, 12, 2), delay

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        time.sleep(self.delay)
        return self.inner[i]


def mean_colour(x: torch.Tensor) -> torch.Tensor:
    """Features: each image's per-channel mean (red and blue lie far apart)."""
    return x.mean(dim=(2, 3))


def setup(**overrides) -> S.OnlineSetup:
    kwargs = dict(recipe=Recipe(epochs=1, lr=0.5, batch_size=4, milestones=()), image_size=8,
                  loader_workers=0, warmup_batches=0, num_cores=1)
    kwargs.update(overrides)
    return S.OnlineSetup(**kwargs)


@pytest.fixture(autouse=True)
def _quiet_worker_count():
    with warnings.catch_warnings():  # torch warns of more workers than this machine's cores
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.mark.parametrize("workers", [0, 2])
def test_the_loader_runs_in_as_many_worker_processes_as_set(tmp_path, workers):
    S.online_linear_run(mean_colour, PidImages(16, tmp_path), 2, setup(loader_workers=workers))
    pids = {int(p.name) for p in tmp_path.iterdir()}
    if workers == 0:
        assert pids == {os.getpid()}
    else:
        assert len(pids) == workers and os.getpid() not in pids


def test_loader_share_is_the_wait_over_the_epoch_time():
    assert S.loader_share(1.0, 4.0) == 0.25
    assert S.loader_share(0.0, 2.0) == 0.0
    assert np.isnan(S.loader_share(0.0, 0.0))

    def slow(n: int):
        for i in range(n):
            time.sleep(0.01)
            yield i

    wait = S.LoaderWait(slow(5))
    for _ in wait:
        time.sleep(0.01)  # the loop's own work is not waiting
    assert 0.05 <= wait.seconds < 0.09


def test_loader_share_of_a_slow_loader_by_hand():
    """12 batches of 4 images, 10 ms to load each image and 40 ms of backbone per batch:
    in the loop's process the loader takes about half of every batch (a little more: it also
    augments and collates); 2 workers load ahead while the backbone runs."""

    def backbone(x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.04)
        return mean_colour(x)

    data = SlowImages(48, delay=0.01)
    inline = S.online_linear_run(backbone, data, 2, setup())
    assert inline.epoch_batches == inline.timed_batches == 12 and not inline.extrapolated
    assert inline.loader_wait_s >= 48 * 0.01  # every image's sleep was waited for
    assert inline.seconds - inline.loader_wait_s >= 12 * 0.04  # and every backbone call
    assert inline.loader_share == pytest.approx(inline.loader_wait_s / inline.seconds)
    assert 0.4 < inline.loader_share < 0.65
    ahead = S.online_linear_run(backbone, data, 2, setup(loader_workers=2))
    assert 0.0 <= ahead.loader_share < inline.loader_share


def test_accuracy_is_the_trained_classifier_on_the_test_split():
    """Red is 0 and blue 1 in training; the test split holds two reds labelled 0, a blue
    labelled 1 and a blue labelled 0, so a classifier that learnt the colours scores top-1
    3 / 4 = 75 % and mean per class (2/3 + 1/1) / 2 = 83.3 %."""
    train = Colours([RED, BLUE] * 16)
    test = Colours([RED, RED, BLUE, BLUE], labels=[0, 0, 1, 0])
    for metric, expected in (("top1", 75.0), ("mean_per_class", 100 * (2 / 3 + 1) / 2)):
        run = S.online_linear_run(mean_colour, train, 2, setup(
            recipe=Recipe(epochs=2, lr=0.5, batch_size=4, milestones=()), metric=metric), test)
        assert run.accuracy == pytest.approx(expected)
        assert [h["epoch"] for h in run.history] == [1, 2] and run.epochs == 2
    no_test = S.online_linear_run(mean_colour, train, 2, setup())
    assert np.isnan(no_test.accuracy) and no_test.history == ()


def test_online_run_extrapolates_a_partial_epoch():
    data = S.SyntheticImages(length=20, side=36, num_classes=3)
    net = models.backbone(_model(), ARCH).eval()
    base = setup(recipe=Recipe(epochs=1, batch_size=8), image_size=32)
    part = S.online_linear_run(net, data, 3, S.OnlineSetup(**{**base.__dict__, "max_batches": 2}))
    assert part.epoch_batches == 3 and part.timed_batches == 2 and part.extrapolated
    # the first batch (the loader's start) once, then the steady pace for the other two
    first = part.seconds - 2 * part.median_batch_s
    assert 0 < first and part.loader_wait_s <= part.seconds
    whole = S.online_linear_run(net, data, 3, base)
    assert not whole.extrapolated and whole.timed_batches == 3


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.build_model(ARCH, 10).eval()


def test_speed_row_records_the_online_classifiers_test_accuracy(monkeypatch):
    """The row's online accuracy is what the sparse run's own head scores on the test split
    through the DeepSparse engine it trained on; dense and sparse load alike; the dense run
    is evaluated only on the dense backbone it was given."""
    calls = []

    def spy(features, dataset, classes, run_setup, test=None):
        run = S.online_linear_run(features, dataset, classes, run_setup, test)
        calls.append((features, run_setup, test, run))
        return run

    monkeypatch.setattr(T, "online_linear_run", spy)
    sparse = S.prune_random(_model(seed=3), 0.8, seed=0)
    spec = S.SpeedSpec(
        arch=ARCH, method="magnitude", sparsity=80, load_model=lambda: sparse,
        dense_model=lambda: _model(seed=3), batch=8,
        warmup=1, reps=2, num_cores=1, image_size=32, loader_workers=2,
        online_dataset=lambda: Colours([RED, BLUE] * 12),
        online_test=lambda: Colours([RED, RED, BLUE, BLUE], labels=[0, 0, 1, 0]),
        online_dataset_name="colours", online_classes=2, online_batches=None,
        online_recipe=Recipe(epochs=2, lr=0.1, milestones=()), online_epoch_selection="last",
    )
    row = S.speed_trial(spec)
    (engine, first, test, run), (_, second, _, dense) = calls[:2]
    assert first == second and first.loader_workers == 2 and first.recipe.epochs == 2
    assert all(c[1].loader_workers == 2 for c in calls) and len(calls) == 4  # + baselines
    x = torch.stack([eval_transform(32)(test[i][0]) for i in range(4)])
    x = torch.cat([x, x.new_zeros((4, *x.shape[1:]))])  # the engine's batch is 8
    pred = run.head(deepsparse_features(engine)(x)[:4].reshape(4, -1)).argmax(1).numpy()
    assert row[C.ONLINE_ACCURACY] == compute_metric("top1", pred, np.array([0, 0, 1, 0]), 2)
    assert row[C.ONLINE_ACCURACY] == run.accuracy
    assert row[C.DENSE_ONLINE_ACCURACY] == dense.accuracy
    assert row[C.ONLINE_ACCURACY_GAP] == pytest.approx(run.accuracy - dense.accuracy)
    assert row[C.LOADER_SHARE] == run.loader_share and row[C.LOADER_WORKERS] == 2
    assert 0 <= row[C.DENSE_LOADER_SHARE] <= 1 and row[C.ONLINE_EPOCHS] == 2
    calls.clear()
    row = S.speed_trial(dataclasses.replace(spec, dense_model=None, online_baselines=False))
    assert [c[2] is None for c in calls] == [False, True]  # random dense weights: no test
    assert np.isnan(row[C.DENSE_ONLINE_ACCURACY]) and np.isnan(row[C.ONLINE_ACCURACY_GAP])
