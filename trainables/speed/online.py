"""The paper's online linear finetuning, timed: augment, compute features, SGD on a linear head.

Features are computed on the fly from augmented images (nothing cached), so an epoch's time
shows what a sparse backbone saves in a training loop. Images come through a torch DataLoader
with worker processes, as the reference ran it (``main.py --workers=4``); the time the loop
waits on the loader is measured, because it is the same for a dense and a sparse backbone and
so shrinks the speed-up. After each epoch the head is evaluated on the test split (its features
computed once, untimed), so a run's accuracy is that of the classifier it timed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from search_spaces.recipe import PAPER_CROP_SCALE, Recipe
from trainables.datasets.transforms import eval_transform, train_transform
from trainables.speed.runtimes import deepsparse_features, torch_threads
from trainables.training.engine import (
    Hooks,
    check_finite_loss,
    epoch_record,
    predict,
    recipe_sgd,
    train_one_epoch,
)
from trainables.training.metrics import compute_metric

# Head width for synthetic images (random labels); its width does not change the backbone's cost.
ONLINE_NUM_CLASSES = 100


class SyntheticImages(Dataset):
    """``length`` random RGB PIL images of ``side`` px with random labels, drawn per index.

    Stands in for a decoded dataset when timing the online epoch: augmentation cost depends
    on image size, not content. It has no test split, so a run on it has no accuracy.
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


class _Transformed(Dataset):
    def __init__(self, inner: Dataset, transform: Callable) -> None:
        self.inner, self.transform = inner, transform

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.inner[index]
        return self.transform(image), int(label)


@dataclass(frozen=True)
class OnlineSetup:
    """How an online run reads, augments, trains and evaluates.

    Attributes:
        recipe: the linear finetuning recipe: ``epochs`` (the online epochs), ``batch_size``
            (a DeepSparse engine must be compiled at it), SGD and its step decay per epoch.
        image_size: crop side of the augmentation and of the test transform.
        loader_workers: DataLoader worker processes of each training pass (0: load in the
            training loop's process; never more than the pass has batches).
        max_batches: train at most this many batches per epoch (a random subset of the
            split, drawn anew each epoch) and extrapolate its time (``OnlineRun.seconds``);
            ``None`` trains and times whole epochs.
        warmup_batches: batches pushed through the backbone before the first epoch (engine
            and allocator warm-up), loaded in this process; untimed, and they train nothing.
        num_cores: PyTorch threads for a torch backbone (a DeepSparse engine has its own).
        metric, epoch_selection: the dataset's metric and which epoch's accuracy is reported
            (``engine.EPOCH_SELECTIONS``), as the study's linear finetuning.
        interpolation, crop_scale, hflip: the augmentation (``transforms.train_transform``).
        seed: the head's initialisation, the shuffle and the workers' augmentation.
    """

    recipe: Recipe
    image_size: int
    loader_workers: int = 4
    max_batches: int | None = None
    warmup_batches: int = 1
    num_cores: int | None = None
    metric: str = "top1"
    epoch_selection: str = "metric"
    interpolation: str = "bilinear"
    crop_scale: tuple[float, float] = PAPER_CROP_SCALE
    hflip: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loader_workers < 0 or self.warmup_batches < 0:
            raise ValueError(f"loader_workers and warmup_batches must be >= 0, got "
                             f"{self.loader_workers}, {self.warmup_batches}")
        if self.max_batches is not None and self.max_batches < 1:
            raise ValueError(f"max_batches must be >= 1 or None, got {self.max_batches}")


@dataclass(frozen=True)
class OnlineRun:
    """One online linear-finetuning run: its epochs timed, its classifier's test accuracy.

    Attributes:
        seconds: mean time of an epoch; an epoch that trained every batch is measured whole,
            else (``extrapolated``) it is its first batch, which carries the loader's start,
            plus ``epoch_batches - 1`` batches of ``median_batch_s``.
        median_batch_s: median over the batches after each epoch's first (the steady pace;
            over the first ones when each epoch timed one batch).
        timed_batches: batches trained (and timed) per epoch.
        epoch_batches: batches in a whole epoch.
        epochs: epochs run.
        loader_wait_s: seconds the training loop waited on the loader, over every epoch
            (extrapolated as the epoch's time is).
        loader_share: ``loader_wait_s`` / the epochs' seconds they fall in (``loader_share``).
        accuracy: the dataset's metric (percent) at the reported epoch; NaN without a test split.
        history: one ``engine.epoch_record`` per epoch (empty without a test split).
        head: the trained classifier, as the last epoch left it.
    """

    seconds: float
    median_batch_s: float
    timed_batches: int
    epoch_batches: int
    extrapolated: bool
    epochs: int
    loader_wait_s: float
    loader_share: float
    accuracy: float
    history: tuple[dict, ...] = field(default=())
    head: nn.Module | None = field(default=None, repr=False, compare=False)


def loader_share(wait_s: float, total_s: float) -> float:
    """The share of ``total_s`` spent waiting on the loader: ``wait_s / total_s`` in [0, 1].

    ``wait_s`` is measured inside ``total_s``, so the ratio is in [0, 1] up to the clock's
    resolution, which the clamp absorbs; NaN when nothing was timed.
    """
    if not total_s > 0:
        return float("nan")
    return min(1.0, max(0.0, wait_s / total_s))


