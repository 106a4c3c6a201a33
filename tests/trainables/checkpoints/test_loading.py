"""``load_checkpoint``'s sparsity check and log, and ``build_backbone_model``."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from torch import nn

from tests.trainables.checkpoints.samples import ARCH, assert_same_weights, pruned_tiny
from trainables import checkpoints as ck


def _fc_only(tmp_path, zeros: int):
    w = torch.arange(1, 1001, dtype=torch.float32).reshape(10, 100)
    w.view(-1)[:zeros] = 0
    path = tmp_path / "fc.pt"
    torch.save({"fc.weight": w, "fc.bias": torch.ones(10)}, path)
    return path


def test_expected_sparsity_within_one_point_is_accepted(tmp_path):
    path = _fc_only(tmp_path, 906)
    ckpt = ck.load_checkpoint(path, expect_sparsity=90)
    assert ckpt.sparsity == pytest.approx(90.6)
    assert ckpt.arch is None  # no registered architecture is just a classifier


def test_expected_sparsity_off_by_more_than_one_point_is_refused(tmp_path):
    path = _fc_only(tmp_path, 800)
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path, expect_sparsity=90)
    message = str(err.value)
    assert str(path) in message and "80.00" in message and "90" in message


def test_build_backbone_model_checks_every_key(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    ckpt = dataclasses.replace(ck.load_checkpoint(path), arch="resnet18")
    with pytest.raises(ValueError, match=r"does not fit architecture 'resnet18'.*missing keys"):
        ck.build_backbone_model(ckpt)


def test_build_backbone_model_same_and_new_classifier(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    ckpt = ck.load_checkpoint(path, arch=ARCH)

    same = ck.build_backbone_model(ckpt)
    assert_same_weights(same.state_dict(), model.state_dict())

    new = ck.build_backbone_model(ckpt, num_classes=5)
    assert isinstance(new.fc, nn.Linear) and new.fc.out_features == 5 and new.fc.in_features == 64
    assert (new.fc.weight != 0).all()  # fresh and dense
    backbone = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    new_backbone = {k: v for k, v in new.state_dict().items() if not k.startswith("fc.")}
    assert_same_weights(new_backbone, backbone)
    assert set(ck.backbone_masks(ckpt)) == set(ckpt.masks) - {"fc.weight"}


def test_load_logs_format_arch_and_sparsity(tmp_path, caplog):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    with caplog.at_level(logging.INFO, logger="trainables.checkpoints"):
        ckpt = ck.load_checkpoint(path)
    text = caplog.text
    assert "format=reference" in text and "arch=resnet_tiny" in text
    assert f"{ckpt.sparsity:.2f}%" in text
