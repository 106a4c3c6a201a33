"""The one training engine: ``train_one_epoch`` and ``evaluate``, as torchvision's references.

Every loop of the study (upstream pretraining, the pruning methods, STR's thresholds, linear
and full finetuning, the online epoch of the speed trials) is "SGD over some batches, with
something done around each step" and differs only in that something. So the step lives here
once, with its device placement, non-blocking transfer, ``channels_last`` and optional mixed
precision (off by default, as in the paper), and the loops pass hooks:

- ``before_step(loss)``: after ``backward``, before ``optimizer.step`` (the gradients are
  there): WoodFisher's and RigL's mask updates, STR's threshold decay, zeroing the gradient of
  pruned weights.
- ``after_step()``: after ``optimizer.step`` (and the per-step scheduler): re-applying a fixed
  mask, a second optimizer. Returning True ends the loop early (STR, once on target).
- ``forward(model, images)``: how logits are computed, for STR's soft-thresholded weights.
- ``train_mode(model)``: puts the model in training mode at the start (default
  ``model.train()``); full finetuning with frozen BatchNorm keeps those layers in eval mode.

Learning-rate schedules are torch's own (``torch.optim.lr_scheduler``): the caller steps an
epoch-level scheduler itself; a per-step one is passed as ``scheduler`` and stepped here.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.errors import Diverged
from search_spaces.recipe import Recipe
from trainables.training.metrics import compute_metric

Batch = tuple[torch.Tensor, torch.Tensor]
Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Forward = Callable[[nn.Module, torch.Tensor], torch.Tensor]


#: Keys of the dict reported after every epoch, by linear and full finetuning alike.
#: ``accuracy`` is the dataset's metric, ``top1`` plain top-1 (the same where the metric is top-1).
REPORT_KEYS = ("epoch", "train_loss", "accuracy", "top1", "accuracy_best", "best_epoch",
               "accuracy_last")
#: Which epoch a run reports (``epoch_record``'s ``select``): the best by top-1 (the reference
#: code's rule), the best by the dataset's metric, or the last.
EPOCH_SELECTIONS = ("top1", "metric", "last")


@dataclass(frozen=True)
class Hooks:
    """What a loop does around each SGD step (see the module docstring)."""

    before_step: Callable[[torch.Tensor], None] | None = None
    after_step: Callable[[], bool | None] | None = None
    forward: Forward | None = None
    train_mode: Callable[[nn.Module], None] | None = None


@dataclass(frozen=True)
class Precision:
    """How batches reach the model: device layout and autocast.

    Args:
        channels_last: 4-D inputs (and the model, via ``place``) in NHWC memory format, which
            GPU convolutions and oneDNN prefer.
        amp: autocast the forward pass (bfloat16 on CPU, float16 with loss scaling on CUDA).
            Off by default: the paper trained in float32.
    """

    channels_last: bool = False
    amp: bool = False


FP32 = Precision()


@dataclass
class FinetuneResult:
    """Outcome of a finetuning run; accuracies in percent of the dataset's metric, the best
    epoch's (as the paper reports) and the last one's."""

    accuracy_best: float
    best_epoch: int
    accuracy_last: float
    history: list[dict] = field(default_factory=list)
    train_time_s: float = 0.0

    @classmethod
    def from_history(cls, history: list[dict], train_time_s: float, **extra: Any) -> Self:
        """The result that a run's per-epoch records (``epoch_record``) add up to."""
        last = history[-1]
        return cls(accuracy_best=last["accuracy_best"], best_epoch=last["best_epoch"],
                   accuracy_last=last["accuracy_last"], history=history,
                   train_time_s=train_time_s, **extra)


@dataclass
class EpochStats:
    """Sum of the per-sample training loss and the number of samples and steps."""

    loss_sum: float
    samples: int
    steps: int
    stopped: bool = False
    seconds: float = 0.0

    @property
    def loss(self) -> float:
        """Mean training loss per sample (nan for an empty epoch)."""
        return self.loss_sum / self.samples if self.samples else float("nan")


