"""Downstream datasets by name: the paper's 12, generic image folders, and built-in tasks.

``DATASETS`` holds every registered dataset with what its builder knows (``layout``, and
``builtin`` for the tasks that need no files); its classes, metric and group are the
catalog's (``common.catalog``). ``build_dataset`` opens one split of any of them,
``dataset_info`` gives the facts without reading an image.
Every dataset yields ``(transform(PIL RGB image), int label)``. The modules:

- ``paper``: the paper's 12 datasets, read from a data root in their standard layouts.
- ``imagefolder``: ``imagefolder:<path>``, any folder of class folders.
- ``embedded`` and ``procedural``: the built-in tasks (shipped in installed packages, or
  generated), so a study runs offline; ``procedural`` also stands in for ImageNet.
- ``files``: reading image files, and the errors that name the path and layout expected.
- ``transforms``: the paper's preprocessing; ``upstream_sets``: where Table 3's sets go.
- ``download`` and ``__main__``: ``python -m trainables.datasets --layouts | --check |
  --download``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset

from common import catalog
from common.catalog import IMAGEFOLDER_PREFIX
from common import storage
from common.errors import machine_error
from trainables.datasets import embedded
from trainables.datasets.files import (
    IMAGE_EXTENSIONS,
    DatasetError,
    DatasetNotFoundError,
    FileListDataset,
    Transform,
)
from trainables.datasets.imagefolder import (
    IMAGEFOLDER_LAYOUT,
    imagefolder_classes,
    imagefolder_path,
    read_imagefolder,
)
from trainables.datasets.paper import PAPER_DATASETS
from trainables.registry import Entry, Registry

SPLITS = ("train", "test")

DatasetBuilder = Callable[[Path | None, str, Transform], Dataset]


def _builtin_entry(task: embedded.BuiltinTask) -> Entry[DatasetBuilder]:
    return Entry(name=task.name, fn=embedded.builder(task.load), meta={
        "builtin": True, "hflip": task.hflip,
        "layout": f"built in ({task.source}); needs no files, the data root is ignored"})


# The paper's datasets first, then the built-in tasks.
DATASETS: Registry[DatasetBuilder] = Registry.from_entries(
    "dataset", [*PAPER_DATASETS, *(_builtin_entry(task) for task in embedded.TASKS)])


@dataclass(frozen=True)
class DatasetInfo:
    """The facts a trial needs about a dataset before reading any image."""

    name: str
    classes: int
    metric: str
    group: str
    layout: str
    hflip: bool = True  # labels survive a horizontal mirror: full finetuning may flip


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def build_dataset(name: str, data_root: str | Path | None, split: str,
                  transform: Transform, expected_classes: int | None = None) -> Dataset:
    """The ``split`` ("train" or "test") of dataset ``name``, yielding (image, int label).

    Args:
        name: a registered name (``DATASETS.names()``) or ``"imagefolder:<path>"``; a relative
            image-folder path is taken under ``data_root`` when one is given.
        data_root: folder holding the datasets in their standard layouts (see each
            ``dataset_info(name).layout``); ignored by built-in tasks.
        split: "train" or "test".
        transform: applied to each PIL RGB image (e.g. ``transforms.eval_transform(224)``).
        expected_classes: the classes the study declares for an image folder; a folder with
            another count is refused (its labels would not fit the head).

    Raises:
        DatasetError: the dataset is missing (also a FileNotFoundError) or malformed; the
            message names the expected path and layout.
        KeyError: unknown dataset name (the message lists the known ones).
    """
    _check_split(split)
    root = Path(data_root).expanduser() if data_root is not None else None
    if name.startswith(IMAGEFOLDER_PREFIX):
        return read_imagefolder(imagefolder_path(name, root), split, transform, name,
                                expected_classes=expected_classes)
    entry = DATASETS.get(name)
    if root is None and not entry.meta.get("builtin", False):
        raise DatasetNotFoundError(
            f"dataset {name!r} is read from files but no data root was given. "
            f"Expected layout: {entry.meta['layout']}"
        )
    return entry.fn(root, split, transform)


def dataset_info(name: str, data_root: str | Path | None = None) -> DatasetInfo:
    """Classes, metric, group and layout of ``name``; image folders are counted on disk."""
    if name.startswith(IMAGEFOLDER_PREFIX):
        root = Path(data_root).expanduser() if data_root is not None else None
        classes = imagefolder_classes(imagefolder_path(name, root), name)
        return DatasetInfo(name, len(classes), catalog.TOP1, catalog.GENERAL, IMAGEFOLDER_LAYOUT)
    meta = DATASETS.get(name).meta
    facts = catalog.CATALOG.dataset(name)
    return DatasetInfo(name, facts.classes, facts.metric, facts.group, meta["layout"],
                       hflip=meta.get("hflip", True))


def normalization_stats(
    name: str, data_root: str | Path | None, image_size: int, interpolation: str,
    cache_dir: str | Path,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The per-channel mean/std of ``name``'s training split, computed once and cached.

    The pixels are the eval transform's before Normalize (resize, center crop) at the
    trial's size, so full finetuning normalises with statistics of what it sees at test time.
    The cache file (``cache_dir/<name>-<size>-<interpolation>.json``; ``cache_dir`` a folder
    or a storage URI, ``common.storage``, written whole) is shared by every trial on the
    dataset; a damaged one is recomputed.
    """
    from trainables.datasets.transforms import channel_stats, stats_transform

    safe = "".join(c if c.isalnum() or c in "_-." else "_" for c in name)[-80:]
    path = storage.join(cache_dir, f"{safe}-{image_size}-{interpolation}.json")
    try:
        saved = json.loads(storage.read_bytes(path))
        if saved.get("dataset") == name and len(saved["mean"]) == len(saved["std"]) == 3:
            return tuple(saved["mean"]), tuple(saved["std"])  # type: ignore[return-value]
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, OSError) and machine_error(exc):
            raise
    train = build_dataset(name, data_root, "train", stats_transform(image_size, interpolation))
    mean, std = channel_stats(train)
    text = json.dumps({"dataset": name, "image_size": image_size,
                       "interpolation": interpolation, "images": len(train),
                       "mean": mean, "std": std}, indent=1)
    storage.write_bytes(path, text.encode())
    return mean, std


