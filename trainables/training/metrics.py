"""Accuracy metrics of the study, in percent (0-100), by the names configs use.

Why two: the paper reports plain top-1 accuracy for most datasets and mean per-class accuracy
for the ones whose test sets are unbalanced or tiny per class (Aircraft, Caltech-101/256,
Flowers, Pets); ``datasets.dataset_info(name).metric`` says which one a dataset uses.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np
import torch

from trainables.registry import Registry

ArrayLike = Union[np.ndarray, torch.Tensor, list, tuple]
MetricFn = Callable[[ArrayLike, ArrayLike, int], float]

METRICS: Registry[MetricFn] = Registry("metric")


def _as_labels(values: ArrayLike, what: str) -> np.ndarray:
    """Integer class labels as a 1-D numpy array; (N, C) scores become their argmax."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim == 2:
        arr = arr.argmax(axis=1)
    if arr.ndim != 1:
        raise ValueError(
            f"{what} must be 1-D class labels or 2-D (N, classes) scores, got shape {arr.shape}"
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{what} must hold integer class labels, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    return arr.astype(np.int64, copy=False)


def _checked(preds: ArrayLike, targets: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = _as_labels(preds, "preds")
    t = _as_labels(targets, "targets")
    if p.shape != t.shape:
        raise ValueError(f"preds and targets differ in length: {p.shape[0]} vs {t.shape[0]}")
    if t.size == 0:
        raise ValueError("cannot compute an accuracy over zero samples")
    return p, t


def top1_accuracy(preds: ArrayLike, targets: ArrayLike) -> float:
    """Share of samples whose predicted class is the target, in percent.

    Args:
        preds: predicted labels (N,) or scores/logits (N, classes), numpy or torch.
        targets: true labels (N,).
    """
    p, t = _checked(preds, targets)
    return float((p == t).mean() * 100.0)


def mean_per_class_accuracy(preds: ArrayLike, targets: ArrayLike, num_classes: int) -> float:
    """Accuracy of each class over its own test samples, averaged over the classes present.

    This is the paper's metric for Aircraft, Caltech-101/256, Flowers and Pets: a class with
    few test images weighs as much as a large one. Classes absent from ``targets`` are left
    out of the average (their accuracy is undefined), not counted as zero.

    Args:
        preds: predicted labels (N,) or scores/logits (N, classes), numpy or torch.
        targets: true labels (N,), each in ``[0, num_classes)``.
        num_classes: the dataset's number of classes.
    """
    p, t = _checked(preds, targets)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if t.min() < 0 or t.max() >= num_classes:
        raise ValueError(
            f"targets must lie in [0, {num_classes}), got range [{t.min()}, {t.max()}]"
        )
    per_class_total = np.bincount(t, minlength=num_classes)
    per_class_correct = np.bincount(t[p == t], minlength=num_classes)
    present = per_class_total > 0
    return float((per_class_correct[present] / per_class_total[present]).mean() * 100.0)


METRICS.register("top1", description="top-1 accuracy, percent")(
    lambda preds, targets, num_classes: top1_accuracy(preds, targets)
)
METRICS.register("mean_per_class", description="mean per-class accuracy, percent")(
    mean_per_class_accuracy
)


def compute_metric(name: str, preds: ArrayLike, targets: ArrayLike, num_classes: int) -> float:
    """The metric ``name`` ("top1" or "mean_per_class") of ``preds`` against ``targets``, in %.

    Raises:
        ValueError: unknown metric name (the message lists the valid ones) or bad inputs.
    """
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRICS.names())}")
    return METRICS.get(name).fn(preds, targets, num_classes)
