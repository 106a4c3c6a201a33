"""Tiny stand-ins for the paper's datasets, written in each one's on-disk layout.

Why: the real archives are gigabytes and are never downloaded, yet every registered dataset's
reader (ours or torchvision's) must be exercised. Each writer puts a few 8x6 images and the
full class list (the readers check the class count) under a data root, as ``layout`` says.
``WRITERS`` maps every file-backed dataset name to its writer; built-in tasks ship their data.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

# Paper Table 2, as in docs/protocol.md: name -> (classes, metric, group)
STUDY_TABLE = {
    "sun397": (397, "top1", "general"),
    "aircraft": (100, "mean_per_class", "specialized"),
    "birdsnap": (500, "top1", "specialized"),
    "caltech101": (101, "mean_per_class", "general"),
    "caltech256": (257, "mean_per_class", "general"),
    "cars": (196, "top1", "specialized"),
    "cifar10": (10, "top1", "general"),
    "cifar100": (100, "top1", "general"),
    "dtd": (47, "top1", "general"),
    "flowers": (102, "mean_per_class", "specialized"),
    "food101": (101, "top1", "specialized"),
    "pets": (37, "mean_per_class", "specialized"),
}


def png(path: Path, mode: str = "RGB", colour: int = 0) -> None:
    """A 6x5 PNG in the given PIL mode (``"L"`` for grayscale)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (6, 5), colour).save(path)


