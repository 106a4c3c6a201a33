"""Downstream datasets by name: the paper's 12, generic image folders, and built-in tasks.

Nothing is downloaded while a study runs: each dataset is read from a data root in the
standard layout its ``layout`` text describes (``python -m trainables.datasets --download``
fetches beforehand what torchvision's download code can), and a missing or malformed dataset is a ``DatasetError`` naming
the path that was expected and that layout (never torchvision's "You can use download=True").
Every dataset yields ``(transform(PIL RGB image), int label)``.

Adding a dataset is one decorated builder ``fn(root: Path, split: str, transform)`` with its
facts (``classes``, ``metric``, ``group``, ``layout``) declared at registration.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from PIL import Image
from torch.utils.data import ConcatDataset, Dataset

from common.atomic import atomic_write_text
from common.errors import BadInput, MissingInput, machine_error
from trainables import embedded
from trainables.registry import Registry
from trainables.upstream_sets import UPSTREAM_SETS

SPLITS = ("train", "test")
METRIC_NAMES = ("top1", "mean_per_class")
GROUPS = ("general", "specialized")
IMAGEFOLDER_PREFIX = "imagefolder:"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

Transform = Callable[[Image.Image], Any] | None
DatasetBuilder = Callable[[Path | None, str, Transform], Dataset]

DATASETS: Registry[DatasetBuilder] = Registry("dataset")


class DatasetError(BadInput):
    """A dataset is missing, malformed or unreadable; the message names path and layout.

    Bad input (``common.errors.BadInput``): the trial is recorded as failed, never retried.
    """


class DatasetNotFoundError(DatasetError, MissingInput):
    """The expected files of a dataset are not under the data root."""


@dataclass(frozen=True)
class DatasetInfo:
    """The facts a trial needs about a dataset before reading any image."""

    name: str
    classes: int
    metric: str
    group: str
    layout: str
    hflip: bool = True  # labels survive a horizontal mirror: full finetuning may flip


# --------------------------------------------------------------------------------------------
# Shared pieces: RGB conversion, readable errors, file-list datasets


class _RGBThen:
    """Converts to RGB (grayscale, palette, CMYK, RGBA) before the user transform.

    A class, not a closure, so datasets stay picklable for DataLoader workers.
    """

    def __init__(self, transform: Transform) -> None:
        self.transform = transform

    def __call__(self, image: Image.Image) -> Any:
        if image.mode != "RGB":
            image = image.convert("RGB")
        return self.transform(image) if self.transform is not None else image


def _open_rgb(path: Path) -> Image.Image:
    """Opens an image as RGB, or raises a DatasetError naming the file."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for truncated/corrupt
        if machine_error(exc):
            raise  # EIO, a stale NFS handle: not the file's fault; the trial is retried
        raise DatasetError(f"cannot read image file {path}: {exc}") from exc