def place(model: nn.Module, device: torch.device | str, precision: Precision = FP32) -> nn.Module:
    """Move ``model`` to ``device`` (and to channels_last when asked), in place."""
    model.to(torch.device(device))
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def to_device(
    images: torch.Tensor, targets: torch.Tensor | int, device: torch.device,
    precision: Precision = FP32,
) -> Batch:
    """A batch on ``device``: non-blocking copies (pinned memory overlaps them with compute)."""
    images = images.to(device, non_blocking=True)
    if precision.channels_last and images.ndim == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, torch.as_tensor(targets).to(device, non_blocking=True).reshape(-1)


def _autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    if not precision.amp:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device | str, precision: Precision) -> torch.amp.GradScaler | None:
    """The loss scaler float16 training needs (None otherwise); keep one per run."""
    device = torch.device(device)
    if precision.amp and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch] | Iterator[Batch],
    device: torch.device | str,
    *,
    criterion: Criterion = F.cross_entropy,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    hooks: Hooks = Hooks(),
    steps: int | None = None,
    precision: Precision = FP32,
    scaler: torch.amp.GradScaler | None = None,
) -> EpochStats:
    """SGD over ``batches`` (or their first ``steps``), with the loop's hooks around each step.

    The model is put in train mode first (``hooks.train_mode`` may keep some modules in eval
    mode). The loss is summed on the device and read once at the end, so no step waits for
    the accelerator.

    Args:
        model: the network (or a DDP wrapper) whose parameters ``optimizer`` holds.
        optimizer: any torch optimizer.
        batches: ``(images, labels)`` pairs; an iterator is consumed only ``steps`` far.
        device: where the step runs; batches are copied there.
        criterion: ``criterion(logits, labels)``, a mean over the batch.
        scheduler: a per-step learning-rate scheduler, stepped after every optimizer step.
        hooks: see ``Hooks``.
        steps: stop after this many steps (None: when ``batches`` ends).
        precision: channels_last / autocast (see ``Precision``).
        scaler: the run's ``grad_scaler`` when training in float16.

    Returns:
        The epoch's ``EpochStats``; ``stopped`` is True when ``after_step`` ended it early.
    """
    device = torch.device(device)
    forward = hooks.forward or (lambda net, x: net(x))
    (hooks.train_mode or nn.Module.train)(model)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    samples = done = 0
    stopped = False
    start = time.perf_counter()
    it = iter(batches)
    while steps is None or done < steps:
        try:
            images, targets = next(it)
        except StopIteration:
            break
        images, targets = to_device(images, targets, device, precision)
        with _autocast(device, precision):
            loss = criterion(forward(model, images), targets)
        _step(loss, optimizer, scheduler, hooks, scaler)
        n = targets.numel()
        loss_sum += loss.detach().double() * n
        samples += n
        done += 1
        if hooks.after_step is not None and hooks.after_step():
            stopped = True
            break
    return EpochStats(loss_sum=float(loss_sum), samples=samples, steps=done, stopped=stopped,
                      seconds=time.perf_counter() - start)


