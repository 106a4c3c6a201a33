import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from trainables.datasets.transforms import (
    build_transform,
    eval_resize_size,
    eval_transform,
    feature_transform,
    train_transform,
)


def test_eval_resize_matches_paper_at_224():
    assert eval_resize_size(224) == 256
    resize = eval_transform(224).transforms[0]
    assert isinstance(resize, T.Resize) and resize.size == 256


@pytest.mark.parametrize("make", [train_transform, eval_transform, feature_transform])
def test_output_shape_and_normalization(make):
    out = make(32)(Image.new("RGB", (50, 40), (124, 116, 104)))  # ~ImageNet mean colour
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert out.abs().max() < 0.05


def test_bicubic_and_unknown_interpolation():
    assert eval_transform(32, "bicubic").transforms[0].interpolation == InterpolationMode.BICUBIC
    assert train_transform(32, "bicubic").transforms[0].interpolation == InterpolationMode.BICUBIC
    with pytest.raises(ValueError, match="bilinear"):
        eval_transform(32, "nearest")


def test_feature_transform_is_deterministic():
    image = Image.effect_noise((40, 48), 50).convert("RGB")
    assert torch.equal(feature_transform(32)(image), feature_transform(32)(image))


def test_build_transform_presets():
    assert build_transform("eval", 16)(Image.new("RGB", (20, 20))).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="train"):
        build_transform("test", 16)


def test_train_transform_crop_scale_and_flip_follow_the_dataset():
    paper = train_transform(32)
    assert paper.transforms[0].scale == (0.08, 1.0)
    assert any(isinstance(t, T.RandomHorizontalFlip) for t in paper.transforms)
    tiny = train_transform(32, crop_scale=(0.6, 1.0), hflip=False)
    assert tiny.transforms[0].scale == (0.6, 1.0)
    assert not any(isinstance(t, T.RandomHorizontalFlip) for t in tiny.transforms)


def test_datasets_whose_labels_a_mirror_changes_are_never_flipped():
    from trainables.datasets import dataset_info

    # A mirrored stripe at 30 degrees is one at 150 degrees (another class); a mirrored digit
    # is no digit. Natural-image datasets keep the paper's flip.
    assert not dataset_info("fine_stripe_angle").hflip and not dataset_info("digits").hflip
    assert dataset_info("fine_shape_detail").hflip and dataset_info("textures").hflip
    assert dataset_info("pets").hflip and dataset_info("cifar10").hflip


def test_channel_stats_are_the_mean_and_std_of_every_pixel():
    from trainables.datasets.transforms import channel_stats

    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 4, 5, generator=g) for _ in range(7)]
    mean, std = channel_stats([(x, 0) for x in images], batch_size=3)
    pixels = torch.stack(images).transpose(0, 1).reshape(3, -1).double()
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), pixels.mean(1))
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), pixels.std(1, correction=0))


def test_normalisation_can_be_the_datasets_own():
    x = Image.new("RGB", (40, 40), (255, 0, 128))
    out = eval_transform(32, mean=(1.0, 0.0, 0.5), std=(0.5, 0.5, 0.5))(x)
    assert torch.allclose(out[:, 0, 0], torch.tensor([0.0, 0.0, (128 / 255 - 0.5) / 0.5]),
                          atol=1e-6)
    train = train_transform(32, mean=(1.0, 0.0, 0.5), std=(0.5, 0.5, 0.5))
    assert train.transforms[-1].mean == (1.0, 0.0, 0.5)
