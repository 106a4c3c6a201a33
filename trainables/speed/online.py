"""The paper's online linear-finetuning epoch, timed: augment, compute features, one SGD step.

Features are computed on the fly from augmented images (nothing cached), so the epoch's time
shows what a sparse backbone saves in a training loop, data loading included.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from trainables.engine import Hooks, cycle, train_one_epoch
from trainables.speed.runtimes import deepsparse_features, torch_threads
from trainables.transforms import train_transform

# Head trained during the online epoch; its width does not change the backbone's cost.
ONLINE_NUM_CLASSES = 100


class SyntheticImages(Dataset):
    """``length`` random RGB PIL images of ``side`` px with random labels, drawn per index.

    Stands in for a decoded dataset when timing the online epoch: augmentation cost depends
    on image size, not content.
    """

    def __init__(self, length: int, side: int, num_classes: int, seed: int = 0) -> None:
        if length < 1 or side < 1 or num_classes < 1:
            raise ValueError(
                f"need length, side, num_classes >= 1, got {length}, {side}, {num_classes}"
            )
        self.length, self.side, self.num_classes, self.seed = length, side, num_classes, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        rng = np.random.default_rng((self.seed, index))
        pixels = rng.integers(0, 256, (self.side, self.side, 3), dtype=np.uint8)
        return Image.fromarray(pixels, "RGB"), int(rng.integers(self.num_classes))


class _Augmented(Dataset):
    def __init__(self, inner: Dataset, transform: Callable) -> None:
        self.inner, self.transform = inner, transform

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.inner[index]
        return self.transform(image), int(label)


@dataclass(frozen=True)
class EpochTiming:
    """Time of one online linear-finetuning epoch.

    ``seconds`` is the measured epoch when every batch ran (``extrapolated`` False), else
    ``epoch_batches x median_batch_s`` over the ``timed_batches`` that ran.
    """

    seconds: float
    median_batch_s: float
    timed_batches: int
    epoch_batches: int
    extrapolated: bool


def _feature_batches(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]], features: Callable, batch_size: int,
    num_classes: int, cores: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(features, labels) of augmented image batches, computed as they are asked for.

    A last partial batch is padded to ``batch_size`` for the backbone (a DeepSparse engine is
    compiled for one batch size) and its features cut back.
    """
    for x, y in batches:
        n = x.shape[0]
        if n < batch_size:
            x = torch.cat([x, x.new_zeros((batch_size - n, *x.shape[1:]))])
        with torch_threads(cores), torch.inference_mode():
            f = features(x)
        yield f[:n].reshape(n, -1).clone(), y % num_classes


def online_linear_epoch(
    features: Any,
    dataset: Dataset,
    num_classes: int,
    batch_size: int = 64,
    max_batches: int | None = None,
    *,
    image_size: int,
    warmup_batches: int = 1,
    num_cores: int | None = None,
    lr: float = 0.01,
    seed: int = 0,
) -> EpochTiming:
    """Time one epoch of the paper's online linear finetuning.

    Each batch is read from ``dataset`` (raw PIL images), augmented with RandomResizedCrop and
    a horizontal flip at ``image_size`` (``transforms.train_transform``), pushed through the
    frozen backbone, and one SGD step (momentum 0.9, weight decay 5e-4) is taken on a PyTorch
    ``nn.Linear`` head. Data loading runs in this process, so its time counts. A last partial
    batch is padded to ``batch_size``: a DeepSparse engine is compiled for one batch size.

    Args:
        features: a DeepSparse engine (compiled at ``batch_size``) or a callable mapping an
            NCHW float tensor to features (e.g. a PyTorch backbone in eval mode).
        dataset: yields ``(PIL image, int label)``.
        num_classes: width of the linear head; labels are taken modulo it.
        max_batches: time at most this many batches (after warm-up) and extrapolate the epoch
            as ``epoch batches x median batch time``; ``None`` runs the whole epoch.
        warmup_batches: batches run before timing starts (engine and allocator warm-up); they
            are extra, not counted in the epoch.
        num_cores: PyTorch threads for a torch backbone (data loading and the head run on one
            thread, as in a DataLoader worker; a DeepSparse engine has its own cores).

    Returns:
        An ``EpochTiming``; ``extrapolated`` says whether ``seconds`` was extrapolated.
    """
    if batch_size < 1 or num_classes < 1:
        raise ValueError(
            f"batch_size and num_classes must be >= 1, got {batch_size}, {num_classes}"
        )
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be >= 1 or None, got {max_batches}")
    if hasattr(features, "run") and hasattr(features, "batch_size"):
        if features.batch_size != batch_size:
            raise ValueError(
                f"DeepSparse engine compiled at batch {features.batch_size}, "
                f"epoch uses {batch_size}"
            )
        features = deepsparse_features(features)
    epoch_batches = math.ceil(len(dataset) / batch_size)  # type: ignore[arg-type]
    if epoch_batches == 0:
        raise ValueError("the online dataset is empty")
    to_time = epoch_batches if max_batches is None else min(max_batches, epoch_batches)

    torch.manual_seed(seed)
    loader = DataLoader(
        _Augmented(dataset, train_transform(image_size)),
        batch_size=batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )
    cores = num_cores or torch.get_num_threads()
    seconds: list[float] = []
    # Per-image tensor ops and a 64-row linear head are far too small for a thread pool: on a
    # busy machine 2 threads made ToTensor + Normalize 30x slower than 1. One thread, as in a
    # DataLoader worker; the backbone alone gets every core (inside ``_feature_batches``).
    with torch_threads(1):
        warm = _feature_batches(cycle(loader), features, batch_size, num_classes, cores)
        first = next(warm) if warmup_batches else None
        start = time.perf_counter()
        # The timed epoch starts from a fresh shuffle.
        timed = _feature_batches(iter(loader), features, batch_size, num_classes, cores)
        if first is None:
            first = next(timed)
            timed = itertools.chain([first], timed)
        head = nn.Linear(first[0].shape[1], num_classes)
        optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        if warmup_batches:
            train_one_epoch(head, optimizer, itertools.chain([first], warm), "cpu",
                            steps=warmup_batches)
            start = time.perf_counter()

        def tick() -> None:
            nonlocal start
            now = time.perf_counter()
            seconds.append(now - start)
            start = now

        train_one_epoch(head, optimizer, timed, "cpu", steps=to_time,
                        hooks=Hooks(after_step=tick))
    median = float(np.median(seconds))
    extrapolated = to_time < epoch_batches
    total = epoch_batches * median if extrapolated else float(sum(seconds))
    return EpochTiming(
        seconds=total,
        median_batch_s=median,
        timed_batches=len(seconds),
        epoch_batches=epoch_batches,
        extrapolated=extrapolated,
    )
