"""Image transforms of the study, shaped like torchvision's classification reference presets.

Train: RandomResizedCrop + horizontal flip; eval: Resize(size * 256/224) + CenterCrop; both end
in ToTensor + Normalize. At the paper's 224 px this is Resize(256) + CenterCrop(224).
Normalize uses ImageNet's mean/std unless given others: the reference code normalised full
finetuning with each dataset's own mean/std (``channel_stats`` over its training split, see
``datasets.normalization_stats``) and linear finetuning with ImageNet's.
RigL checkpoints were trained with bicubic resizing, so ``interpolation="bicubic"`` exists.
Inputs are PIL images already in RGB (datasets convert grayscale, not these transforms).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from search_spaces.recipe import PAPER_CROP_SCALE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Triple = tuple[float, float, float]

_INTERPOLATIONS = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
}


def _interpolation(name: str) -> InterpolationMode:
    try:
        return _INTERPOLATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown interpolation {name!r}; valid: {', '.join(_INTERPOLATIONS)}"
        ) from None


def _check_size(image_size: int) -> int:
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    return image_size


def eval_resize_size(image_size: int) -> int:
    """Side the short edge is resized to before the center crop (256 for 224)."""
    return round(_check_size(image_size) * 256 / 224)


def train_transform(
    image_size: int, interpolation: str = "bilinear", *,
    crop_scale: tuple[float, float] = PAPER_CROP_SCALE, hflip: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
) -> Callable:
    """Augmenting transform for full finetuning: random resized crop and horizontal flip.

    Args:
        crop_scale: the crop's share of the image area; the paper's (0.08, 1) crops the single
            object of a 32 px procedural image away, so the tiny study zooms less.
        hflip: mirror half the images. Only for datasets whose labels survive a mirror
            (``DatasetInfo.hflip``): a mirrored stripe at 30 degrees is one at 150 degrees,
            another class, and a mirrored digit is no digit.
        mean, std: per-channel normalisation (ImageNet's by default).
    """
    mode = _interpolation(interpolation)
    crop = T.RandomResizedCrop(_check_size(image_size), scale=tuple(crop_scale),
                               interpolation=mode, antialias=True)
    flip = [T.RandomHorizontalFlip()] if hflip else []
    return T.Compose([crop, *flip, T.ToTensor(), T.Normalize(tuple(mean), tuple(std))])


def eval_transform(image_size: int, interpolation: str = "bilinear", *,
                   mean: Sequence[float] = IMAGENET_MEAN,
                   std: Sequence[float] = IMAGENET_STD) -> Callable:
    """Deterministic test transform: resize the short edge, center crop, normalize."""
    return T.Compose([*stats_transform(image_size, interpolation).transforms,
                      T.Normalize(tuple(mean), tuple(std))])


def stats_transform(image_size: int, interpolation: str = "bilinear") -> Callable:
    """The eval transform before Normalize: the pixels a dataset's mean/std are taken over."""
    mode = _interpolation(interpolation)
    return T.Compose(
        [
            T.Resize(eval_resize_size(image_size), interpolation=mode, antialias=True),
            T.CenterCrop(image_size),
            T.ToTensor(),
        ]
    )


@torch.no_grad()
def channel_stats(dataset: Dataset, batch_size: int = 64,
                  num_workers: int = 0) -> tuple[Triple, Triple]:
    """Per-channel mean and standard deviation over every pixel of ``dataset``'s images.

    ``dataset`` yields ``(CHW tensor in [0, 1], label)`` (``stats_transform``). Sums are kept
    in float64, so a large split does not lose precision; the std is the population one.
    """
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    pixels = 0
    for images, _ in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        x = images.to(torch.float64).transpose(0, 1).reshape(images.shape[1], -1)
        total += x.sum(dim=1)
        squares += (x * x).sum(dim=1)
        pixels += x.shape[1]
    if pixels == 0:
        raise ValueError("cannot compute a mean/std over zero images")
    mean = total / pixels
    std = (squares / pixels - mean * mean).clamp_min(1e-12).sqrt()
    return (tuple(float(v) for v in mean), tuple(float(v) for v in std))  # type: ignore[return-value]


def feature_transform(image_size: int, interpolation: str = "bilinear", *,
                      mean: Sequence[float] = IMAGENET_MEAN,
                      std: Sequence[float] = IMAGENET_STD) -> Callable:
    """Transform for linear-finetuning features: the eval transform, no augmentation.

    Features are computed once per (backbone, dataset) and reused across seeds, which is only
    sound because this transform is deterministic.
    """
    return eval_transform(image_size, interpolation, mean=mean, std=std)


PRESETS: dict[str, Callable[[int, str], Callable]] = {
    "train": train_transform,
    "eval": eval_transform,
    "feature": feature_transform,
}


def build_transform(kind: str, image_size: int, interpolation: str = "bilinear") -> Callable:
    """The preset ``kind`` ("train", "eval" or "feature") at ``image_size`` px."""
    try:
        preset = PRESETS[kind]
    except KeyError:
        raise ValueError(
            f"unknown transform preset {kind!r}; valid: {', '.join(PRESETS)}"
        ) from None
    return preset(image_size, interpolation)
