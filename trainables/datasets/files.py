"""Reading a dataset's image files: RGB conversion, errors that name the file or the layout
expected, and datasets over lists of files or torchvision's classes.

Every dataset yields ``(transform(PIL RGB image), int label)``; a missing or malformed one is
a ``DatasetError`` naming the path that was expected and the layout, never torchvision's
"You can use download=True".
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from common.errors import BadInput, MissingInput, machine_error
from common.files import require_regular_file

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

Transform = Callable[[Image.Image], Any] | None


class DatasetError(BadInput):
    """A dataset is missing, malformed or unreadable; the message names path and layout.

    Bad input (``common.errors.BadInput``): the trial is recorded as failed, never retried.
    """


class DatasetNotFoundError(DatasetError, MissingInput):
    """The expected files of a dataset are not under the data root."""


# Modes whose pixels are more than 8 bits: PIL's convert("RGB") clips them to 255 (a 16-bit
# PNG turns all white), so they are scaled here, or refused where the scale is unknown.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_UNKNOWN_SCALE = {"I": "32-bit integer", "F": "32-bit float", "I;32": "32-bit integer",
                  "F;32": "32-bit float"}


def to_rgb(image: Image.Image, where: str) -> Image.Image:
    """``image`` as 8-bit RGB, read as a viewer would: 16-bit grey scaled by 1/257 (not
    clipped, as PIL's ``convert`` does), palettes, CMYK and alpha converted by PIL. 32-bit
    integer or float pixels have no scale PIL or torchvision knows: refused, naming ``where``."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode in _SIXTEEN_BIT:
        grey = np.asarray(image).astype(np.float32) / 257.0
        return Image.fromarray(grey.round().astype(np.uint8), mode="L").convert("RGB")
    if image.mode in _UNKNOWN_SCALE:
        raise DatasetError(
            f"image file {where} has {_UNKNOWN_SCALE[image.mode]} pixels (PIL mode "
            f"{image.mode!r}), whose range no reader knows; save it as an 8- or 16-bit PNG "
            "or a JPEG")
    try:
        return image.convert("RGB")
    except ValueError as exc:  # a mode PIL cannot convert (LAB, HSV...)
        raise DatasetError(f"image file {where} has PIL mode {image.mode!r}, which cannot be "
                           f"converted to RGB ({exc}); save it as a PNG or a JPEG") from None


class RGBThen:
    """Converts to RGB (``to_rgb``: grayscale, 16-bit, palette, CMYK, RGBA) before the user
    transform.

    A class, not a closure, so datasets stay picklable for DataLoader workers.
    """

    def __init__(self, transform: Transform) -> None:
        self.transform = transform

    def __call__(self, image: Image.Image) -> Any:
        image = to_rgb(image, getattr(image, "filename", "") or "of the dataset")
        return self.transform(image) if self.transform is not None else image


def bomb(path: object, exc: Exception) -> DatasetError:
    """A decompression bomb as bad input naming the file and PIL's limit."""
    return DatasetError(
        f"image file {path} was refused as a decompression bomb: {exc} (PIL's limit, "
        f"Image.MAX_IMAGE_PIXELS, is {Image.MAX_IMAGE_PIXELS:,} pixels); its header declares "
        "more pixels than a photo has: shrink the image or remove the file")


def open_rgb(path: Path) -> Image.Image:
    """Opens an image as 8-bit RGB (``to_rgb``), or raises a DatasetError naming the file:
    unreadable, not a regular file (a FIFO would block), or a header declaring more pixels
    than PIL's ``MAX_IMAGE_PIXELS`` (decoding it could take all memory)."""
    try:
        if os.path.lexists(path):  # a missing one is PIL's to name
            require_regular_file(path, "image file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return to_rgb(img, str(path))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise bomb(path, exc) from None
    except DatasetError:
        raise
    except BadInput as exc:
        raise DatasetError(str(exc)) from None
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
        except Image.DecompressionBombError as exc:
            raise bomb(f"{self.name} sample {index}", exc) from None
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
    """An image by its name; not only regular files: a FIFO or a broken link named like an
    image is listed, so reading it names it rather than skipping it without a word."""
    return not path.is_dir() and not path.name.startswith(".") and (
        path.suffix.lower() in IMAGE_EXTENSIONS
    )


def class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image(p))