class FileListDataset(Dataset):
    """Images listed by path with integer labels, decoded lazily; errors name the file."""

    def __init__(
        self,
        files: Sequence[Path],
        labels: Sequence[int],
        transform: Transform,
        classes: Sequence[str],
    ) -> None:
        if len(files) != len(labels):
            raise ValueError(f"{len(files)} files but {len(labels)} labels")
        self.files = list(files)
        self.labels = [int(y) for y in labels]
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = _open_rgb(self.files[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


class _Checked(Dataset):
    """Wraps a torchvision dataset: RGB input to the transform, int labels, readable errors."""

    def __init__(self, inner: Dataset, name: str) -> None:
        self.inner = inner
        self.name = name

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        try:
            image, label = self.inner[index]
        except (OSError, SyntaxError) as exc:  # the PIL message carries the file name
            if machine_error(exc):
                raise  # EIO, a stale NFS handle: not the file's fault; the trial is retried
            raise DatasetError(f"{self.name}: cannot read sample {index}: {exc}") from exc
        return image, int(label)


def _missing(path: Path, name: str, layout: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"dataset {name!r}: expected {path}, which does not exist. Expected layout: {layout}"
    )


def _require(root: Path, relative: Sequence[str], name: str, layout: str) -> None:
    """Raises DatasetNotFoundError for the first of ``root/relative`` that does not exist."""
    for rel in relative:
        path = root / rel
        if not path.exists():
            raise _missing(path, name, layout)


@contextlib.contextmanager
def _rewritten(name: str, root: Path, layout: str) -> Iterator[None]:
    """Turns torchvision's "not found / corrupted, use download=True" into a DatasetError."""
    try:
        yield
    except DatasetError:
        raise
    except FileNotFoundError as exc:
        missing = exc.filename or root
        raise DatasetNotFoundError(
            f"dataset {name!r}: expected {missing}, which does not exist (under data root "
            f"{root}). Expected layout: {layout}"
        ) from None
    except (RuntimeError, OSError, ValueError, KeyError, IndexError) as exc:
        if machine_error(exc):
            raise  # EIO, a stale NFS handle: not the dataset's fault; the trial is retried
        detail = str(exc).split(". You can use download=True")[0].split(" You can use")[0]
        raise DatasetError(
            f"dataset {name!r} under {root} is missing files or malformed ({detail.strip()}). "
            f"Expected layout: {layout}"
        ) from None


def _check_classes(ds: Any, expected: int, name: str, root: Path, layout: str) -> None:
    classes = getattr(ds, "classes", None)
    if classes is not None and len(classes) != expected:
        raise DatasetError(
            f"dataset {name!r} under {root} has {len(classes)} classes, expected {expected}. "
            f"Expected layout: {layout}"
        )


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and (
        path.suffix.lower() in IMAGE_EXTENSIONS
    )


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_image(p))


# --------------------------------------------------------------------------------------------
# Generic image folders (also Birdsnap's layout)

IMAGEFOLDER_LAYOUT = (
    "<path>/train/<class>/<image> and <path>/test/<class>/<image> (or val/ instead of test/); "
    "one folder per class, class index = position of the folder name in sorted order of train/"
)


def _imagefolder_splits(path: Path, name: str, layout: str) -> tuple[Path, Path]:
    if not path.is_dir():
        raise _missing(path, name, layout)
    train = path / "train"
    if not train.is_dir():
        raise DatasetNotFoundError(
            f"dataset {name!r}: expected a train/ folder at {train}, which does not exist. "
            f"Expected layout: {layout}"
        )
    for test_name in ("test", "val"):
        if (path / test_name).is_dir():
            return train, path / test_name
    raise DatasetNotFoundError(
        f"dataset {name!r}: expected a test/ or val/ folder at {path / 'test'}, neither exists. "
        f"Expected layout: {layout}"
    )


def _imagefolder_classes(path: Path, name: str, layout: str) -> list[str]:
    train, _ = _imagefolder_splits(path, name, layout)
    classes = [p.name for p in _class_dirs(train)]
    if not classes:
        raise DatasetError(
            f"dataset {name!r}: {train} has no class folders. Expected layout: {layout}"
        )
    return classes


def read_imagefolder(
    path: Path, split: str, transform: Transform, name: str, layout: str = IMAGEFOLDER_LAYOUT,
    expected_classes: int | None = None,
) -> FileListDataset:
    """A ``train/`` + ``test/`` (or ``val/``) folder of class folders as a FileListDataset.

    Class indices come from the sorted class folders of ``train/``, so both splits agree; a
    test class that train lacks, or a train class without images, is an error.
    """
    train_dir, test_dir = _imagefolder_splits(path, name, layout)
    classes = _imagefolder_classes(path, name, layout)
    if expected_classes is not None and len(classes) != expected_classes:
        raise DatasetError(
            f"dataset {name!r}: {train_dir} has {len(classes)} class folders, expected "
            f"{expected_classes}. Expected layout: {layout}"
        )
    index = {c: i for i, c in enumerate(classes)}
    folder = train_dir if split == "train" else test_dir
    files: list[Path] = []
    labels: list[int] = []
    for class_dir in _class_dirs(folder):
        if class_dir.name not in index:
            raise DatasetError(
                f"dataset {name!r}: class folder {class_dir} has no counterpart in {train_dir}. "
                f"Expected layout: {layout}"
            )
        images = _images_in(class_dir)
        if not images and split == "train":
            raise DatasetError(
                f"dataset {name!r}: class folder {class_dir} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)}). Expected layout: {layout}"
            )
        files.extend(images)
        labels.extend([index[class_dir.name]] * len(images))
    if not files:
        raise DatasetError(f"dataset {name!r}: {folder} holds no images. Expected layout: {layout}")
    return FileListDataset(files, labels, transform, classes)


def _imagefolder_path(spec: str, data_root: Path | None) -> Path:
    raw = spec[len(IMAGEFOLDER_PREFIX):].strip()
    if not raw:
        raise BadInput(f"dataset name {spec!r} lacks a path: use 'imagefolder:<path>'")
    path = Path(raw).expanduser()
    if not path.is_absolute() and data_root is not None:
        path = data_root / path
    return path


# --------------------------------------------------------------------------------------------
# The paper's 12 datasets

_ROOT_NOTE = "under the data root: "


@DATASETS.register(
    "sun397", classes=397, metric="top1", group="general",
    layout=_ROOT_NOTE + "SUN397/ClassName.txt (lines like /a/abbey), images at "
    "SUN397/<letter>/<class>/sun_*.jpg, and the official split files "
    "SUN397/Partitions/Training_01.txt and Testing_01.txt (partition 1, 50+50 images per class)",
)
def build_sun397(root: Path, split: str, transform: Transform) -> Dataset:
    # torchvision's SUN397 has no train/test split, so the official partition 1 is read here.
    name, layout = "sun397", DATASETS.get("sun397").meta["layout"]
    base = root / "SUN397"
    _require(base, ["ClassName.txt", "Partitions/Training_01.txt", "Partitions/Testing_01.txt"],
             name, layout)
    classes = [c.strip() for c in (base / "ClassName.txt").read_text().splitlines() if c.strip()]
    if len(classes) != 397:
        raise DatasetError(f"dataset {name!r}: {base / 'ClassName.txt'} lists {len(classes)} "
                           f"classes, expected 397. Expected layout: {layout}")
    index = {c: i for i, c in enumerate(classes)}
    part = base / "Partitions" / ("Training_01.txt" if split == "train" else "Testing_01.txt")
    files, labels = [], []
    for line in part.read_text().splitlines():
        rel = line.strip()
        if not rel:
            continue
        cls = rel.rsplit("/", 1)[0]
        if cls not in index:
            raise DatasetError(f"dataset {name!r}: {part} lists {rel}, whose class {cls} is not "
                               f"in ClassName.txt. Expected layout: {layout}")
        files.append(base / rel.lstrip("/"))
        labels.append(index[cls])
    return FileListDataset(files, labels, transform, classes)


@DATASETS.register(
    "aircraft", classes=100, metric="mean_per_class", group="specialized",
    layout=_ROOT_NOTE + "fgvc-aircraft-2013b/data/ as extracted from fgvc-aircraft-2013b.tar.gz "
    "(images/*.jpg, variants.txt, images_variant_trainval.txt, images_variant_test.txt); "
    "variant level (100 classes), trainval for training",
)
def build_aircraft(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import FGVCAircraft

    name, layout = "aircraft", DATASETS.get("aircraft").meta["layout"]
    tv_split = "trainval" if split == "train" else "test"
    _require(root, ["fgvc-aircraft-2013b/data/images", "fgvc-aircraft-2013b/data/variants.txt",
                    f"fgvc-aircraft-2013b/data/images_variant_{tv_split}.txt"], name, layout)
    with _rewritten(name, root, layout):
        ds = FGVCAircraft(str(root), split=tv_split, annotation_level="variant",
                          transform=_RGBThen(transform), download=False)
    _check_classes(ds, 100, name, root, layout)
    return _Checked(ds, name)


@DATASETS.register(
    "birdsnap", classes=500, metric="top1", group="specialized",
    layout=_ROOT_NOTE + "birdsnap/train/<class>/*.jpg and birdsnap/test/<class>/*.jpg "
    "(500 class folders; Birdsnap ships only URLs, so the images must be fetched and split "
    "beforehand)",
)
def build_birdsnap(root: Path, split: str, transform: Transform) -> Dataset:
    layout = DATASETS.get("birdsnap").meta["layout"]
    return read_imagefolder(root / "birdsnap", split, transform, "birdsnap", layout,
                            expected_classes=500)


CALTECH101_BACKGROUND = "BACKGROUND_Google"


def _caltech(root: Path, split: str, transform: Transform, *, name: str, folder: str,
             classes: int, per_class: int, drop: tuple[str, ...] = ()) -> Dataset:
    """Caltech's reference split: the first ``per_class`` images (sorted names) of every class
    train, the rest test. Deterministic without a seed because the file order is sorted.
    Class folders named in ``drop`` are left out (Caltech-101's background class)."""
    layout = DATASETS.get(name).meta["layout"]
    base = root / folder
    if not base.is_dir():
        raise _missing(base, name, layout)
    class_dirs = [d for d in _class_dirs(base) if d.name not in drop]
    if len(class_dirs) != classes:
        raise DatasetError(f"dataset {name!r}: {base} has {len(class_dirs)} class folders"
                           + (f" besides {', '.join(drop)}" if drop else "")
                           + f", expected {classes}. Expected layout: {layout}")
    files, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        images = _images_in(class_dir)
        chosen = images[:per_class] if split == "train" else images[per_class:]
        files.extend(chosen)
        labels.extend([label] * len(chosen))
    return FileListDataset(files, labels, transform, [d.name for d in class_dirs])


_CALTECH101_LAYOUT = (
    _ROOT_NOTE + "caltech101/101_ObjectCategories/<class>/image_*.jpg (101 object folders plus "
    f"{CALTECH101_BACKGROUND}, as 101_ObjectCategories.tar.gz extracts); the first 30 images "
    "of each class (sorted) train, the rest test"
)


@DATASETS.register(
    "caltech101", classes=101, metric="mean_per_class", group="general",
    layout=_CALTECH101_LAYOUT + f"; {CALTECH101_BACKGROUND} is not a class (101 classes)",
)
def build_caltech101(root: Path, split: str, transform: Transform) -> Dataset:
    # The reference code drops the background class (101 classes), although the paper's
    # Table 2 counts 102; caltech101_background keeps it.
    return _caltech(root, split, transform, name="caltech101",
                    folder="caltech101/101_ObjectCategories", classes=101, per_class=30,
                    drop=(CALTECH101_BACKGROUND,))


@DATASETS.register(
    "caltech101_background", classes=102, metric="mean_per_class", group="general",
    layout=_CALTECH101_LAYOUT + f"; {CALTECH101_BACKGROUND} is a class of its own (102 "
    "classes, as the paper's Table 2 counts)",
)
def build_caltech101_background(root: Path, split: str, transform: Transform) -> Dataset:
    return _caltech(root, split, transform, name="caltech101_background",
                    folder="caltech101/101_ObjectCategories", classes=102, per_class=30)


@DATASETS.register(
    "caltech256", classes=257, metric="mean_per_class", group="general",
    layout=_ROOT_NOTE + "caltech256/256_ObjectCategories/<NNN.class>/*.jpg (257 folders, "
    "257.clutter included); the first 60 images of each class (sorted) train, the rest test",
)
def build_caltech256(root: Path, split: str, transform: Transform) -> Dataset:
    return _caltech(root, split, transform, name="caltech256",
                    folder="caltech256/256_ObjectCategories", classes=257, per_class=60)


@DATASETS.register(
    "cars", classes=196, metric="top1", group="specialized",
    layout=_ROOT_NOTE + "stanford_cars/ with devkit/cars_meta.mat, devkit/cars_train_annos.mat, "
    "cars_train/*.jpg, cars_test_annos_withlabels.mat and cars_test/*.jpg",
)
def build_cars(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import StanfordCars

    name, layout = "cars", DATASETS.get("cars").meta["layout"]
    needed = (["devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_train"]
              if split == "train" else
              ["devkit/cars_meta.mat", "cars_test_annos_withlabels.mat", "cars_test"])
    _require(root / "stanford_cars", needed, name, layout)
    with _rewritten(name, root, layout):
        ds = StanfordCars(str(root), split=split, transform=_RGBThen(transform), download=False)
    _check_classes(ds, 196, name, root, layout)
    return _Checked(ds, name)


def _cifar(root: Path, split: str, transform: Transform, *, name: str, folder: str,
           classes: int) -> Dataset:
    from torchvision.datasets import CIFAR10, CIFAR100

    layout = DATASETS.get(name).meta["layout"]
    _require(root, [folder], name, layout)
    cls = CIFAR10 if classes == 10 else CIFAR100
    with _rewritten(name, root, layout):
        ds = cls(str(root), train=split == "train", transform=_RGBThen(transform),
                 download=False)
    _check_classes(ds, classes, name, root, layout)
    return _Checked(ds, name)


@DATASETS.register(
    "cifar10", classes=10, metric="top1", group="general",
    layout=_ROOT_NOTE + "cifar-10-batches-py/ as extracted from cifar-10-python.tar.gz "
    "(data_batch_1..5, test_batch, batches.meta)",
)
def build_cifar10(root: Path, split: str, transform: Transform) -> Dataset:
    return _cifar(root, split, transform, name="cifar10", folder="cifar-10-batches-py",
                  classes=10)


@DATASETS.register(
    "cifar100", classes=100, metric="top1", group="general",
    layout=_ROOT_NOTE + "cifar-100-python/ as extracted from cifar-100-python.tar.gz "
    "(train, test, meta)",
)
def build_cifar100(root: Path, split: str, transform: Transform) -> Dataset:
    return _cifar(root, split, transform, name="cifar100", folder="cifar-100-python",
                  classes=100)


@DATASETS.register(
    "dtd", classes=47, metric="top1", group="general",
    layout=_ROOT_NOTE + "dtd/dtd/images/<class>/*.jpg and dtd/dtd/labels/{train1,val1,test1}.txt "
    "(the dtd-r1.0.1.tar.gz archive extracted into <data root>/dtd); split 1, train+val train",
)
def build_dtd(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import DTD

    name, layout = "dtd", DATASETS.get("dtd").meta["layout"]
    parts = ["train", "val"] if split == "train" else ["test"]
    _require(root / "dtd" / "dtd", ["images"] + [f"labels/{p}1.txt" for p in parts], name, layout)
    with _rewritten(name, root, layout):
        sets = [DTD(str(root), split=p, partition=1, transform=_RGBThen(transform),
                    download=False) for p in parts]
    _check_classes(sets[0], 47, name, root, layout)
    return _Checked(ConcatDataset(sets) if len(sets) > 1 else sets[0], name)


@DATASETS.register(
    "flowers", classes=102, metric="mean_per_class", group="specialized",
    layout=_ROOT_NOTE + "flowers-102/jpg/image_*.jpg, flowers-102/imagelabels.mat and "
    "flowers-102/setid.mat; train+val train, test tests",
)
def build_flowers(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import Flowers102

    name, layout = "flowers", DATASETS.get("flowers").meta["layout"]
    _require(root / "flowers-102", ["jpg", "imagelabels.mat", "setid.mat"], name, layout)
    parts = ["train", "val"] if split == "train" else ["test"]
    with _rewritten(name, root, layout):
        sets = [Flowers102(str(root), split=p, transform=_RGBThen(transform), download=False)
                for p in parts]
    _check_classes(sets[0], 102, name, root, layout)
    return _Checked(ConcatDataset(sets) if len(sets) > 1 else sets[0], name)


@DATASETS.register(
    "food101", classes=101, metric="top1", group="specialized",
    layout=_ROOT_NOTE + "food-101/images/<class>/*.jpg and food-101/meta/{train,test}.json "
    "(food-101.tar.gz extracted)",
)
def build_food101(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import Food101

    name, layout = "food101", DATASETS.get("food101").meta["layout"]
    _require(root / "food-101", ["images", f"meta/{split}.json"], name, layout)
    with _rewritten(name, root, layout):
        try:
            ds = Food101(str(root), split=split, transform=_RGBThen(transform), download=False)
        except json.JSONDecodeError as exc:
            raise ValueError(f"food-101/meta/{split}.json is not valid JSON: {exc}") from None
    _check_classes(ds, 101, name, root, layout)
    return _Checked(ds, name)


@DATASETS.register(
    "pets", classes=37, metric="mean_per_class", group="specialized",
    layout=_ROOT_NOTE + "oxford-iiit-pet/images/*.jpg and "
    "oxford-iiit-pet/annotations/{trainval,test}.txt (images.tar.gz and annotations.tar.gz "
    "extracted); trainval train, test tests",
)
def build_pets(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import OxfordIIITPet

    name, layout = "pets", DATASETS.get("pets").meta["layout"]
    tv_split = "trainval" if split == "train" else "test"
    _require(root / "oxford-iiit-pet", ["images", f"annotations/{tv_split}.txt"], name, layout)
    with _rewritten(name, root, layout):
        ds = OxfordIIITPet(str(root), split=tv_split, target_types="category",
                           transform=_RGBThen(transform), download=False)
    _check_classes(ds, 37, name, root, layout)
    return _Checked(ds, name)


# --------------------------------------------------------------------------------------------
# Public entry points


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def build_dataset(name: str, data_root: str | Path | None, split: str,
                  transform: Transform) -> Dataset:
    """The ``split`` ("train" or "test") of dataset ``name``, yielding (image, int label).

    Args:
        name: a registered name (``DATASETS.names()``) or ``"imagefolder:<path>"``; a relative
            image-folder path is taken under ``data_root`` when one is given.
        data_root: folder holding the datasets in their standard layouts (see each
            ``dataset_info(name).layout``); ignored by built-in tasks.
        split: "train" or "test".
        transform: applied to each PIL RGB image (e.g. ``transforms.eval_transform(224)``).

    Raises:
        DatasetError: the dataset is missing (also a FileNotFoundError) or malformed; the
            message names the expected path and layout.
        KeyError: unknown dataset name (the message lists the known ones).
    """
    _check_split(split)
    root = Path(data_root).expanduser() if data_root is not None else None
    if name.startswith(IMAGEFOLDER_PREFIX):
        return read_imagefolder(_imagefolder_path(name, root), split, transform, name)
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
        classes = _imagefolder_classes(_imagefolder_path(name, root), name, IMAGEFOLDER_LAYOUT)
        return DatasetInfo(name, len(classes), "top1", "general", IMAGEFOLDER_LAYOUT)
    meta = DATASETS.get(name).meta
    return DatasetInfo(name, meta["classes"], meta["metric"], meta["group"], meta["layout"],
                       hflip=meta.get("hflip", True))


def normalization_stats(
    name: str, data_root: str | Path | None, image_size: int, interpolation: str,
    cache_dir: Path,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The per-channel mean/std of ``name``'s training split, computed once and cached.

    The pixels are the eval transform's before Normalize (resize, center crop) at the
    trial's size, so full finetuning normalises with statistics of what it sees at test time.
    The cache file (``cache_dir/<name>-<size>-<interpolation>.json``, written atomically) is
    shared by every trial on the dataset; a damaged one is recomputed.
    """
    from trainables.transforms import channel_stats, stats_transform

    safe = "".join(c if c.isalnum() or c in "_-." else "_" for c in name)[-80:]
    path = Path(cache_dir) / f"{safe}-{image_size}-{interpolation}.json"
    try:
        saved = json.loads(path.read_text())
        if saved.get("dataset") == name and len(saved["mean"]) == len(saved["std"]) == 3:
            return tuple(saved["mean"]), tuple(saved["std"])  # type: ignore[return-value]
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, OSError) and machine_error(exc):
            raise
    train = build_dataset(name, data_root, "train", stats_transform(image_size, interpolation))
    mean, std = channel_stats(train)
    atomic_write_text(path, json.dumps({"dataset": name, "image_size": image_size,
                                        "interpolation": interpolation, "images": len(train),
                                        "mean": mean, "std": std}, indent=1))
    return mean, std


# --------------------------------------------------------------------------------------------
# Getting the data: torchvision's own download code where it has one, directions elsewhere


def _tv_download(cls_name: str, *calls: dict[str, Any]) -> Callable[[Path], None]:
    """Runs torchvision's ``cls_name(root, download=True, **kwargs)`` once per ``calls``: its
    download checks the archive's MD5 and extracts it where that class (and our loader)
    reads it."""

    def fetch(root: Path) -> None:
        import torchvision.datasets as tv

        cls = getattr(tv, cls_name)
        for kwargs in calls or ({},):
            cls(str(root), download=True, **kwargs)

    fetch.__doc__ = f"torchvision.datasets.{cls_name}(..., download=True)"
    return fetch


#: Datasets torchvision's download code fetches into the layout the loaders above read.
DOWNLOADS: dict[str, Callable[[Path], None]] = {
    "aircraft": _tv_download("FGVCAircraft", {"split": "trainval"}),
    "caltech101": _tv_download("Caltech101"),
    "caltech101_background": _tv_download("Caltech101"),
    "caltech256": _tv_download("Caltech256"),
    "cifar10": _tv_download("CIFAR10", {"train": True}, {"train": False}),
    "cifar100": _tv_download("CIFAR100", {"train": True}, {"train": False}),
    "dtd": _tv_download("DTD", {"split": "train", "partition": 1}),
    "flowers": _tv_download("Flowers102"),
    "food101": _tv_download("Food101"),
    "pets": _tv_download("OxfordIIITPet"),
    "sun397": _tv_download("SUN397"),
}

#: Where to get what no download code here can fetch (and, for SUN397, the split files
#: torchvision's archive lacks).
WHERE_TO_GET: dict[str, str] = {
    "birdsnap": "Birdsnap ships a list of image URLs (birdsnap.com, get_birdsnap.py in "
                "birdsnap.tgz); fetch the images, then place them as train/ and test/ class "
                "folders (the test list is test_images.txt of the archive)",
    "cars": "torchvision's download of Stanford Cars no longer works (the original host is "
            "gone); a copy of the original archives (car_devkit.tgz, cars_train.tgz, "
            "cars_test.tgz, cars_test_annos_withlabels.mat) is kept on Kaggle and academic "
            "mirrors",
    "sun397": "the split files are not in torchvision's archive: Partitions.zip from the SUN "
              "database's page (vision.princeton.edu/projects/2010/SUN), extracted into "
              "SUN397/Partitions/",
}


def download(names: Sequence[str], data_root: str | Path,
             say: Callable[[str], None] = print) -> int:
    """Fetch, check and lay out each dataset of ``names`` under ``data_root``.

    A dataset with a torchvision download is fetched by it (MD5 checked), then opened as a
    trial would open it (both splits) to check the layout; every other one gets where to get it
    and the layout to put it in. Returns how many could not be made ready (0: all are).
    """
    root = Path(data_root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    not_ready = 0
    for name in names:
        if name == "imagenet":  # Table 3's sets
            say(f"imagenet: not downloadable here. {UPSTREAM_SETS}")
            not_ready += 1
            continue
        meta = DATASETS.get(name).meta  # an unknown name: KeyError listing the known ones
        if meta.get("builtin"):
            say(f"{name}: built in, nothing to download")
            continue
        fetch = DOWNLOADS.get(name)
        if fetch is None:
            say(f"{name}: no download code can fetch it. Get it: {WHERE_TO_GET[name]}.\n"
                f"    then lay it out as: {meta['layout']}")
            not_ready += 1
            continue
        say(f"{name}: downloading under {root} ({fetch.__doc__})")
        try:
            fetch(root)
        except (RuntimeError, OSError, ValueError) as exc:  # HTTP errors, MD5 mismatch
            say(f"{name}: download failed: {exc}")
            not_ready += 1
            continue
        try:
            sizes = [len(build_dataset(name, root, split, None)) for split in SPLITS]
        except DatasetError as exc:
            extra = f" {WHERE_TO_GET[name]}." if name in WHERE_TO_GET else ""
            say(f"{name}: downloaded, but not ready: {exc}.{extra}")
            not_ready += 1
            continue
        say(f"{name}: ready, {sizes[0]} train / {sizes[1]} test images")
    return not_ready


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trainables.datasets --layouts`` prints where each dataset is expected;
    ``--check DATA_ROOT [NAME ...]`` opens both splits of each and reports sizes or errors;
    ``--download NAME[,NAME] --data-root DIR`` fetches what torchvision's download code can
    (checked, in the loaders' layout) and says where to get the others."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m trainables.datasets", description=main.__doc__)
    parser.add_argument("--layouts", action="store_true", help="print each dataset's layout")
    parser.add_argument("--check", metavar="DATA_ROOT", help="open every dataset under DATA_ROOT")
    parser.add_argument("--download", metavar="NAME[,NAME]",
                        help="datasets to fetch (or 'all'; 'imagenet' for Table 3's sets)")
    parser.add_argument("--data-root", metavar="DIR", help="where --download puts them")
    parser.add_argument("names", nargs="*", help="datasets to show (default: all registered)")
    args = parser.parse_args(argv)
    if args.download:
        if not args.data_root:
            parser.error("--download needs --data-root DIR")
        wanted = [n.strip() for n in args.download.split(",") if n.strip()]
        if wanted == ["all"]:
            wanted = [n for n in DATASETS.names() if not DATASETS.get(n).meta.get("builtin")]
        try:
            return 1 if download(wanted, args.data_root) else 0
        except KeyError as exc:
            parser.error(str(exc))
    names = args.names or DATASETS.names() + ([] if args.check else ["imagenet"])
    failed = 0
    for name in names:
        if name == "imagenet":  # Table 3's sets, read by the checkpoint stage only
            print(f"imagenet: {UPSTREAM_SETS}")
            continue
        info = dataset_info(name, args.check)
        print(f"{name}: {info.classes} classes, metric {info.metric}, group {info.group}")
        if args.layouts or not args.check:
            print(f"    layout: {info.layout}")
        if args.check:
            try:
                sizes = [len(build_dataset(name, args.check, s, None)) for s in SPLITS]
                print(f"    ok: {sizes[0]} train / {sizes[1]} test images")
            except (DatasetError, KeyError) as exc:
                failed += 1
                print(f"    ERROR: {exc}")
    return 1 if failed else 0


# Built-in tasks (trainables.embedded) come after the paper's datasets and image folders.
for _task in embedded.TASKS:
    DATASETS.register(
        _task.name, classes=_task.classes, metric=_task.metric, group=_task.group, builtin=True,
        hflip=_task.hflip,
        layout=f"built in ({_task.source}); needs no files, the data root is ignored",
    )(embedded.builder(_task.load))

if __name__ == "__main__":
    raise SystemExit(main())
