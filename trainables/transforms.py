"""Image transforms of the study, shaped like torchvision's classification reference presets.

Train: RandomResizedCrop + horizontal flip; eval: Resize(size * 256/224) + CenterCrop; both end
in ToTensor + ImageNet mean/std. At the paper's 224 px this is Resize(256) + CenterCrop(224).
RigL checkpoints were trained with bicubic resizing, so ``interpolation="bicubic"`` exists.
Inputs are PIL images already in RGB (datasets convert grayscale, not these transforms).
"""

from __future__ import annotations

from typing import Callable

from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from search_spaces.recipe import PAPER_CROP_SCALE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

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
) -> Callable:
    """Augmenting transform for full finetuning: random resized crop and horizontal flip.

    Args:
        crop_scale: the crop's share of the image area; the paper's (0.08, 1) crops the single
            object of a 32 px procedural image away, so the tiny study zooms less.
        hflip: mirror half the images. Only for datasets whose labels survive a mirror
            (``DatasetInfo.hflip``): a mirrored stripe at 30 degrees is one at 150 degrees,
            another class, and a mirrored digit is no digit.
    """
    mode = _interpolation(interpolation)
    crop = T.RandomResizedCrop(_check_size(image_size), scale=tuple(crop_scale),
                               interpolation=mode, antialias=True)
    flip = [T.RandomHorizontalFlip()] if hflip else []
    return T.Compose([crop, *flip, T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def eval_transform(image_size: int, interpolation: str = "bilinear") -> Callable:
    """Deterministic test transform: resize the short edge, center crop, normalize."""
    mode = _interpolation(interpolation)
    return T.Compose(
        [
            T.Resize(eval_resize_size(image_size), interpolation=mode, antialias=True),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def feature_transform(image_size: int, interpolation: str = "bilinear") -> Callable:
    """Transform for linear-finetuning features: the eval transform, no augmentation.

    Features are computed once per (backbone, dataset) and reused across seeds, which is only
    sound because this transform is deterministic.
    """
    return eval_transform(image_size, interpolation)


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
