"""``augment: batch``: the same crop distribution as torchvision's RandomResizedCrop, exact
resampling where a crop is the whole image, flips, normalisation and batches in order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from common.errors import BadInput
from trainables.datasets.batched import (AugmentedBatches, BatchAugment, TensorImages,
                                         stack_images, to_uint8)

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _images(n: int, side: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_a_crop_of_the_whole_image_is_totensor_and_normalize_exactly():
    images = _images(4)
    whole = BatchAugment(32, (1.0, 1.0), ratio=(1.0, 1.0), hflip=False, mean=MEAN, std=STD)
    out = whole(images)
    reference = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    for i in range(4):
        pil = Image.fromarray(images[i].permute(1, 2, 0).numpy())
        assert torch.allclose(out[i], reference(pil), atol=1e-6)


def test_crops_follow_random_resized_crop_bounds_and_distribution():
    aug = BatchAugment(32, (0.6, 1.0))
    boxes = aug.crops(20000, 37, 37, torch.Generator().manual_seed(0))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert boxes.min() >= 0 and boxes[:, 2:].max() <= 37
    assert (w == w.round()).all() and (h == h.round()).all()
    share = (w * h / 37**2).numpy()
    # rounding w and h to pixels moves the share a little outside [0.6, 1]
    assert share.min() > 0.57 and share.max() <= 1.0
    ratio = (w / h).numpy()
    assert ratio.min() > 3 / 4 - 0.05 and ratio.max() < 4 / 3 + 0.05
    torch.manual_seed(0)
    tv = np.array([T.RandomResizedCrop.get_params(torch.zeros(3, 37, 37), [0.6, 1.0],
                                                  [3 / 4, 4 / 3]) for _ in range(20000)])
    assert share.mean() == pytest.approx((tv[:, 2] * tv[:, 3]).mean() / 37**2, abs=0.01)
    assert boxes[:, 1].float().mean().item() == pytest.approx(tv[:, 0].mean(), abs=0.1)


def test_a_crop_that_never_fits_falls_back_to_torchvisions_central_crop():
    aug = BatchAugment(8, (0.9, 1.0), ratio=(1.0, 1.0))
    boxes = aug.crops(3, 4, 40)  # a square of 90 % of 4 x 40 px is 12 px: never fits
    i, j, h, w = T.RandomResizedCrop.get_params(torch.zeros(3, 4, 40), [0.9, 1.0], [1.0, 1.0])
    assert boxes.tolist() == [[j, i, j + w, i + h]] * 3


def test_flips_mirror_about_half_the_images_and_nothing_else():
    images = _images(200, side=8)
    aug = BatchAugment(8, (1.0, 1.0), ratio=(1.0, 1.0), hflip=True, mean=(0, 0, 0),
                       std=(1, 1, 1))
    out = aug(images, torch.Generator().manual_seed(1)) * 255
    same = (out - images.float()).abs().amax(dim=(1, 2, 3)) < 1e-3
    mirrored = (out - images.flip(-1).float()).abs().amax(dim=(1, 2, 3)) < 1e-3
    assert (same | mirrored).all()
    assert 70 < int(mirrored.sum()) < 130


def test_batches_follow_the_sampler_and_replay_under_the_same_seed():
    images = _images(10, side=16)
    labels = torch.arange(10)
    data = TensorImages(images, labels, BatchAugment(12, (0.5, 1.0)))
    order = [3, 1, 4, 0, 5, 9, 2, 6, 8, 7]
    loader = AugmentedBatches(data, 4, order)
    assert len(loader) == math.ceil(10 / 4) == 3
    torch.manual_seed(5)
    first = list(loader)
    torch.manual_seed(5)
    second = list(loader)
    assert [y.tolist() for _, y in first] == [order[0:4], order[4:8], order[8:10]]
    assert [x.shape for x, _ in first] == [(4, 3, 12, 12)] * 2 + [(2, 3, 12, 12)]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, second))


class _Mixed(Dataset):
    """Two images of different sizes, as a folder of photos has."""

    def __init__(self, transform):
        self.images = [Image.new("RGB", (32, 32)), Image.new("RGB", (40, 30))]
        self.transform = transform

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return self.transform(self.images[i]), i


def test_a_split_of_several_image_sizes_is_refused_naming_the_dataset():
    with pytest.raises(BadInput, match=r"dataset 'photos'.*augment: image"):
        stack_images(_Mixed(to_uint8), "photos")


def test_to_uint8_keeps_the_pixels_in_chw_order():
    pil = Image.fromarray(np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3))
    assert to_uint8(pil).tolist() == torch.arange(18).reshape(2, 3, 3).permute(2, 0, 1).tolist()
