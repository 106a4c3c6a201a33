"""The paper's 12 downstream datasets (its Table 2), each read from the data root in the
standard layout its ``layout`` text describes.

Nothing is downloaded while a study runs (``python -m trainables.datasets --download``
fetches beforehand what torchvision's download code can). Adding a dataset is its catalog
entry (``common.catalog``: classes, metric, group) and one decorated builder ``fn(root: Path,
split: str, transform)`` with its ``layout`` declared at registration; ``trainables.datasets``
collects these entries into ``DATASETS``.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset

from common import catalog
from trainables.datasets.files import (
    Checked,
    DatasetError,
    FileListDataset,
    RGBThen,
    Transform,
    check_classes,
    class_dirs,
    images_in,
    missing,
    require,
    rewritten,
)
from trainables.datasets.imagefolder import read_imagefolder
from trainables.registry import Registry

PAPER_DATASETS: Registry = Registry("dataset")


def _classes(name: str) -> int:
    """The classes a dataset's files must hold: the catalog's."""
    return catalog.CATALOG.dataset(name).classes

_ROOT_NOTE = "under the data root: "


@PAPER_DATASETS.register(
    "sun397",
    layout=_ROOT_NOTE + "SUN397/ClassName.txt (lines like /a/abbey), images at "
    "SUN397/<letter>/<class>/sun_*.jpg, and the official split files "
    "SUN397/Partitions/Training_01.txt and Testing_01.txt (partition 1, 50+50 images per class)",
)
def build_sun397(root: Path, split: str, transform: Transform) -> Dataset:
    # torchvision's SUN397 has no train/test split, so the official partition 1 is read here.
    name, layout = "sun397", PAPER_DATASETS.get("sun397").meta["layout"]
    base = root / "SUN397"
    require(base, ["ClassName.txt", "Partitions/Training_01.txt", "Partitions/Testing_01.txt"],
             name, layout)
    classes = [c.strip() for c in (base / "ClassName.txt").read_text().splitlines() if c.strip()]
    if len(classes) != _classes(name):
        raise DatasetError(f"dataset {name!r}: {base / 'ClassName.txt'} lists {len(classes)} "
                           f"classes, expected {_classes(name)}. Expected layout: {layout}")
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


@PAPER_DATASETS.register(
    "aircraft",
    layout=_ROOT_NOTE + "fgvc-aircraft-2013b/data/ as extracted from fgvc-aircraft-2013b.tar.gz "
    "(images/*.jpg, variants.txt, images_variant_trainval.txt, images_variant_test.txt); "
    "variant level (100 classes), trainval for training",
)
def build_aircraft(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import FGVCAircraft

    name, layout = "aircraft", PAPER_DATASETS.get("aircraft").meta["layout"]
    tv_split = "trainval" if split == "train" else "test"
    require(root, ["fgvc-aircraft-2013b/data/images", "fgvc-aircraft-2013b/data/variants.txt",
                    f"fgvc-aircraft-2013b/data/images_variant_{tv_split}.txt"], name, layout)
    with rewritten(name, root, layout):
        ds = FGVCAircraft(str(root), split=tv_split, annotation_level="variant",
                          transform=RGBThen(transform), download=False)
    check_classes(ds, _classes(name), name, root, layout)
    return Checked(ds, name)


@PAPER_DATASETS.register(
    "birdsnap",
    layout=_ROOT_NOTE + "birdsnap/train/<class>/*.jpg and birdsnap/test/<class>/*.jpg "
    "(500 class folders; Birdsnap ships only URLs, so the images must be fetched and split "
    "beforehand)",
)
def build_birdsnap(root: Path, split: str, transform: Transform) -> Dataset:
    layout = PAPER_DATASETS.get("birdsnap").meta["layout"]
    return read_imagefolder(root / "birdsnap", split, transform, "birdsnap", layout,
                            expected_classes=_classes("birdsnap"))


CALTECH101_BACKGROUND = "BACKGROUND_Google"


def _caltech(root: Path, split: str, transform: Transform, *, name: str, folder: str,
             per_class: int, drop: tuple[str, ...] = ()) -> Dataset:
    """Caltech's reference split: the first ``per_class`` images (sorted names) of every class
    train, the rest test. Deterministic without a seed because the file order is sorted.
    Class folders named in ``drop`` are left out (Caltech-101's background class)."""
    layout = PAPER_DATASETS.get(name).meta["layout"]
    base = root / folder
    if not base.is_dir():
        raise missing(base, name, layout)
    folders = [d for d in class_dirs(base) if d.name not in drop]
    classes = _classes(name)
    if len(folders) != classes:
        raise DatasetError(f"dataset {name!r}: {base} has {len(folders)} class folders"
                           + (f" besides {', '.join(drop)}" if drop else "")
                           + f", expected {classes}. Expected layout: {layout}")
    files, labels = [], []
    for label, class_dir in enumerate(folders):
        images = images_in(class_dir)
        chosen = images[:per_class] if split == "train" else images[per_class:]
        files.extend(chosen)
        labels.extend([label] * len(chosen))
    return FileListDataset(files, labels, transform, [d.name for d in folders])


_CALTECH101_LAYOUT = (
    _ROOT_NOTE + "caltech101/101_ObjectCategories/<class>/image_*.jpg (101 object folders plus "
    f"{CALTECH101_BACKGROUND}, as 101_ObjectCategories.tar.gz extracts); the first 30 images "
    "of each class (sorted) train, the rest test"
)


@PAPER_DATASETS.register(
    "caltech101",
    layout=_CALTECH101_LAYOUT + f"; {CALTECH101_BACKGROUND} is not a class (101 classes)",
)
def build_caltech101(root: Path, split: str, transform: Transform) -> Dataset:
    # The reference code drops the background class (101 classes), although the paper's
    # Table 2 counts 102; caltech101_background keeps it.
    return _caltech(root, split, transform, name="caltech101",
                    folder="caltech101/101_ObjectCategories", per_class=30,
                    drop=(CALTECH101_BACKGROUND,))


@PAPER_DATASETS.register(
    "caltech101_background",
    layout=_CALTECH101_LAYOUT + f"; {CALTECH101_BACKGROUND} is a class of its own (102 "
    "classes, as the paper's Table 2 counts)",
)
def build_caltech101_background(root: Path, split: str, transform: Transform) -> Dataset:
    return _caltech(root, split, transform, name="caltech101_background",
                    folder="caltech101/101_ObjectCategories", per_class=30)


@PAPER_DATASETS.register(
    "caltech256",
    layout=_ROOT_NOTE + "caltech256/256_ObjectCategories/<NNN.class>/*.jpg (257 folders, "
    "257.clutter included); the first 60 images of each class (sorted) train, the rest test",
)
def build_caltech256(root: Path, split: str, transform: Transform) -> Dataset:
    return _caltech(root, split, transform, name="caltech256",
                    folder="caltech256/256_ObjectCategories", per_class=60)


@PAPER_DATASETS.register(
    "cars",
    layout=_ROOT_NOTE + "stanford_cars/ with devkit/cars_meta.mat, devkit/cars_train_annos.mat, "
    "cars_train/*.jpg, cars_test_annos_withlabels.mat and cars_test/*.jpg",
)
def build_cars(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import StanfordCars

    name, layout = "cars", PAPER_DATASETS.get("cars").meta["layout"]
    needed = (["devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_train"]
              if split == "train" else
              ["devkit/cars_meta.mat", "cars_test_annos_withlabels.mat", "cars_test"])
    require(root / "stanford_cars", needed, name, layout)
    with rewritten(name, root, layout):
        ds = StanfordCars(str(root), split=split, transform=RGBThen(transform), download=False)
    check_classes(ds, _classes(name), name, root, layout)
    return Checked(ds, name)


def _cifar(root: Path, split: str, transform: Transform, *, name: str, folder: str) -> Dataset:
    from torchvision.datasets import CIFAR10, CIFAR100

    layout = PAPER_DATASETS.get(name).meta["layout"]
    require(root, [folder], name, layout)
    classes = _classes(name)
    cls = CIFAR10 if classes == 10 else CIFAR100
    with rewritten(name, root, layout):
        ds = cls(str(root), train=split == "train", transform=RGBThen(transform),
                 download=False)
    check_classes(ds, classes, name, root, layout)
    return Checked(ds, name)


@PAPER_DATASETS.register(
    "cifar10",
    layout=_ROOT_NOTE + "cifar-10-batches-py/ as extracted from cifar-10-python.tar.gz "
    "(data_batch_1..5, test_batch, batches.meta)",
)
def build_cifar10(root: Path, split: str, transform: Transform) -> Dataset:
    return _cifar(root, split, transform, name="cifar10", folder="cifar-10-batches-py")


@PAPER_DATASETS.register(
    "cifar100",
    layout=_ROOT_NOTE + "cifar-100-python/ as extracted from cifar-100-python.tar.gz "
    "(train, test, meta)",
)
def build_cifar100(root: Path, split: str, transform: Transform) -> Dataset:
    return _cifar(root, split, transform, name="cifar100", folder="cifar-100-python")


@PAPER_DATASETS.register(
    "dtd",
    layout=_ROOT_NOTE + "dtd/dtd/images/<class>/*.jpg and dtd/dtd/labels/{train1,val1,test1}.txt "
    "(the dtd-r1.0.1.tar.gz archive extracted into <data root>/dtd); split 1, train+val train",
)
def build_dtd(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import DTD

    name, layout = "dtd", PAPER_DATASETS.get("dtd").meta["layout"]
    parts = ["train", "val"] if split == "train" else ["test"]
    require(root / "dtd" / "dtd", ["images"] + [f"labels/{p}1.txt" for p in parts], name, layout)
    with rewritten(name, root, layout):
        sets = [DTD(str(root), split=p, partition=1, transform=RGBThen(transform),
                    download=False) for p in parts]
    check_classes(sets[0], _classes(name), name, root, layout)
    return Checked(ConcatDataset(sets) if len(sets) > 1 else sets[0], name)


@PAPER_DATASETS.register(
    "flowers",
    layout=_ROOT_NOTE + "flowers-102/jpg/image_*.jpg, flowers-102/imagelabels.mat and "
    "flowers-102/setid.mat; train+val train, test tests",
)
def build_flowers(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import Flowers102

    name, layout = "flowers", PAPER_DATASETS.get("flowers").meta["layout"]
    require(root / "flowers-102", ["jpg", "imagelabels.mat", "setid.mat"], name, layout)
    parts = ["train", "val"] if split == "train" else ["test"]
    with rewritten(name, root, layout):
        sets = [Flowers102(str(root), split=p, transform=RGBThen(transform), download=False)
                for p in parts]
    check_classes(sets[0], _classes(name), name, root, layout)
    return Checked(ConcatDataset(sets) if len(sets) > 1 else sets[0], name)


@PAPER_DATASETS.register(
    "food101",
    layout=_ROOT_NOTE + "food-101/images/<class>/*.jpg and food-101/meta/{train,test}.json "
    "(food-101.tar.gz extracted)",
)
def build_food101(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import Food101

    name, layout = "food101", PAPER_DATASETS.get("food101").meta["layout"]
    require(root / "food-101", ["images", f"meta/{split}.json"], name, layout)
    with rewritten(name, root, layout):
        try:
            ds = Food101(str(root), split=split, transform=RGBThen(transform), download=False)
        except json.JSONDecodeError as exc:
            raise ValueError(f"food-101/meta/{split}.json is not valid JSON: {exc}") from None
    check_classes(ds, _classes(name), name, root, layout)
    return Checked(ds, name)


@PAPER_DATASETS.register(
    "pets",
    layout=_ROOT_NOTE + "oxford-iiit-pet/images/*.jpg and "
    "oxford-iiit-pet/annotations/{trainval,test}.txt (images.tar.gz and annotations.tar.gz "
    "extracted); trainval train, test tests",
)
def build_pets(root: Path, split: str, transform: Transform) -> Dataset:
    from torchvision.datasets import OxfordIIITPet

    name, layout = "pets", PAPER_DATASETS.get("pets").meta["layout"]
    tv_split = "trainval" if split == "train" else "test"
    require(root / "oxford-iiit-pet", ["images", f"annotations/{tv_split}.txt"], name, layout)
    with rewritten(name, root, layout):
        ds = OxfordIIITPet(str(root), split=tv_split, target_types="category",
                           transform=RGBThen(transform), download=False)
    check_classes(ds, _classes(name), name, root, layout)
    return Checked(ds, name)
