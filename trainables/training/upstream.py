"""Dense upstream pretraining on procedural images: the laptop study's "ImageNet training".

Why a plain loop: the paper starts every pruning method from one accurate dense ImageNet
model; here that model is trained once per study on ``trainables.datasets.procedural`` images
and then handed to each pruning method. No Ray here: the trial entry points wrap it.

Public API:
    ``pretrain(model, train_ds, val_ds, recipe, seed, device="cpu", report=None) -> dict``
    ``upstream_transforms(image_size)`` -> (train transform, eval transform)
    ``upstream_datasets(spec, n_train_per_class, n_val_per_class, seed)`` -> (train, val)
    ``DEFAULT_SPEC``, ``DEFAULT_RECIPE``, ``DEFAULT_TRAIN_PER_CLASS``, ``DEFAULT_VAL_PER_CLASS``
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler
from torchvision import transforms as T

from search_spaces.recipe import Recipe
from trainables.datasets.batched import AugmentedBatches, BatchAugment, TensorImages
from trainables.datasets.procedural import ProceduralImages, ProceduralSpec
from trainables.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from trainables.training.engine import (FP32, Precision, check_finite_loss, evaluate, place,
                                        train_one_epoch)

# Defaults sized for a 2-core laptop: 64 classes x 400 train images, six
# epochs with the lr cut 5x after epochs 4 and 5 -- 92 % val accuracy for resnet_tiny in about
# two minutes on one core (measured: 121 s training + 8 s generating the images).
DEFAULT_SPEC = ProceduralSpec()
DEFAULT_TRAIN_PER_CLASS = 400
DEFAULT_VAL_PER_CLASS = 30
DEFAULT_RECIPE = Recipe(
    epochs=6, lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=64, milestones=(4, 5), gamma=0.2
)

UPSTREAM_SCALE = (0.6, 1.0)
UPSTREAM_RATIO = (0.85, 1.18)

Report = Callable[[dict], None]


def upstream_transforms(image_size: int) -> tuple[Callable, Callable]:
    """(train, eval) transforms of upstream pretraining.

    Train: a mild random resized crop (scale 0.6-1: the paper's 0.08 would crop the single
    object away at 32 px; some zoom is needed because the eval transform zooms 1.16x into the
    centre) and a horizontal flip. Eval: the study's ``eval_transform``, so the
    upstream validation sees images exactly as downstream feature extraction does.
    """
    train = T.Compose(
        [
            T.RandomResizedCrop(image_size, scale=UPSTREAM_SCALE, ratio=UPSTREAM_RATIO,
                                antialias=True),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    return train, eval_transform(image_size)


def batch_augment(image_size: int) -> BatchAugment:
    """Pretraining's augmentation (``upstream_transforms``' train side) for whole batches."""
    return BatchAugment(image_size, UPSTREAM_SCALE, UPSTREAM_RATIO, hflip=True,
                        mean=IMAGENET_MEAN, std=IMAGENET_STD)


def upstream_datasets(
    spec: ProceduralSpec = DEFAULT_SPEC,
    n_train_per_class: int = DEFAULT_TRAIN_PER_CLASS,
    n_val_per_class: int = DEFAULT_VAL_PER_CLASS,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    augment: str = "image",
) -> tuple[ProceduralImages | TensorImages, ProceduralImages]:
    """The upstream train and val splits (disjoint random streams of the same family); with
    ``augment="batch"`` the train split is one tensor, augmented a batch at a time."""
    train_tf, eval_tf = upstream_transforms(spec.image_size)
    val = ProceduralImages(spec, "val", n_val_per_class, seed, eval_tf, cache_dir)
    if augment == "batch":
        raw = ProceduralImages(spec, "train", n_train_per_class, seed, None, cache_dir)
        images = torch.tensor(raw.images).permute(0, 3, 1, 2).contiguous()
        return (TensorImages(images, torch.tensor(raw.labels, dtype=torch.int64),
                             batch_augment(spec.image_size)), val)
    return ProceduralImages(spec, "train", n_train_per_class, seed, train_tf, cache_dir), val


def warmup_step_decay(step: int, steps_per_epoch: int, recipe: Recipe) -> float:
    """The lr factor of pretraining at ``step``: linear warm-up over the first 10 % of the first
    epoch (BatchNorm nets at lr 0.1 diverge without it), times ``recipe.gamma`` per milestone
    (in epochs) passed.
    """
    warmup = max(1, math.ceil(0.1 * steps_per_epoch))
    epoch = step // steps_per_epoch
    return recipe.gamma ** sum(epoch >= m for m in recipe.milestones) * min(
        1.0, (step + 1) / warmup)


def make_loader(ds: Dataset | TensorImages, batch_size: int, shuffle: bool,
                seed: int) -> DataLoader | AugmentedBatches:
    """A single-process loader (Ray trials already use every core) with a seeded shuffle; a
    split held as one tensor is augmented a batch at a time."""
    gen = torch.Generator().manual_seed(seed)
    if isinstance(ds, TensorImages):
        order = RandomSampler(ds, generator=gen) if shuffle else SequentialSampler(ds)
        return AugmentedBatches(ds, batch_size, order)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen, num_workers=0)


def pretrain(
    model: nn.Module, train_ds: Dataset | TensorImages, val_ds: Dataset, recipe: Recipe,
    seed: int, device: str | torch.device = "cpu", report: Report | None = None,
    precision: Precision = FP32,
) -> dict:
    """Train ``model`` densely on ``train_ds``; the upstream "ImageNet" model of the study.

    SGD with the recipe's momentum, weight decay and batch size; the learning rate follows
    ``warmup_step_decay`` (a per-step ``LambdaLR``).

    Args:
        model: the network, trained in place (moved to ``device``).
        train_ds, val_ds: datasets of ``(CHW float tensor, int label)``; the train split
            may be ``TensorImages`` (augmented a batch at a time).
        recipe: optimiser recipe (epochs, lr, momentum, weight_decay, batch_size, milestones).
        seed: seeds weights-independent randomness: shuffling, augmentation, dropout.
        device: torch device.
        report: called after every epoch with ``{"epoch", "train_loss", "val_accuracy",
            "seconds"}`` (epoch counts from 1).
        precision: the batches' layout (``engine.Precision``); the model is handed back in
            the default memory format whatever it trained in.

    Returns:
        ``{"train_loss", "val_accuracy", "epochs", "seconds", "history": [per-epoch dicts]}``.
    """
    torch.manual_seed(seed)
    dev = torch.device(device)
    place(model, dev, precision)
    train_loader = make_loader(train_ds, recipe.batch_size, True, seed)
    val_loader = make_loader(val_ds, 256, False, seed)
    opt = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        opt, functools.partial(warmup_step_decay, steps_per_epoch=len(train_loader),
                               recipe=recipe))
    history: list[dict] = []
    start = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        stats = train_one_epoch(model, opt, train_loader, dev, scheduler=scheduler,
                                precision=precision)
        check_finite_loss(stats.loss, epoch)
        row = {
            "epoch": epoch,
            "train_loss": stats.loss,
            "val_accuracy": evaluate(model, val_loader, dev, precision=precision),
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        if report is not None:
            report(dict(row))
    model.to(memory_format=torch.contiguous_format)
    last = history[-1]
    return {
        "train_loss": last["train_loss"],
        "val_accuracy": last["val_accuracy"],
        "epochs": recipe.epochs,
        "seconds": time.perf_counter() - start,
        "history": history,
    }
