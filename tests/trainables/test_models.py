"""Every registered architecture builds, runs forward, and exposes backbone and classifier."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from trainables import models

# 224-px architectures run at 64 px with batch 1 to stay cheap; torchvision's ResNets and
# MobileNetV1 pool adaptively, so the output shape does not depend on the input size.
SMALL_INPUT = {"resnet_tiny": (2, 3, 32, 32)}
DEFAULT_INPUT = (1, 3, 64, 64)


@pytest.fixture(params=models.ARCHITECTURES.names())
def arch(request) -> str:
    return request.param


@functools.lru_cache(maxsize=None)
def built(arch: str) -> nn.Module:
    """One eval-mode model per architecture, shared by the tests that only read it."""
    torch.manual_seed(0)
    return models.build_model(arch, 10).eval()


def _input(arch: str) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(SMALL_INPUT.get(arch, DEFAULT_INPUT))


def test_forward_gives_one_finite_logit_row_per_image(arch):
    model = built(arch)
    x = _input(arch)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (x.shape[0], 10)
    assert torch.isfinite(out).all()


def test_backbone_outputs_penultimate_features(arch):
    model = built(arch)
    net = models.backbone(model, arch)
    x = _input(arch)
    with torch.no_grad():
        feats = net(x)
    assert feats.shape == (x.shape[0], models.feature_dim(model, arch))
    assert torch.isfinite(feats).all()
    # a copy: the original keeps its classifier
    assert isinstance(getattr(model, models.classifier_name(arch)), nn.Linear)


def test_replace_classifier_gives_a_fresh_linear(arch):
    model = models.build_model(arch, 10)
    old = getattr(model, models.classifier_name(arch))
    out = models.replace_classifier(model, arch, 7)
    new = getattr(out, models.classifier_name(arch))
    assert out is model
    assert isinstance(new, nn.Linear) and new is not old
    assert (new.in_features, new.out_features) == (old.in_features, 7)
    assert new.bias is not None and (new.weight != 0).all()


def test_every_architecture_declares_its_facts(arch):
    assert models.classifier_name(arch) == "fc"
    assert models.input_size(arch) in (32, 224)


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(KeyError, match="resnet_tiny"):
        models.build_model("vgg19", 10)
