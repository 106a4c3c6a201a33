"""``save_reference_checkpoint``: atomic, with its extra entries."""

from __future__ import annotations

import os

import pytest
import torch

from tests.trainables.checkpoints.samples import ARCH, pruned_tiny
from trainables import checkpoints as ck


def test_save_reference_checkpoint_is_atomic_and_keeps_extra(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "zoo" / "gmp-80.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet", extra={"method": "gmp", "epoch": 3})
    assert os.listdir(path.parent) == ["gmp-80.pt"]
    raw = torch.load(path, weights_only=True)
    assert raw["model_config"] == {"arch": ARCH, "dataset": "imagenet"}
    assert raw["method"] == "gmp" and raw["epoch"] == 3
    with pytest.raises(ValueError, match="model_config"):
        ck.save_reference_checkpoint(path, model, ARCH, "imagenet", extra={"model_config": {}})