def _step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
          scheduler: torch.optim.lr_scheduler.LRScheduler | None, hooks: Hooks,
          scaler: torch.amp.GradScaler | None) -> None:
    """One optimizer step from ``loss``: backward (scaled in float16), the loop's
    ``before_step`` hook on the gradients, the step, then the per-step scheduler."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if hooks.before_step is not None:
        hooks.before_step(loss)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    if scheduler is not None:
        scheduler.step()


def epoch_record(epoch: int, train_loss: float, accuracy: float, history: list[dict], *,
                 top1: float | None = None, select: str = "metric") -> dict:
    """The per-epoch report: this epoch's accuracy and the reported epoch's so far.

    Args:
        epoch: 1-based epoch just finished.
        train_loss: mean training loss over the epoch's samples.
        accuracy: this epoch's test accuracy in the dataset's metric, percent.
        history: the records of the epochs before this one.
        top1: this epoch's top-1 accuracy (None: the metric is top-1, the same number).
        select: which epoch is reported (``EPOCH_SELECTIONS``): ``"top1"`` the best by top-1,
            ``"metric"`` the best by ``accuracy``, first on ties; ``"last"`` this one.
            ``accuracy_best`` is the dataset's metric at that epoch either way.
    """
    record = {
        "epoch": epoch,
        "train_loss": train_loss,
        "accuracy": accuracy,
        "top1": accuracy if top1 is None else top1,
        "accuracy_last": accuracy,
    }
    chosen = selected_epoch([*history, record], select)
    record["accuracy_best"] = chosen["accuracy"]
    record["best_epoch"] = chosen["epoch"]
    return record


def selected_epoch(history: list[dict], select: str) -> dict:
    """The record of the epoch ``select`` picks (see ``epoch_record``) among ``history``."""
    if select not in EPOCH_SELECTIONS:
        raise ValueError(f"epoch selection {select!r} is not one of {', '.join(EPOCH_SELECTIONS)}")
    if not history:
        raise ValueError("no epochs to select from")
    if select == "last":
        return history[-1]
    key = "accuracy" if select == "metric" else "top1"
    best = history[0]
    for r in history[1:]:
        if r.get(key, r["accuracy"]) > best.get(key, best["accuracy"]):
            best = r
    return best


def check_finite_loss(loss: float, epoch: int) -> None:
    """Raise Diverged when a training loss diverged (the sweep marks it failed, no retries)."""
    if not math.isfinite(loss):
        raise Diverged(f"training loss is {loss} in epoch {epoch}: the run diverged")


@torch.inference_mode()
def predict(
    model: nn.Module,
    batches: Iterable[Batch],
    device: torch.device | str,
    *,
    precision: Precision = FP32,
    forward: Forward | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels over ``batches`` (the model in eval mode, left so)."""
    device = torch.device(device)
    forward = forward or (lambda net, x: net(x))
    model.eval()
    preds, targets = [], []
    for images, labels in batches:
        images, labels = to_device(images, labels, device, precision)
        with _autocast(device, precision):
            preds.append(forward(model, images).argmax(dim=1))
        targets.append(labels)
    if not preds:
        raise ValueError("evaluate() got no batches")
    return torch.cat(preds), torch.cat(targets)


def evaluate(
    model: nn.Module,
    batches: Iterable[Batch],
    device: torch.device | str,
    *,
    metric: str = "top1",
    num_classes: int | None = None,
    precision: Precision = FP32,
) -> float:
    """The ``metric`` (``"top1"`` or ``"mean_per_class"``, percent) of ``model`` on ``batches``."""
    pred, target = predict(model, batches, device, precision=precision)
    pred_np, target_np = pred.cpu().numpy(), target.cpu().numpy()
    classes = num_classes if num_classes is not None else int(np.max(target_np)) + 1
    return compute_metric(metric, pred_np, target_np, classes)


def recipe_sgd(
    params: Iterable[torch.nn.Parameter], recipe: Recipe
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.MultiStepLR]:
    """The paper's finetuning optimiser: SGD with momentum and weight decay, the lr divided at
    the recipe's milestones (an epoch-level scheduler: step it after each epoch).
    """
    optimizer = torch.optim.SGD(
        params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(recipe.milestones), gamma=recipe.gamma
    )
    return optimizer, scheduler


def cycle(batches: Iterable[Batch]) -> Iterator[Batch]:
    """Batches of a loader forever (a new shuffled pass each time): step-budgeted loops."""
    if hasattr(batches, "__len__") and len(batches) == 0:  # type: ignore[arg-type]
        raise ValueError("the train loader is empty")
    while True:
        yield from batches


def tensor_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[Batch]:
    """Shuffled index slices of in-memory tensors: batches without a DataLoader's overhead."""
    order = torch.randperm(x.shape[0], generator=generator).to(x.device)
    for i in range(0, x.shape[0], batch_size):
        idx = order[i : i + batch_size]
        yield x[idx], y[idx]
