"""Reading a dataset's image files: RGB conversion, errors that name the file or the layout
expected, and datasets over lists of files or torchvision's classes.

Every dataset yields ``(transform(PIL RGB image), int label)``; a missing or malformed one is
a ``DatasetError`` naming the path that was expected and the layout, never torchvision's
"You can use download=True".
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from PIL import Image
from torch.utils.data import Dataset

from common.errors import BadInput, MissingInput, machine_error

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

Transform = Callable[[Image.Image], Any] | None


class DatasetError(BadInput):
    """A dataset is missing, malformed or unreadable; the message names path and layout.

    Bad input (``common.errors.BadInput``): the trial is recorded as failed, never retried.
    """


class DatasetNotFoundError(DatasetError, MissingInput):
    """The expected files of a dataset are not under the data root."""


class RGBThen:
    """Converts to RGB (grayscale, palette, CMYK, RGBA) before the user transform.

    A class, not a closure, so datasets stay picklable for DataLoader workers.
    """

    def __init__(self, transform: Transform) -> None:
        self.transform = transform

    def __call__(self, image: Image.Image) -> Any:
        if image.mode != "RGB":
            image = image.convert("RGB")
        return self.transform(image) if self.transform is not None else image


def open_rgb(path: Path) -> Image.Image:
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
        image = open_rgb(self.files[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


class Checked(Dataset):
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


def missing(path: Path, name: str, layout: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"dataset {name!r}: expected {path}, which does not exist. Expected layout: {layout}"
    )


def require(root: Path, relative: Sequence[str], name: str, layout: str) -> None:
    """Raises DatasetNotFoundError for the first of ``root/relative`` that does not exist."""
    for rel in relative:
        path = root / rel
        if not path.exists():
            raise missing(path, name, layout)


@contextlib.contextmanager
def rewritten(name: str, root: Path, layout: str) -> Iterator[None]:
    """Turns torchvision's "not found / corrupted, use download=True" into a DatasetError."""
    try:
        yield
    except DatasetError:
        raise
    except FileNotFoundError as exc:
        absent = exc.filename or root
        raise DatasetNotFoundError(
            f"dataset {name!r}: expected {absent}, which does not exist (under data root "
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


def check_classes(ds: Any, expected: int, name: str, root: Path, layout: str) -> None:
    classes = getattr(ds, "classes", None)
    if classes is not None and len(classes) != expected:
        raise DatasetError(
            f"dataset {name!r} under {root} has {len(classes)} classes, expected {expected}. "
            f"Expected layout: {layout}"
        )


def is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and (
        path.suffix.lower() in IMAGE_EXTENSIONS
    )


def class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image(p))