class LoaderWait:
    """The batches of ``batches``, keeping in ``waits`` the seconds each ``next`` blocked.

    The iterator is made at the first ``next`` and that counts as waiting too: with worker
    processes it is when they start. ``close`` drops the iterator, which stops the workers.
    """

    def __init__(self, batches: Iterable) -> None:
        self._batches: Iterable | None = batches
        self._it: Iterator | None = None
        self.waits: list[float] = []

    @property
    def seconds(self) -> float:
        return float(sum(self.waits))

    def __iter__(self) -> LoaderWait:
        return self

    def __next__(self) -> Any:
        start = time.perf_counter()
        try:
            if self._it is None:
                if self._batches is None:
                    raise StopIteration
                self._it = iter(self._batches)
            return next(self._it)
        finally:
            self.waits.append(time.perf_counter() - start)

    def close(self) -> None:
        self._it = self._batches = None


def _feature_batches(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]], features: Callable, batch_size: int,
    cores: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(features, labels) of image batches, computed as they are asked for.

    A last partial batch is padded to ``batch_size`` for the backbone (a DeepSparse engine is
    compiled for one batch size) and its features cut back.
    """
    for x, y in batches:
        n = x.shape[0]
        if n < batch_size:
            x = torch.cat([x, x.new_zeros((batch_size - n, *x.shape[1:]))])
        with torch_threads(cores), torch.inference_mode():
            f = features(x)
        yield f[:n].reshape(n, -1).clone(), y


def _loader(dataset: Dataset, setup: OnlineSetup, samples: int,
            generator: torch.Generator) -> DataLoader:
    """A DataLoader as the reference's: ``loader_workers`` processes (never more than a pass
    has batches: the others would get none), started anew for each pass (not persistent).
    Each pass reads ``samples`` random images (a shuffled epoch when that is the whole
    split), so workers load nothing the loop skips; ``generator`` seeds the shuffle and the
    workers' augmentation."""
    b = setup.recipe.batch_size
    return DataLoader(dataset, batch_size=b, generator=generator,
                      sampler=RandomSampler(dataset, num_samples=samples, generator=generator),
                      num_workers=min(setup.loader_workers, math.ceil(samples / b)))


