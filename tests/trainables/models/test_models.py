"""The contract of every ``ARCHITECTURES`` entry: builds, runs forward and backward with finite
values, and exposes its classifier and a backbone of penultimate features.

Parametrized over the registry itself, so a new architecture is covered when it registers.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from trainables import models

# Inputs are at most 32 px (224-px architectures pool adaptively, so the output shape does not
# depend on the input size), batch 2 so BatchNorm can train on them.
MAX_SIDE = 32
BATCH = 2


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: two contend on a shared 2-core machine and run ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    side = min(models.input_size(arch), MAX_SIDE)
    return torch.randn(BATCH, 3, side, side)


def test_forward_gives_one_finite_logit_row_per_image(arch):
    model = built(arch)
    x = _input(arch)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (x.shape[0], 10)
    assert torch.isfinite(out).all()


def test_backward_gives_every_parameter_a_finite_gradient(arch):
    torch.manual_seed(0)
    model = models.build_model(arch, 10).train()
    x = _input(arch)
    loss = nn.functional.cross_entropy(model(x), torch.arange(x.shape[0]) % 10)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


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
    assert models.classifier_name(arch) == "fc"  # design.md: always fc today
    assert models.input_size(arch) in (32, 224)
    head = getattr(built(arch), models.classifier_name(arch))
    assert isinstance(head, nn.Linear) and head.out_features == 10


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(KeyError, match="resnet_tiny"):
        models.build_model("vgg19", 10)


def test_mobilenet_tiny_is_depthwise_separable_and_far_smaller_than_resnet_tiny():
    net = models.build_model("mobilenet_tiny", 64)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    depthwise = [c for c in convs if c.groups == c.in_channels > 1]
    # the stem, then each of the 5 blocks: a 3x3 depthwise and a 1x1 pointwise convolution
    assert len(convs) == 11 and len(depthwise) == 5
    assert all(c.kernel_size == (1, 1) for c in convs[2::2])
    assert [n for n, _ in net.named_children()] == ["features", "avgpool", "fc"]
    size = {a: sum(p.numel() for p in models.build_model(a, 64).parameters())
            for a in ("mobilenet_tiny", "resnet_tiny")}
    assert size["mobilenet_tiny"] * 3 < size["resnet_tiny"]
    assert models.feature_dim(net, "mobilenet_tiny") == 96
