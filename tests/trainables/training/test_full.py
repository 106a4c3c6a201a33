"""full_finetune: the mask holds, the classifier is dense, resume replays, the in-trial path
saves and resumes (Ray Train's path: ``tests/trainables/entry/test_ray_train.py``)."""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from search_spaces.recipe import Recipe
from trainables.training.full import (
    STATE_FILE,
    FullRun,
    FixedMask,
    FullResult,
    full_finetune,
    run_full_finetune_in_trial,
)
from trainables.datasets.batched import BatchAugment, TensorImages
from trainables.training.engine import REPORT_KEYS, Precision
from trainables.models.masks import count_zeros, global_sparsity, masks_of, prunable_names
from trainables.models import build_model, replace_classifier

ARCH = "resnet_tiny"
RECIPE = Recipe(epochs=2, lr=0.01, batch_size=16, milestones=(1,), gamma=0.1)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread on a shared 2-core machine; restore after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sparse_model(seed: int = 0, target: float = 0.8, num_classes: int = 3):
    """resnet_tiny pruned globally by magnitude to ``target`` (fraction), new 3-way head."""
    torch.manual_seed(seed)
    model = build_model(ARCH, num_classes=10)
    names = prunable_names(model, exclude=["fc"])
    params = dict(model.named_parameters())
    magnitudes = torch.cat([params[n].detach().abs().flatten() for n in names])
    threshold = magnitudes.kthvalue(int(target * magnitudes.numel())).values
    with torch.no_grad():
        for n in names:
            params[n].mul_(params[n].abs() > threshold)
    replace_classifier(model, ARCH, num_classes)
    return model, masks_of(model, exclude=["fc"])


def toy_data(seed: int = 0, n_train: int = 48, n_test: int = 24):
    g = torch.Generator().manual_seed(seed)
    def split(n: int) -> TensorDataset:
        return TensorDataset(torch.randn(n, 3, 32, 32, generator=g), torch.arange(n) % 3)
    return split(n_train), split(n_test)


def _zeros(model) -> int:
    names = prunable_names(model, exclude=["fc"])
    return count_zeros(dict(model.named_parameters()), names)[0]


