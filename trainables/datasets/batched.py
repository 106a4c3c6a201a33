"""Training augmentation on whole batches of in-memory images: ``augment: batch``.

Why: at 32 px a tiny model's SGD step costs about what torchvision's per-image pipeline
(RandomResizedCrop, flip, ToTensor, Normalize through PIL) costs for its 64 images, so the
laptop study spent a third of its training time in Python per image. ``BatchAugment`` draws
each image's crop as ``RandomResizedCrop.get_params`` does (area share and log-uniform aspect
ratio, ten tries, then the central crop) and resamples all crops of a batch in one
``torchvision.ops.roi_align`` call (bilinear, averaging several samples per output pixel when
a crop is larger than the output), then flips and normalises the batch at once.

It is the same augmentation, not the same numbers: the random stream and the interpolation
differ from the per-image pipeline's, so a study's trial ids say which one it ran
(``augment`` in their params). It needs every image of a split at one size in memory (the
built-in tasks and the procedural upstream); a folder of images keeps the per-image pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.ops import roi_align

from common.errors import BadInput

#: ``RandomResizedCrop``'s default aspect-ratio range.
DEFAULT_RATIO = (3 / 4, 4 / 3)
_TRIES = 10


@dataclass(frozen=True)
class BatchAugment:
    """Random resized crop, horizontal flip and normalisation of a uint8 NCHW batch.

    Args:
        size: output side in pixels.
        scale: the crop's share of the image area (``RandomResizedCrop``'s ``scale``).
        ratio: range of the crop's aspect ratio (width / height), drawn log-uniformly.
        hflip: mirror half the images (only where labels survive a mirror).
        mean, std: per-channel normalisation of the [0, 1] pixels.
    """

    size: int
    scale: tuple[float, float]
    ratio: tuple[float, float] = DEFAULT_RATIO
    hflip: bool = True
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def crops(self, n: int, height: int, width: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 4)`` boxes ``x1, y1, x2, y2`` in pixels, drawn as ``RandomResizedCrop``."""
        area = height * width
        share = torch.empty(n, _TRIES).uniform_(*self.scale, generator=generator)
        logr = torch.empty(n, _TRIES).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]),
                                               generator=generator)
        aspect = torch.exp(logr)
        w = torch.round(torch.sqrt(area * share * aspect))
        h = torch.round(torch.sqrt(area * share / aspect))
        ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = ok.float().argmax(dim=1)  # the first try that fits, as the loop takes it
        rows = torch.arange(n)
        w, h = w[rows, first], h[rows, first]
        fits = ok.any(dim=1)
        cw, ch = self._central(height, width)
        w = torch.where(fits, w, torch.full_like(w, cw))
        h = torch.where(fits, h, torch.full_like(h, ch))
        u = torch.rand(n, 2, generator=generator)
        top = torch.where(fits, torch.floor(u[:, 0] * (height - h + 1)), (height - h) // 2)
        left = torch.where(fits, torch.floor(u[:, 1] * (width - w + 1)), (width - w) // 2)
        return torch.stack([left, top, left + w, top + h], dim=1)

    def _central(self, height: int, width: int) -> tuple[float, float]:
        """The fallback crop's (width, height): the whole image, cut to the ratio range."""
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            return float(width), float(round(width / min(self.ratio)))
        if in_ratio > max(self.ratio):
            return float(round(height * max(self.ratio))), float(height)
        return float(width), float(height)

    def __call__(self, images: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """The augmented float batch ``(N, C, size, size)`` of a uint8 ``(N, C, H, W)`` one."""
        n, channels, height, width = images.shape
        boxes = self.crops(n, height, width, generator)
        index = torch.arange(n, dtype=boxes.dtype)[:, None]
        out = roi_align(images.float(), torch.cat([index, boxes], dim=1),
                        output_size=(self.size, self.size), sampling_ratio=-1, aligned=True)
        if self.hflip:
            flip = torch.rand(n, generator=generator) < 0.5
            out = torch.where(flip[:, None, None, None], out.flip(-1), out)
        mean = torch.tensor(self.mean[:channels]).view(1, -1, 1, 1)
        std = torch.tensor(self.std[:channels]).view(1, -1, 1, 1)
        return out.div_(255.0).sub_(mean).div_(std)


@dataclass(frozen=True)
class TensorImages:
    """A training split held as one uint8 tensor, with the augmentation its batches get.

    ``len`` is its image count, so samplers built for datasets work on it.
    """

    images: torch.Tensor  # (N, 3, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    augment: BatchAugment

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def stack_images(dataset: Dataset, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of ``dataset`` (built with ``to_uint8`` as its transform) as one tensor.

    Raises BadInput naming the dataset when its images differ in size: batches of one
    tensor need one size (``augment: image`` reads such a split image by image).
    """
    images, labels = [], []
    for i in range(len(dataset)):  # type: ignore[arg-type]
        image, label = dataset[i]
        if images and image.shape != images[0].shape:
            raise BadInput(
                f"dataset {name!r}: image {i} is {tuple(image.shape[1:])} px, image 0 "
                f"{tuple(images[0].shape[1:])}; augment: batch needs one size for every image "
                "of a split (use augment: image for this dataset)")
        images.append(image)
        labels.append(int(label))
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def to_uint8(image) -> torch.Tensor:
    """A PIL RGB image as a uint8 CHW tensor: the transform ``stack_images`` reads with."""
    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)


class AugmentedBatches:
    """A train loader over ``TensorImages``: ``(augmented images, labels)`` batches in the
    sampler's order, a new order and new crops each pass.

    Augmentation draws from torch's global generator, as per-image transforms in a
    single-process DataLoader do, so seeding it per epoch replays an epoch exactly.
    """

    def __init__(self, data: TensorImages, batch_size: int, sampler: Iterable[int]) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data, self.batch_size, self.sampler = data, batch_size, sampler

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.as_tensor(list(self.sampler), dtype=torch.int64)
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            yield self.data.augment(self.data.images[idx]), self.data.labels[idx]
