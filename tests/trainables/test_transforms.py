import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from trainables.transforms import (
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
