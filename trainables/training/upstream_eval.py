"""What every backbone of a study is before transfer: its sparsity per layer, its fully pruned
filters (paper Appendix E) and its upstream validation accuracy (paper Table 3).

The paper's Table 3 gives each ImageNet checkpoint's top-1 on the ImageNet validation set,
with the ReaL labels (Beyer et al., 2020) and on ImageNetV2 (Recht et al., 2019). Each is
read from the data root when it is there (layouts: ``trainables.datasets.upstream_sets``):

- ImageNet validation: ``<data root>/imagenet/val/<wnid>/*.JPEG``, 1000 class folders whose
  sorted order is the class index (torchvision's ImageFolder, the order every ImageNet
  checkpoint's classifier uses).
- ReaL labels: ``<data root>/imagenet/real.json`` (the ``real.json`` of
  google-research/reassessed-imagenet): entry i is the list of correct classes of
  ``ILSVRC2012_val_{i+1:08d}.JPEG``; an empty list drops the image, as the ReaL paper does.
- ImageNetV2: its three variants (matched-frequency, threshold-0.7, top-images), each
  archive extracted as it is under ``<data root>/imagenetv2/``, e.g.
  ``imagenetv2/imagenetv2-top-images-format-val/<class index>/*.jpeg`` (folder names are the
  class indices 0..999, not wnids). Each variant found is evaluated and recorded on its own;
  the ImageNetV2 number of Table 3 is their mean, as the paper reports it, so it is left empty
  unless all three are there, and the row's one line then names the variants missing.

When the validation set is missing, the statistics are still recorded and the row says in one
line where the images were expected. The tiny study evaluates its procedural upstream the same
way, on the validation split its pretraining used.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from common.columns import ACCURACY_V2_VARIANTS
from common.errors import BadInput
from trainables.datasets import (
    IMAGE_EXTENSIONS,
    DatasetError,
    DatasetNotFoundError,
    FileListDataset,
)
from trainables.datasets.upstream_sets import (
    IMAGENET_VAL_LAYOUT,
    REAL_LAYOUT,
    V2_DIR,
    V2_FOLDERS,
    V2_LAYOUT,
)
from trainables.training.engine import predict
from trainables.training.metrics import top1_accuracy

IMAGENET_CLASSES = 1000
_VAL_NUMBER = re.compile(r"ILSVRC2012_val_(\d{8})")
Transform = Callable[[Any], Any]


# ---------------------------------------------------------------------------------------------
# Checkpoint statistics


def layer_statistics(state_dict: Mapping[str, torch.Tensor],
                     names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per prunable weight: ``sparsity`` (percent of zeros) and, for convolutions,
    ``filters_pruned`` (percent of output channels that are entirely zero)."""
    out: dict[str, dict[str, float]] = {}
    for name in names:
        w = state_dict[name]
        row = {"sparsity": round(100.0 * float((w == 0).float().mean()), 3),
               "params": int(w.numel())}
        if w.dim() == 4:
            zero = int((w.reshape(w.shape[0], -1) == 0).all(dim=1).sum())
            row["filters_pruned"] = round(100.0 * zero / w.shape[0], 3)
        out[name] = row
    return out


def checkpoint_statistics(state_dict: Mapping[str, torch.Tensor],
                          names: Sequence[str]) -> dict[str, Any]:
    """Global sparsity (percent), share of fully pruned conv filters (fraction, as upstream
    rows carry it), and the per-layer table as compact JSON (results table and MLflow)."""
    from trainables.checkpoints import filters_pruned_share

    layers = layer_statistics(state_dict, names)
    zeros = sum(int((state_dict[n] == 0).sum()) for n in names)
    total = sum(int(state_dict[n].numel()) for n in names)
    return {
        "sparsity_measured": 100.0 * zeros / total if total else 0.0,
        "filters_pruned_share": filters_pruned_share(
            {n: state_dict[n] for n in names if state_dict[n].dim() == 4}),
        "layer_stats_json": json.dumps(
            {n: [r["sparsity"], r.get("filters_pruned")] for n, r in layers.items()},
            separators=(",", ":")),
    }


