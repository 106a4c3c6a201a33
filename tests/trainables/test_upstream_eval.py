"""Checkpoint statistics (Appendix E, per-layer sparsity) and upstream accuracy (Table 3):
ImageNet val with ReaL labels and ImageNetV2 read from a data root, one line when absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from search_spaces.trial import TrialSpec
from trainables import checkpoints, models, trials
from trainables.context import TrialContext
from trainables.datasets import DatasetError
from trainables.transforms import eval_transform
from trainables.upstream_eval import (
    checkpoint_statistics,
    evaluate_imagenet,
    real_accuracy,
)


def test_statistics_per_layer_and_fully_pruned_filters():
    conv = torch.ones(4, 2, 3, 3)
    conv[0] = 0  # one filter of four fully pruned
    conv[1, 0] = 0  # half of another: not fully pruned
    fc = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    stats = checkpoint_statistics({"c.weight": conv, "fc.weight": fc}, ["c.weight", "fc.weight"])
    assert stats["filters_pruned_share"] == pytest.approx(0.25)
    zeros, total = 18 + 9 + 3, 72 + 4
    assert stats["sparsity_measured"] == pytest.approx(100 * zeros / total)
    layers = json.loads(stats["layer_stats_json"])
    assert layers["c.weight"] == [pytest.approx(100 * 27 / 72), 25.0]
    assert layers["fc.weight"] == [75.0, None]


class Constant(nn.Module):
    """Predicts class ``k`` for every image."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 1000)
        out[:, self.k] = 1.0
        return out + self.dummy


def _jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (10, 10), (120, 30, 60)).save(path)


def _imagenet(root: Path) -> None:
    """1000 wnid folders, one image each; image N belongs to class N - 1 (sorted wnids)."""
    for c in range(1000):
        _jpeg(root / "imagenet" / "val" / f"n{c:08d}" / f"ILSVRC2012_val_{c + 1:08d}.JPEG")


def test_missing_imagenet_is_one_line_not_an_error(tmp_path):
    acc = evaluate_imagenet(Constant(3), tmp_path, eval_transform(8))
    assert acc.top1 is None and acc.real is None and acc.v2 is None
    assert str(tmp_path / "imagenet" / "val") in acc.note and "\n" not in acc.note
    assert evaluate_imagenet(Constant(3), None, eval_transform(8)).top1 is None


def test_imagenet_val_real_labels_and_v2(tmp_path):
    _imagenet(tmp_path)
    acc = evaluate_imagenet(Constant(3), tmp_path, eval_transform(8))
    assert acc.top1 == pytest.approx(100 / 1000) and acc.real is None and acc.v2 is None
    # ReaL: class 3 is right for images 4 and 5; image 6 has no label and is left out
    real = [[i] for i in range(1000)]
    real[4] = [4, 3]
    real[5] = []
    (tmp_path / "imagenet" / "real.json").write_text(json.dumps(real))
    for i in range(4):  # ImageNetV2: folders are class indices; two of four images of class 3
        _jpeg(tmp_path / "imagenetv2" / ("3" if i < 2 else "7") / f"{i}.jpeg")
    acc = evaluate_imagenet(Constant(3), tmp_path, eval_transform(8))
    assert acc.real == pytest.approx(100 * 2 / 999)
    assert acc.v2 == pytest.approx(50.0)
    assert "ReaL" in acc.note and "ImageNetV2" in acc.note


def test_bad_layouts_are_bad_input(tmp_path):
    (tmp_path / "imagenet" / "val" / "n0").mkdir(parents=True)
    with pytest.raises(DatasetError, match="1 class folders, expected 1000"):
        evaluate_imagenet(Constant(0), tmp_path, eval_transform(8))
    with pytest.raises(Exception, match="no ReaL label|no validation image"):
        real_accuracy([1, 2], [[], []])


def test_checkpoint_trial_records_statistics_and_says_why_there_is_no_accuracy(tmp_path):
    torch.manual_seed(0)
    model = models.build_model("resnet_tiny", 1000)
    with torch.no_grad():
        model.conv1.weight[:2] = 0  # two fully pruned stem filters
    path = tmp_path / "dense.pth"
    checkpoints.save_reference_checkpoint(path, model, "resnet_tiny", "imagenet")
    spec = TrialSpec(stage="checkpoint", method="dense", sparsity=0, arch="resnet_tiny",
                     dataset="imagenet", seed=0, num_classes=1000, image_size=16,
                     checkpoint=str(path), checkpoint_hash="h")
    out = trials.run_trial(spec, TrialContext(out_dir=str(tmp_path), data_root=str(tmp_path)),
                           report=lambda r: None)
    assert out["status"] == "finished" and "accuracy" not in out  # None values are dropped
    assert "ImageNet validation not found" in out["upstream_eval"]
    assert out["filters_pruned_share"] > 0
    layers = json.loads(out["layer_stats_json"])
    assert layers["conv1.weight"][1] == pytest.approx(100 * 2 / model.conv1.weight.shape[0])