def image(path: Path, colour: int = 0) -> None:
    """An 8x6 RGB image; saved as JPEG or PNG by the file's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (colour % 256, 40, 90)).save(path)


def sun397(root: Path) -> None:
    base = root / "SUN397"
    classes = [f"/c/class{i:03d}" for i in range(397)]
    base.mkdir(parents=True)
    (base / "ClassName.txt").write_text("\n".join(classes) + "\n")
    parts = {"Training_01.txt": [0, 1], "Testing_01.txt": [396]}
    for part, picks in parts.items():
        rels = [f"{classes[c]}/sun_{c}.jpg" for c in picks]
        for c, rel in zip(picks, rels):
            image(base / rel.lstrip("/"), c)
        (base / "Partitions").mkdir(exist_ok=True)
        (base / "Partitions" / part).write_text("\n".join(rels) + "\n")


def aircraft(root: Path) -> None:
    data = root / "fgvc-aircraft-2013b" / "data"
    variants = [f"Model {i:03d}" for i in range(100)]  # real names have spaces too
    data.mkdir(parents=True)
    (data / "variants.txt").write_text("\n".join(variants) + "\n")
    for split, picks in (("trainval", [0, 1]), ("test", [99])):
        lines = []
        for c in picks:
            image_id = f"{split}{c:04d}"
            image(data / "images" / f"{image_id}.jpg", c)
            lines.append(f"{image_id} {variants[c]}")
        (data / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")


def birdsnap(root: Path) -> None:
    base = root / "birdsnap"
    for c in range(500):
        image(base / "train" / f"species{c:03d}" / "0.jpg", c)
    image(base / "test" / "species499" / "0.jpg", 499)


def _caltech(base: Path, classes: int, per_class: int, name: Callable[[int], str]) -> None:
    """One image per class (all train) and ``per_class + 1`` in class 0, so test has one."""
    for c in range(classes):
        for i in range(per_class + 1 if c == 0 else 1):
            image(base / name(c) / f"image_{i + 1:04d}.jpg", c)


def caltech101(root: Path) -> None:
    """101 object classes plus BACKGROUND_Google, as the archive extracts."""
    base = root / "caltech101" / "101_ObjectCategories"
    _caltech(base, 101, 30, lambda c: f"class{c:03d}")
    image(base / "BACKGROUND_Google" / "image_0001.jpg", 101)


def caltech256(root: Path) -> None:
    base = root / "caltech256" / "256_ObjectCategories"
    _caltech(base, 257, 60, lambda c: f"{c + 1:03d}.class{c:03d}")


def cars(root: Path) -> None:
    base = root / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    names = np.array([f"Car {i:03d}" for i in range(196)], dtype=object)
    scipy.io.savemat(base / "devkit" / "cars_meta.mat", {"class_names": names})
    for annos, folder, picks in (
        (base / "devkit" / "cars_train_annos.mat", "cars_train", [1, 2]),
        (base / "cars_test_annos_withlabels.mat", "cars_test", [195, 196]),
    ):
        # classes count from 1; two rows, as a one-row struct array loads as a 0-d array
        rows = [(f"{folder}_{c:05d}.jpg", c) for c in picks]
        for fname, c in rows:
            image(base / folder / fname, c)
        records = np.array(rows, dtype=[("fname", object), ("class", object)])
        scipy.io.savemat(annos, {"annotations": records})


def _cifar_batch(labels: list[int], key: str) -> dict:
    data = np.zeros((len(labels), 3 * 32 * 32), dtype=np.uint8)
    data[:, :1024] = np.array(labels, dtype=np.uint8)[:, None]
    return {"data": data, key: labels}


def _pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def cifar10(root: Path) -> None:
    base = root / "cifar-10-batches-py"
    for i in range(1, 6):
        _pickle(base / f"data_batch_{i}", _cifar_batch([i, 9 - i], "labels"))
    _pickle(base / "test_batch", _cifar_batch([0, 9], "labels"))
    _pickle(base / "batches.meta", {"label_names": [f"thing{i}" for i in range(10)]})


def cifar100(root: Path) -> None:
    base = root / "cifar-100-python"
    _pickle(base / "train", _cifar_batch([0, 50], "fine_labels"))
    _pickle(base / "test", _cifar_batch([99], "fine_labels"))
    _pickle(base / "meta", {"fine_label_names": [f"thing{i}" for i in range(100)]})


def dtd(root: Path) -> None:
    base = root / "dtd" / "dtd"
    lines = []
    for c in range(47):  # torchvision counts the classes listed in each split file
        rel = f"texture{c:02d}/texture{c:02d}_0001.jpg"
        image(base / "images" / rel, c)
        lines.append(rel)
    for part in ("train1", "val1", "test1"):
        (base / "labels").mkdir(exist_ok=True)
        (base / "labels" / f"{part}.txt").write_text("\n".join(lines) + "\n")


def flowers(root: Path) -> None:
    base = root / "flowers-102"
    labels = [1, 2, 50, 101, 102, 102]  # image i + 1 has label labels[i] (counted from 1)
    for i, label in enumerate(labels):
        image(base / "jpg" / f"image_{i + 1:05d}.jpg", label)
    scipy.io.savemat(base / "imagelabels.mat", {"labels": np.array(labels)})
    ids = {"trnid": np.array([1, 2]), "valid": np.array([3, 4]), "tstid": np.array([5, 6])}
    scipy.io.savemat(base / "setid.mat", ids)


def food101(root: Path) -> None:
    base = root / "food-101"
    meta = {f"dish{c:03d}": [f"dish{c:03d}/{c}"] for c in range(101)}  # all 101 per split
    for rels in meta.values():
        image(base / "images" / f"{rels[0]}.jpg")
    (base / "meta").mkdir(parents=True)
    for split in ("train", "test"):
        (base / "meta" / f"{split}.json").write_text(json.dumps(meta))


def pets(root: Path) -> None:
    base = root / "oxford-iiit-pet"
    lines = []
    for c in range(37):  # torchvision counts the breeds listed in each split file
        image_id = f"Breed{c:02d}_1"
        image(base / "images" / f"{image_id}.jpg", c)
        lines.append(f"{image_id} {c + 1} {1 + c % 2} 1")
    (base / "annotations").mkdir(parents=True)
    for split in ("trainval", "test"):
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")


WRITERS: dict[str, Callable[[Path], None]] = {
    "sun397": sun397,
    "aircraft": aircraft,
    "birdsnap": birdsnap,
    "caltech101": caltech101,
    "caltech101_background": caltech101,
    "caltech256": caltech256,
    "cars": cars,
    "cifar10": cifar10,
    "cifar100": cifar100,
    "dtd": dtd,
    "flowers": flowers,
    "food101": food101,
    "pets": pets,
}


def skip_archive_checksums(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision checks CIFAR's and Flowers' files against the real archives' md5; the
    samples keep the layout and content format, so only that check is replaced by existence."""
    from torchvision.datasets import cifar, flowers102

    def exists(fpath: str | os.PathLike[str], md5: str | None = None) -> bool:
        return os.path.isfile(fpath)

    monkeypatch.setattr(cifar, "check_integrity", exists)
    monkeypatch.setattr(flowers102, "check_integrity", exists)