def test_batch_augmented_nhwc_training_keeps_the_mask_and_replays_per_seed() -> None:
    """``training: {augment: batch, channels_last: true}``: a uint8 split in memory,
    augmented a batch at a time, NHWC weights; the zeros stay, the same seed gives the same
    run."""
    images = torch.randint(0, 256, (40, 3, 36, 36), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    train = TensorImages(images, torch.arange(40) % 3, BatchAugment(32, (0.6, 1.0)))
    _, test = toy_data()
    runs = []
    for _ in range(2):
        model, masks = sparse_model()
        zeros_before = _zeros(model)
        runs.append(full_finetune(model, masks, train, test, arch=ARCH, num_classes=3,
                                  metric="top1", recipe=RECIPE, seed=0,
                                  precision=Precision(channels_last=True)))
        assert _zeros(model) == zeros_before == runs[-1].masked_zeros
        assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert [h["train_loss"] for h in runs[0].history] == [h["train_loss"]
                                                        for h in runs[1].history]


def test_mask_holds_and_classifier_stays_dense() -> None:
    model, masks = sparse_model()
    assert global_sparsity(model, exclude=["fc"]) == pytest.approx(0.8, abs=0.01)
    zeros_before = _zeros(model)
    train, test = toy_data()
    reports: list[dict] = []
    result = full_finetune(model, masks, train, test, arch=ARCH, num_classes=3, metric="top1",
                           recipe=RECIPE, seed=0, report=reports.append)
    assert isinstance(result, FullResult)
    assert _zeros(model) == zeros_before == result.masked_zeros
    assert int((model.fc.weight == 0).sum()) == 0
    assert [r["epoch"] for r in reports] == [1, 2]
    assert set(reports[0]) == set(REPORT_KEYS)
    assert set(reports[-1]) == set(REPORT_KEYS) | {"masked_zeros", "masked_total"}
    assert result.history == reports
    # the kept weights did train
    fresh, _ = sparse_model()
    assert not torch.equal(fresh.layer1[0].conv1.weight, model.layer1[0].conv1.weight)


def test_resume_from_a_mid_run_state_replays_the_same_run() -> None:
    train, test = toy_data()
    model, masks = sparse_model()
    initial = copy.deepcopy(model)
    saved: dict[int, dict] = {}
    full = full_finetune(model, masks, train, test, arch=ARCH, num_classes=3, metric="top1",
                         recipe=RECIPE, seed=5,
                         checkpoint_fn=lambda e, b: saved.__setitem__(e, copy.deepcopy(b)))
    assert sorted(saved) == [1, 2]

    resumed_model = initial
    resumed = full_finetune(resumed_model, masks, train, test, arch=ARCH, num_classes=3,
                            metric="top1", recipe=RECIPE, seed=5, state=saved[1], start_epoch=1)
    assert resumed.history == full.history
    for (name, a), b in zip(model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_freeze_bn_keeps_batchnorm_fixed() -> None:
    model, masks = sparse_model()
    before = {k: v.clone() for k, v in model.state_dict().items() if "bn" in k}
    train, test = toy_data(n_train=16, n_test=8)
    full_finetune(model, masks, train, test, arch=ARCH, num_classes=3, metric="top1",
                  recipe=Recipe(epochs=1, batch_size=16, milestones=()), seed=0, freeze_bn=True)
    after = model.state_dict()
    assert before and all(torch.equal(v, after[k]) for k, v in before.items())


def test_nan_loss_raises_with_the_epoch() -> None:
    model, masks = sparse_model()
    train, test = toy_data(n_train=16, n_test=8)
    train.tensors[0][0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="epoch 1"):
        full_finetune(model, masks, train, test, arch=ARCH, num_classes=3, metric="top1",
                      recipe=Recipe(epochs=1, batch_size=16, milestones=()), seed=0)


def test_masks_must_not_cover_the_classifier() -> None:
    model, _ = sparse_model()
    train, test = toy_data(n_train=16, n_test=8)
    with pytest.raises(ValueError, match="classifier"):
        full_finetune(model, masks_of(model), train, test, arch=ARCH, num_classes=3,
                      metric="top1", recipe=RECIPE, seed=0)


def test_fixed_mask_detects_a_broken_mask() -> None:
    model, masks = sparse_model()
    fixed = FixedMask(model, masks)
    assert fixed.violations() == 0
    with torch.no_grad():
        model.conv1.weight.add_(1.0)
    assert fixed.violations() > 0
    fixed.apply()
    assert fixed.violations() == 0


# --- A run's parts, built on every worker --------------------------------------------------


def _build(seed: int, data_seed: int | None = None):
    """Everything a worker needs; module-level so Ray can pickle it by reference."""
    model, masks = sparse_model(seed=seed)
    train, test = toy_data(seed=seed if data_seed is None else data_seed, n_train=32, n_test=16)
    return model, masks, train, test


def test_in_trial_path_saves_every_epoch_and_resumes_from_its_state_file(tmp_path: Path) -> None:
    zeros_before = _zeros(_build(4)[0])
    state_file = tmp_path / "full-x" / STATE_FILE
    reports: list[dict] = []
    config = FullRun(build=functools.partial(_build, 4), arch=ARCH, num_classes=3,
                     metric="top1", seed=4,
                     recipe=Recipe(epochs=1, lr=0.01, batch_size=16, milestones=()))
    first = run_full_finetune_in_trial(config, state_file=state_file, report=reports.append)
    assert [r["epoch"] for r in reports] == [1] and first.masked_zeros == zeros_before
    assert torch.load(state_file, weights_only=False)["epoch"] == 1
    assert not list(state_file.parent.glob(".*tmp*"))

    # Other data in the second run proves it resumed: a fresh run would redo epoch 1.
    config = dataclasses.replace(config, build=functools.partial(_build, 4, data_seed=99),
                                 recipe=Recipe(epochs=2, lr=0.01, batch_size=16, milestones=()))
    second = run_full_finetune_in_trial(config, state_file=state_file, report=reports.append)
    assert [r["epoch"] for r in reports] == [1, 2]
    assert second.history[0] == first.history[0]
    assert second.masked_zeros == zeros_before


def test_in_trial_state_in_cloud_storage_resumes_the_same_way(s3_bucket) -> None:
    """Under --storage the state file is an object (``s3://.../ray/train/<trial id>/...``)."""
    from common import storage

    state_file = f"s3://bucket/study/ray/train/full-x/{STATE_FILE}"
    config = FullRun(build=functools.partial(_build, 4), arch=ARCH, num_classes=3,
                     metric="top1", seed=4,
                     recipe=Recipe(epochs=1, lr=0.01, batch_size=16, milestones=()))
    first = run_full_finetune_in_trial(config, state_file=state_file)
    assert storage.exists(state_file)
    config = dataclasses.replace(config, build=functools.partial(_build, 4, data_seed=99),
                                 recipe=Recipe(epochs=2, lr=0.01, batch_size=16, milestones=()))
    second = run_full_finetune_in_trial(config, state_file=state_file)
    assert [r["epoch"] for r in second.history] == [1, 2]
    assert second.history[0] == first.history[0]  # epoch 1 was loaded, not trained again


def test_in_trial_path_starts_over_on_an_unreadable_state(tmp_path: Path) -> None:
    state_file = tmp_path / STATE_FILE
    state_file.write_bytes(b"torn")
    config = FullRun(build=functools.partial(_build, 4), arch=ARCH, num_classes=3,
                     metric="top1", seed=4,
                     recipe=Recipe(epochs=1, lr=0.01, batch_size=16, milestones=()))
    result = run_full_finetune_in_trial(config, state_file=state_file)
    assert [r["epoch"] for r in result.history] == [1]