# ---------------------------------------------------------------------------------------------
# ImageNet validation sets


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def imagenet_val(data_root: str | Path | None, transform: Transform | None) -> FileListDataset:
    """The ImageNet validation set in class folders (``IMAGENET_VAL_LAYOUT``).

    Raises:
        MissingInput (via ``DatasetNotFoundError``): no ``imagenet/val`` under the data root.
        BadInput: the folder does not hold 1000 class folders.
    """
    val = Path(data_root or ".").expanduser() / "imagenet" / "val"
    if data_root is None or not val.is_dir():
        raise DatasetNotFoundError(f"ImageNet validation not found: expected {val}. "
                                   f"Expected layout: {IMAGENET_VAL_LAYOUT}")
    classes = sorted(p.name for p in val.iterdir() if p.is_dir())
    if len(classes) != IMAGENET_CLASSES:
        raise DatasetError(f"ImageNet validation at {val} has {len(classes)} class folders, "
                           f"expected {IMAGENET_CLASSES}. Expected layout: {IMAGENET_VAL_LAYOUT}")
    files, labels = [], []
    for i, c in enumerate(classes):
        images = _images(val / c)
        files += images
        labels += [i] * len(images)
    return FileListDataset(files, labels, transform, classes)


def imagenet_v2(data_root: str | Path,
                transform: Transform | None) -> dict[str, FileListDataset]:
    """The ImageNetV2 variants under ``<data root>/imagenetv2`` (``V2_LAYOUT``) by results
    column, in ``ACCURACY_V2_VARIANTS`` order; a variant not there is left out.

    Raises:
        BadInput (``DatasetError``): class folders directly under ``imagenetv2/`` (which
        variant they are is unknown), or a variant folder that is not class folders of images.
    """
    base = Path(data_root).expanduser() / V2_DIR
    if not base.is_dir():
        return {}
    if any(p.is_dir() and p.name.isdigit() for p in base.iterdir()):
        raise DatasetError(f"ImageNetV2 at {base} holds class folders itself, so its variant is "
                           f"unknown: move them into the variant's folder (matched-frequency: "
                           f"{base / V2_FOLDERS[next(iter(V2_FOLDERS))]}). "
                           f"Expected layout: {V2_LAYOUT}")
    return {col: _v2_variant(base / folder, transform) for col, folder in V2_FOLDERS.items()
            if (base / folder).is_dir()}


def _v2_variant(folder: Path, transform: Transform | None) -> FileListDataset:
    """One ImageNetV2 variant: class-index folders 0..999 of images."""
    files, labels = [], []
    for d in sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name):
        if not d.name.isdigit() or not 0 <= int(d.name) < IMAGENET_CLASSES:
            raise DatasetError(f"ImageNetV2 at {folder}: folder {d.name!r} is not a class index "
                               f"0..999. Expected layout: {V2_LAYOUT}")
        images = _images(d)
        files += images
        labels += [int(d.name)] * len(images)
    if not files:
        raise DatasetError(f"ImageNetV2 at {folder} holds no images. Expected layout: {V2_LAYOUT}")
    return FileListDataset(files, labels, transform, [str(i) for i in range(IMAGENET_CLASSES)])


def real_labels(data_root: str | Path, files: Sequence[Path]) -> list[list[int]] | None:
    """ReaL's correct classes for each validation file (by its ``ILSVRC2012_val_N`` number),
    or None when ``imagenet/real.json`` is absent."""
    path = Path(data_root).expanduser() / "imagenet" / "real.json"
    if not path.is_file():
        return None
    try:
        real = json.loads(path.read_text())
    except ValueError as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}). Expected: {REAL_LAYOUT}") from None
    out = []
    for f in files:
        m = _VAL_NUMBER.search(f.name)
        if m is None or not 1 <= int(m.group(1)) <= len(real):
            raise DatasetError(f"{f.name} has no ILSVRC2012_val_<number> that {path} "
                               f"({len(real)} entries) covers. Expected: {REAL_LAYOUT}")
        out.append([int(c) for c in real[int(m.group(1)) - 1]])
    return out


