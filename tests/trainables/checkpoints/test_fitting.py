"""Fitting to an architecture: weights of another one are refused naming the keys; the
file's and the caller's architecture must agree."""

from __future__ import annotations

import pytest
import torch

from tests.trainables.checkpoints.samples import ARCH, fake_state_dict, pruned_tiny
from trainables import checkpoints as ck


def test_resnet18_weights_do_not_fit_resnet_tiny_and_the_error_names_keys(tmp_path):
    path = tmp_path / "r18.pt"
    torch.save(fake_state_dict("resnet18"), path)
    assert ck.load_checkpoint(path).arch == "resnet18"  # inferred from keys and shapes
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path, arch="resnet_tiny")
    message = str(err.value)
    assert "'resnet_tiny'" in message
    assert "conv1.weight: checkpoint [64, 3, 7, 7] vs model [16, 3, 3, 3]" in message
    assert "unexpected keys" in message and "layer1.1." in message


def test_file_and_caller_architectures_must_agree(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    with pytest.raises(ValueError, match="'resnet_tiny'.*'resnet18'"):
        ck.load_checkpoint(path, arch="resnet18")
    with pytest.raises(ValueError, match="'vgg19', which is not registered"):
        ck.load_checkpoint(path, arch="vgg19")
