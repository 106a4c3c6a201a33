"""Generic image folders (``imagefolder:<path>`` in a study; also Birdsnap's layout): a
``train/`` and a ``test/`` (or ``val/``) folder of class folders."""

from __future__ import annotations

from pathlib import Path

from common.catalog import IMAGEFOLDER_PREFIX
from common.errors import BadInput
from trainables.datasets.files import (
    IMAGE_EXTENSIONS,
    DatasetError,
    DatasetNotFoundError,
    FileListDataset,
    Transform,
    class_dirs,
    images_in,
    missing,
)

IMAGEFOLDER_LAYOUT = (
    "<path>/train/<class>/<image> and <path>/test/<class>/<image> (or val/ instead of test/); "
    "one folder per class, class index = position of the folder name in sorted order of train/"
)


def _splits(path: Path, name: str, layout: str) -> tuple[Path, Path]:
    if not path.is_dir():
        raise missing(path, name, layout)
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


def imagefolder_classes(path: Path, name: str, layout: str = IMAGEFOLDER_LAYOUT) -> list[str]:
    """The class folder names of ``train/``, sorted: their position is the class index."""
    train, _ = _splits(path, name, layout)
    classes = [p.name for p in class_dirs(train)]
    if not classes:
        raise DatasetError(
            f"dataset {name!r}: {train} has no class folders. Expected layout: {layout}"
        )
    if len(classes) < 2:
        raise DatasetError(
            f"dataset {name!r}: {train} has one class folder ({classes[0]}); a classifier "
            "needs at least 2 (with one, every prediction is right and the accuracy says "
            f"nothing). Expected layout: {layout}")
    return classes


def read_imagefolder(
    path: Path, split: str, transform: Transform, name: str, layout: str = IMAGEFOLDER_LAYOUT,
    expected_classes: int | None = None,
) -> FileListDataset:
    """A ``train/`` + ``test/`` (or ``val/``) folder of class folders as a FileListDataset.

    Class indices come from the sorted class folders of ``train/``, so both splits agree; a
    test class that train lacks, or a train class without images, is an error.
    """
    train_dir, test_dir = _splits(path, name, layout)
    classes = imagefolder_classes(path, name, layout)
    if expected_classes is not None and len(classes) != expected_classes:
        shown = ", ".join(classes[:8]) + (f", ... ({len(classes) - 8} more)"
                                          if len(classes) > 8 else "")
        raise DatasetError(
            f"dataset {name!r}: {train_dir} has {len(classes)} class folders ({shown}), but "
            f"the study declares {expected_classes} (datasets.{name}.classes): set "
            f"classes: {len(classes)} or fix the folder. Expected layout: {layout}")
    index = {c: i for i, c in enumerate(classes)}
    folder = train_dir if split == "train" else test_dir
    files: list[Path] = []
    labels: list[int] = []
    for class_dir in class_dirs(folder):
        if class_dir.name not in index:
            raise DatasetError(
                f"dataset {name!r}: class folder {class_dir} has no counterpart in {train_dir}. "
                f"Expected layout: {layout}"
            )
        images = images_in(class_dir)
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


def imagefolder_path(spec: str, data_root: Path | None) -> Path:
    """The folder of ``imagefolder:<path>``; a relative path is taken under the data root."""
    raw = spec[len(IMAGEFOLDER_PREFIX):].strip()
    if not raw:
        raise BadInput(f"dataset name {spec!r} lacks a path: use 'imagefolder:<path>'")
    path = Path(raw).expanduser()
    if not path.is_absolute() and data_root is not None:
        path = data_root / path
    return path