def real_accuracy(preds: np.ndarray, labels: Sequence[Sequence[int]]) -> float:
    """ReaL top-1, percent: a prediction is right when it is one of the image's ReaL labels;
    images with no ReaL label are left out."""
    kept = [(int(p), set(y)) for p, y in zip(preds, labels) if len(y)]
    if not kept:
        raise BadInput("ReaL labels: no validation image has a label")
    return 100.0 * sum(p in y for p, y in kept) / len(kept)


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class UpstreamAccuracy:
    """Top-1 accuracies in percent (None: that set is not under the data root), each ImageNetV2
    variant measured by its results column, and one line that says what was evaluated or why
    not."""

    top1: float | None
    real: float | None = None
    v2_variants: Mapping[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def v2(self) -> float | None:
        """ImageNetV2 as the paper's Table 3 reports it: the mean over its three variants;
        None unless all three were measured (one variant is not the paper's number)."""
        if set(self.v2_variants) != set(ACCURACY_V2_VARIANTS):
            return None
        return sum(self.v2_variants.values()) / len(self.v2_variants)


def _preds(model: nn.Module, ds: Dataset, device: torch.device, workers: int) -> np.ndarray:
    loader = DataLoader(ds, batch_size=128, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    preds, _ = predict(model, loader, device)
    return preds.cpu().numpy()


def _v2_missing(found: Mapping[str, float], data_root: str | Path) -> str:
    """The note's tail when some ImageNetV2 variants were found but not all: Table 3's
    ImageNetV2 is their mean, so it stays empty, and the line says what is missing where."""
    missing = [c for c in V2_FOLDERS if c not in found]
    if not found or not missing:
        return ""
    base = Path(data_root).expanduser() / V2_DIR
    return (f"; no ImageNetV2 average (the mean of its 3 variants): "
            f"{', '.join(ACCURACY_V2_VARIANTS[c] for c in missing)} not found (expected "
            f"{', '.join(str(base / V2_FOLDERS[c]) for c in missing)})")


def evaluate_imagenet(model: nn.Module, data_root: str | Path | None, transform: Transform,
                      device: str | torch.device = "cpu", workers: int = 0) -> UpstreamAccuracy:
    """Table 3 for one checkpoint: ImageNet val top-1, with ReaL and each ImageNetV2 variant
    when present (their mean only when all three are: ``UpstreamAccuracy.v2``)."""
    device = torch.device(device)
    try:
        val = imagenet_val(data_root, transform)
    except DatasetNotFoundError as exc:
        return UpstreamAccuracy(None, note=str(exc).split(". Expected layout")[0] +
                                f" ({IMAGENET_VAL_LAYOUT}); no upstream accuracy")
    root = Path(data_root or ".")  # imagenet_val found the validation set under it
    model.to(device)
    preds = _preds(model, val, device, workers)
    top1 = top1_accuracy(preds, np.asarray(val.labels))
    labels = real_labels(root, val.files)
    real = real_accuracy(preds, labels) if labels is not None else None
    v2 = {col: top1_accuracy(_preds(model, ds, device, workers), np.asarray(ds.labels))
          for col, ds in imagenet_v2(root, transform).items()}
    sets = ["ImageNet val"] + (["ReaL"] if real is not None else []) + (
        [f"ImageNetV2 {', '.join(ACCURACY_V2_VARIANTS[c] for c in v2)}"] if v2 else [])
    return UpstreamAccuracy(top1, real, v2, note=f"evaluated on {', '.join(sets)} "
                            f"({len(val)} validation images)" + _v2_missing(v2, root))


def evaluate_dataset(model: nn.Module, ds: Dataset, name: str,
                     device: str | torch.device = "cpu") -> UpstreamAccuracy:
    """Upstream top-1 on a validation set in memory (the tiny study's procedural one)."""
    device = torch.device(device)
    model.to(device)
    loader = DataLoader(ds, batch_size=256, shuffle=False)
    preds, targets = predict(model, loader, device)
    return UpstreamAccuracy(top1_accuracy(preds.cpu().numpy(), targets.cpu().numpy()),
                            note=f"evaluated on the {name} validation split ({len(ds)} images)")
