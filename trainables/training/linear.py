"""Linear finetuning: a linear classifier trained on a frozen backbone's cached features.

The paper's recipe (docs/protocol.md): SGD with momentum 0.9, weight decay 5e-4, batch 64,
150 epochs, lr 0.01 divided by 10 at epochs 50 and 100, accuracy taken at the best epoch (and
the last). The features are small in-memory tensors, so batches are plain index slices of them: no
DataLoader, no worker processes, no per-sample Python.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from common.errors import BadInput
from search_spaces.recipe import Recipe
from trainables.training.engine import (
    FinetuneResult,
    check_finite_loss,
    epoch_record,
    predict,
    recipe_sgd,
    tensor_batches,
    train_one_epoch,
)
from trainables.training.metrics import compute_metric

FeatureArrays = tuple[np.ndarray, np.ndarray]
Reporter = Callable[[dict], None]

@dataclass
class LinearResult(FinetuneResult):
    """Outcome of one linear-finetuning run."""


def _as_tensors(
    split: FeatureArrays, what: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = split
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y)).long()
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"{what} must be (features N x D, labels N) with N > 0, "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return x.to(device), y.to(device)


def _seeded_linear(in_features: int, out_features: int, generator: torch.Generator) -> nn.Linear:
    """nn.Linear with its default (Kaiming-uniform) init drawn from ``generator``.

    Why not ``nn.Linear(...)``: its init reads the global RNG, so the head would depend on
    whatever ran before in the process instead of on the run's seed alone.
    """
    head = nn.Linear(in_features, out_features)
    with torch.no_grad():
        nn.init.kaiming_uniform_(head.weight, a=math.sqrt(5), generator=generator)
        bound = 1 / math.sqrt(in_features)
        head.bias.uniform_(-bound, bound, generator=generator)
    return head


def _checked_splits(train: FeatureArrays, test: FeatureArrays, num_classes: int,
                    device: torch.device) -> tuple[torch.Tensor, ...]:
    """Both splits as tensors on ``device``, of one feature width, labels in range."""
    x_train, y_train = _as_tensors(train, "train", device)
    x_test, y_test = _as_tensors(test, "test", device)
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"train has {x_train.shape[1]} features per sample, test {x_test.shape[1]}"
        )
    for name, y in (("train", y_train), ("test", y_test)):
        if int(y.min()) < 0 or int(y.max()) >= num_classes:
            raise BadInput(  # the study declares fewer classes than the data has
                f"{name} labels must lie in [0, {num_classes}), "
                f"got [{int(y.min())}, {int(y.max())}]"
            )
    return x_train, y_train, x_test, y_test


def linear_finetune(
    train: FeatureArrays,
    test: FeatureArrays,
    *,
    num_classes: int,
    metric: str,
    recipe: Recipe,
    seed: int,
    report: Reporter | None = None,
    device: str | torch.device = "cpu",
    epoch_selection: str = "metric",
) -> LinearResult:
    """Train a linear head on fixed features with the paper's SGD recipe.

    Args:
        train: ``(features N x D, labels N)`` of the training split.
        test: the same for the test split, evaluated after every epoch.
        num_classes: classes of the downstream dataset (the head's width).
        metric: ``"top1"`` or ``"mean_per_class"`` (the dataset's metric, percent).
        recipe: epochs, lr, momentum, weight decay, batch size, lr milestones and gamma.
        seed: seeds the head's init and the shuffling (any int, 0 included).
        report: called after every epoch with a dict of ``REPORT_KEYS``.
        device: where the head and the features live during training.
        epoch_selection: which epoch's accuracy is reported (``engine.EPOCH_SELECTIONS``: the
            best by top-1 as the reference code, by the dataset's metric, or the last).

    Returns:
        A LinearResult with the best and last accuracy, the per-epoch history and the time.

    Raises:
        FloatingPointError: the training loss became NaN or infinite (names the epoch).
        ValueError: malformed features or labels outside ``[0, num_classes)``.
    """
    device = torch.device(device)
    x_train, y_train, x_test, y_test = _checked_splits(train, test, num_classes, device)
    generator = torch.Generator().manual_seed(seed)
    head = _seeded_linear(x_train.shape[1], num_classes, generator).to(device)
    optimizer, scheduler = recipe_sgd(head.parameters(), recipe)

    history: list[dict] = []
    start = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        batches = tensor_batches(x_train, y_train, recipe.batch_size, generator)
        stats = train_one_epoch(head, optimizer, batches, device)
        scheduler.step()
        check_finite_loss(stats.loss, epoch)
        preds, targets = predict(head, [(x_test, y_test)], device)
        preds, targets = preds.cpu().numpy(), targets.cpu().numpy()
        accuracy = compute_metric(metric, preds, targets, num_classes)
        record = epoch_record(epoch, stats.loss, accuracy, history,
                              top1=compute_metric("top1", preds, targets, num_classes),
                              select=epoch_selection)
        history.append(record)
        if report is not None:
            report(dict(record))

    return LinearResult.from_history(history, time.perf_counter() - start)