__all__ = [
    "DATASETS", "IMAGEFOLDER_PREFIX", "IMAGE_EXTENSIONS", "SPLITS",
    "DatasetError", "DatasetInfo", "DatasetNotFoundError", "FileListDataset", "Transform",
    "build_dataset", "dataset_info", "normalization_stats",
]


# A split is kept in memory as tensors (``materialized``) only up to this size: the built-in
# 32 px tasks (15 MB for 1,200 images), never the paper's 224 px datasets.
MATERIALIZE_LIMIT_BYTES = 256 * 2**20


def materialized(dataset: Dataset, limit_bytes: int = MATERIALIZE_LIMIT_BYTES) -> Dataset:
    """``dataset`` with every item transformed once and kept as tensors, when its transform
    is deterministic (the caller's word: an eval transform) and the tensors fit in
    ``limit_bytes``; else ``dataset`` itself.

    Why: a full-finetuning trial evaluates its test split after every epoch and each feature
    task reads both splits; transforming a 32 px image item by item costs more than the tiny
    network's forward pass on it. The tensors are the ones the items would give, so every
    number computed from them is the same.
    """
    import torch
    from torch.utils.data import TensorDataset

    n = len(dataset)
    if n == 0:
        return dataset
    first, _ = dataset[0]
    if not isinstance(first, torch.Tensor) or n * first.numel() * first.element_size() > limit_bytes:
        return dataset
    images, labels = zip(*(dataset[i] for i in range(n)))
    return TensorDataset(torch.stack(images), torch.as_tensor(labels, dtype=torch.int64))
