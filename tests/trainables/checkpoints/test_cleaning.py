"""The shared cleaning: wrapped layers' masks multiplied in, a 1x1-convolution classifier
read as a Linear, prunable weights named as the masks module names them."""

from __future__ import annotations

import pytest
import torch

from tests.trainables.checkpoints.samples import ARCH, NUM_CLASSES, assert_same_weights, pruned_tiny
from trainables import checkpoints as ck
from trainables import models
from trainables.models import masks as masks_lib


def test_wrapped_layers_multiply_their_masks_in(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "wrapped.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet", wrapped=True, module_prefix=True)
    raw = torch.load(path, weights_only=True)
    sd = raw["model_state_dict"]
    assert "module.conv1._layer.weight" in sd and "module.conv1._weight_mask" in sd
    assert "module.fc._layer.bias" in sd and "module.fc._bias_mask" in sd
    # The reference wrapper may keep stale values under a zero mask: they must not survive.
    key = "module.layer1.0.conv1._layer.weight"
    mask = sd["module.layer1.0.conv1._weight_mask"]
    sd[key] = torch.where(mask == 0, torch.full_like(sd[key], 3.0), sd[key])
    sd["module.fc._bias_mask"][0] = 0.0
    torch.save(raw, path)

    ckpt = ck.load_checkpoint(path)

    want = dict(model.state_dict())
    want["fc.bias"] = want["fc.bias"].clone()
    want["fc.bias"][0] = 0.0
    assert_same_weights(ckpt.state_dict, want)
    for k in ckpt.state_dict:
        assert "_layer" not in k and "_mask" not in k and not k.startswith("module.")


def test_str_style_conv_classifier_is_read_as_linear(tmp_path):
    model, _, _ = pruned_tiny()
    sd = dict(model.state_dict())
    fc_weight = sd["fc.weight"]
    sd["fc.weight"] = fc_weight.reshape(NUM_CLASSES, 64, 1, 1).clone()
    del sd["fc.bias"]  # STR's 1x1 classifier convolution has no bias
    path = tmp_path / "str.pt"
    ck.save_reference_checkpoint(path, sd, ARCH, "imagenet", wrapped=True, module_prefix=True)

    ckpt = ck.load_checkpoint(path, expect_sparsity=80)

    assert ckpt.state_dict["fc.weight"].shape == (NUM_CLASSES, 64)
    assert torch.equal(ckpt.state_dict["fc.weight"], fc_weight)
    assert torch.equal(ckpt.state_dict["fc.bias"], torch.zeros(NUM_CLASSES))
    net = ck.build_backbone_model(ckpt)
    assert torch.equal(net.fc.weight.detach(), fc_weight)


@pytest.mark.parametrize("arch", models.ARCHITECTURES.names())
def test_prunable_weight_names_match_the_masks_module(arch):
    with torch.device("meta"):
        model = models.build_model(arch, 3)
    assert ck.prunable_weight_names(model.state_dict()) == masks_lib.prunable_names(model)
