"""Masks: which weights are prunable, counting zeros, keeping zeros at zero."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainables.models import masks


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3, bias=False),  # 54 weights
        nn.BatchNorm2d(3),
        nn.Flatten(),
        nn.Linear(4, 5),  # 20 weights
    )
    with torch.no_grad():
        net[0].weight.view(-1)[:27] = 0.0  # half of the conv
        net[3].weight.view(-1)[:5] = 0.0  # a quarter of the linear
    return net


def test_prunable_names_are_conv_and_linear_weights():
    net = tiny_net()
    assert masks.prunable_names(net) == ["0.weight", "3.weight"]
    assert masks.prunable_names(net, exclude=["3"]) == ["0.weight"]


def test_masks_of_marks_kept_weights():
    net = tiny_net()
    got = masks.masks_of(net)
    assert set(got) == {"0.weight", "3.weight"}
    for name, m in got.items():
        assert m.dtype == torch.bool
        assert torch.equal(m, dict(net.named_parameters())[name] != 0)
    assert int((~got["0.weight"]).sum()) == 27 and int((~got["3.weight"]).sum()) == 5


def test_global_sparsity_hand_count():
    net = tiny_net()
    assert masks.global_sparsity(net) == pytest.approx((27 + 5) / (54 + 20))
    assert masks.global_sparsity(net, exclude=["0"]) == pytest.approx(5 / 20)
    assert masks.count_zeros(dict(net.named_parameters()), ["0.weight"]) == (27, 54)
    assert masks.layer_sparsity(dict(net.named_parameters()), ["3.weight"]) == {
        "3.weight": pytest.approx(0.25)
    }


def test_apply_masks_zeros_exactly_the_masked_entries():
    net = tiny_net()
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    m = masks.masks_of(net)
    with torch.no_grad():  # what an optimizer step does: revive every weight
        for p in net.parameters():
            p.add_(1.0)
    masks.apply_masks(net, m)
    after = dict(net.named_parameters())
    for name, mask in m.items():
        assert torch.equal(after[name] == 0, ~mask), name
        assert torch.equal(after[name][mask], before[name][mask] + 1.0), name
    # parameters without a mask are untouched
    assert torch.equal(after["1.weight"], before["1.weight"] + 1.0)
    assert torch.equal(after["3.bias"], before["3.bias"] + 1.0)


def test_apply_masks_on_an_empty_mask_changes_nothing():
    net = tiny_net()
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    masks.apply_masks(net, {})
    for k, v in net.named_parameters():
        assert torch.equal(v, before[k])