def _test_features(features: Callable, test: Dataset, setup: OnlineSetup,
                   cores: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of the whole test split (eval transform), computed once and loaded
    in this process: it is not timed, and once per run costs less than starting workers."""
    tf = eval_transform(setup.image_size, setup.interpolation)
    loader = DataLoader(_Transformed(test, tf), batch_size=setup.recipe.batch_size)
    pairs = list(_feature_batches(iter(loader), features, setup.recipe.batch_size, cores))
    if not pairs:
        raise ValueError("the online test split is empty")
    return torch.cat([f for f, _ in pairs]), torch.cat([y for _, y in pairs])


@dataclass
class _Epoch:
    batch_s: list[float]  # per batch, its wait on the loader included
    wait_s: list[float]  # per batch, the wait alone
    loss: float


def _timed_epoch(head: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,
                 features: Callable, steps: int, cores: int) -> _Epoch:
    """Train ``steps`` batches of a fresh pass over ``loader``, timing each batch (its wait
    on the loader included) from the moment the pass starts."""
    wait = LoaderWait(loader)
    batch_s: list[float] = []
    mark = time.perf_counter()

    def tick() -> None:
        nonlocal mark
        now = time.perf_counter()
        batch_s.append(now - mark)
        mark = now

    batches = _feature_batches(wait, features, loader.batch_size or 1, cores)
    stats = train_one_epoch(head, optimizer, batches, "cpu", steps=steps,
                            hooks=Hooks(after_step=tick))
    batches.close()
    wait.close()  # the workers stop here, after the epoch's last tick
    return _Epoch(batch_s=batch_s, wait_s=wait.waits[:len(batch_s)], loss=stats.loss)


def _as_features(features: Any, batch_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A DeepSparse engine (checked to be compiled at ``batch_size``) or a callable, as a
    callable mapping an NCHW float tensor to features."""
    if hasattr(features, "run") and hasattr(features, "batch_size"):
        if features.batch_size != batch_size:
            raise ValueError(f"DeepSparse engine compiled at batch {features.batch_size}, "
                             f"the online run uses {batch_size}")
        return deepsparse_features(features)
    return features


def _warm_up(features: Callable, data: Dataset, setup: OnlineSetup, cores: int) -> int:
    """Run the first ``warmup_batches`` of ``data`` through the backbone, loaded here (one
    zero batch when none); return the feature width."""
    b, s = setup.recipe.batch_size, setup.image_size
    n = min(setup.warmup_batches * b, len(data))  # type: ignore[arg-type]
    if n == 0:
        with torch_threads(cores), torch.inference_mode():
            return int(features(torch.zeros(b, 3, s, s)).reshape(b, -1).shape[1])
    warm = DataLoader(Subset(data, range(n)), batch_size=b)
    widths = [f.shape[1] for f, _ in _feature_batches(iter(warm), features, b, cores)]
    return int(widths[0])


def _evaluate(head: nn.Module, test: tuple[torch.Tensor, torch.Tensor], setup: OnlineSetup,
              num_classes: int) -> tuple[float, float]:
    """(the dataset's metric, top-1) of ``head`` on the cached test features, percent."""
    pred, target = predict(head, [test], "cpu")
    p, t = pred.numpy(), target.numpy()
    return (compute_metric(setup.metric, p, t, num_classes),
            compute_metric("top1", p, t, num_classes))


def online_linear_run(features: Any, dataset: Dataset, num_classes: int, setup: OnlineSetup,
                      test: Dataset | None = None) -> OnlineRun:
    """Train a linear head for ``setup.recipe.epochs`` online epochs and time every epoch.

    Each batch is read from ``dataset`` (raw PIL images) by a DataLoader with
    ``setup.loader_workers`` processes, augmented (RandomResizedCrop and optionally a flip),
    pushed through the frozen backbone, and one SGD step is taken on a PyTorch ``nn.Linear``
    head (the recipe's optimiser; its lr decays after each epoch). The loop itself runs on one
    thread, the backbone on ``setup.num_cores``. After each epoch the head is evaluated on
    ``test``'s features (untimed); ``accuracy`` is the epoch ``setup.epoch_selection`` picks.

    Args:
        features: a DeepSparse engine (compiled at the recipe's batch size) or a callable
            mapping an NCHW float tensor to features (e.g. a PyTorch backbone in eval mode).
        dataset: the training split, yielding ``(PIL image, int label)``.
        num_classes: width of the head; labels must be below it.
        test: the test split, yielding ``(PIL image, int label)``; ``None``: no accuracy.
    """
    b = setup.recipe.batch_size
    run_features = _as_features(features, b)
    epoch_batches = math.ceil(len(dataset) / b)  # type: ignore[arg-type]
    if epoch_batches == 0:
        raise ValueError("the online dataset is empty")
    steps = epoch_batches if setup.max_batches is None else min(setup.max_batches, epoch_batches)
    cores = setup.num_cores or torch.get_num_threads()
    augment = train_transform(setup.image_size, setup.interpolation,
                              crop_scale=tuple(setup.crop_scale), hflip=setup.hflip)
    data = _Transformed(dataset, augment)
    loader = _loader(data, setup, samples=min(steps * b, len(data)),
                     generator=torch.Generator().manual_seed(setup.seed))
    # Per-image tensor ops and a 64-row linear head are far too small for a thread pool: on a
    # busy machine 2 threads made ToTensor + Normalize 30x slower than 1. One thread, as in a
    # DataLoader worker; the backbone alone gets every core (inside ``_feature_batches``).
    with torch_threads(1):
        cached = None if test is None else _test_features(run_features, test, setup, cores)
        width = _warm_up(run_features, data, setup, cores)
        torch.manual_seed(setup.seed)
        head = nn.Linear(width, num_classes)
        optimizer, scheduler = recipe_sgd(head.parameters(), setup.recipe)
        epochs: list[_Epoch] = []
        history: list[dict] = []
        for epoch in range(1, setup.recipe.epochs + 1):
            epochs.append(_timed_epoch(head, optimizer, loader, run_features, steps, cores))
            check_finite_loss(epochs[-1].loss, epoch)
            scheduler.step()
            if cached is not None:
                acc, top1 = _evaluate(head, cached, setup, num_classes)
                history.append(epoch_record(epoch, epochs[-1].loss, acc, history, top1=top1,
                                            select=setup.epoch_selection))
    return _summary(epochs, history, epoch_batches, steps, head)


def _summary(epochs: list[_Epoch], history: list[dict], epoch_batches: int,
             steps: int, head: nn.Module) -> OnlineRun:
    """The run's numbers from its timed epochs (see ``OnlineRun``). A partial epoch is
    extrapolated from its first batch, which carries the loader's start, and the steady pace
    of the later ones, for its time and its wait on the loader alike."""
    extrapolated = steps < epoch_batches

    def per_epoch(values: list[list[float]]) -> list[float]:
        if not extrapolated:
            return [float(sum(v)) for v in values]
        later = [x for v in values for x in v[1:]] or [v[0] for v in values]
        return [v[0] + (epoch_batches - 1) * float(np.median(later)) for v in values]

    seconds = per_epoch([e.batch_s for e in epochs])
    waits = per_epoch([e.wait_s for e in epochs])
    later = [x for e in epochs for x in e.batch_s[1:]] or [e.batch_s[0] for e in epochs]
    return OnlineRun(
        seconds=float(np.mean(seconds)), median_batch_s=float(np.median(later)),
        timed_batches=steps, epoch_batches=epoch_batches, extrapolated=extrapolated,
        epochs=len(epochs), loader_wait_s=float(sum(waits)),
        loader_share=loader_share(sum(waits), sum(seconds)),
        accuracy=history[-1]["accuracy_best"] if history else float("nan"),
        history=tuple(history), head=head,
    )
