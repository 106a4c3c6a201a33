"""Checkpoint statistics (Appendix E, per-layer sparsity) and upstream accuracy (Table 3):
ImageNet val with ReaL labels and ImageNetV2 (each variant, their mean) read from a data root,
one line when absent or partial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from search_spaces.trial import TrialSpec
from trainables import checkpoints, models
from trainables.entry.checkpoint import run_checkpoint
from trainables.entry.context import TrialContext
from trainables.entry.trial import run_trial
from trainables.datasets import DatasetError
from trainables.datasets.transforms import eval_transform
from trainables.training.upstream_eval import (
    checkpoint_statistics,
    evaluate_imagenet,
    imagenet_v2,
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


# ImageNetV2 variant folder -> the class folder of each of its images; Constant(3) is right on
# 2 of 4 (matched-frequency), 1 of 4 (threshold-0.7) and 4 of 5 (top-images) images.
V2 = {"imagenetv2-matched-frequency-format-val": [3, 3, 7, 7],
      "imagenetv2-threshold0.7-format-val": [3, 0, 1, 2],
      "imagenetv2-top-images-format-val": [3, 3, 3, 3, 999]}
V2_HAND = {"accuracy_v2_matched_frequency": 50.0, "accuracy_v2_threshold07": 25.0,
           "accuracy_v2_top_images": 80.0}


def _v2(root: Path, *folders: str) -> None:
    for folder in folders:
        for i, c in enumerate(V2[folder]):
            _jpeg(root / "imagenetv2" / folder / str(c) / f"{i}.jpeg")


def test_imagenet_val_real_labels_and_v2(tmp_path):
    _imagenet(tmp_path)
    acc = evaluate_imagenet(Constant(3), tmp_path, eval_transform(8))
    assert acc.top1 == pytest.approx(100 / 1000) and acc.real is None and acc.v2 is None
    assert acc.v2_variants == {} and "ImageNetV2" not in acc.note
    # ReaL: class 3 is right for images 4 and 5; image 6 has no label and is left out
    real = [[i] for i in range(1000)]
    real[4] = [4, 3]
    real[5] = []
    (tmp_path / "imagenet" / "real.json").write_text(json.dumps(real))
    _v2(tmp_path, *V2)
    acc = evaluate_imagenet(Constant(3), tmp_path, eval_transform(8))
    assert acc.real == pytest.approx(100 * 2 / 999)
    assert acc.v2_variants == pytest.approx(V2_HAND)
    assert acc.v2 == pytest.approx((50.0 + 25.0 + 80.0) / 3)  # Table 3's: the mean of three
    assert acc.note == ("evaluated on ImageNet val, ReaL, ImageNetV2 matched-frequency, "
                        "threshold-0.7, top-images (1000 validation images)")


def test_two_imagenet_v2_variants_give_no_average_and_say_which_is_missing(tmp_path):
    _imagenet(tmp_path)
    _v2(tmp_path, "imagenetv2-matched-frequency-format-val", "imagenetv2-top-images-format-val")
    acc = evaluate_imagenet(Constant(3), tmp_path, eval_transform(8))
    assert acc.v2 is None
    assert acc.v2_variants == pytest.approx({k: v for k, v in V2_HAND.items()
                                             if "threshold" not in k})
    found, missing = acc.note.split("; ")
    assert "ImageNetV2 matched-frequency, top-images" in found and "threshold" not in found
    expected = tmp_path / "imagenetv2" / "imagenetv2-threshold0.7-format-val"
    assert missing == ("no ImageNetV2 average (the mean of its 3 variants): threshold-0.7 not "
                       f"found (expected {expected})")
    assert "\n" not in acc.note


def test_bad_layouts_are_bad_input(tmp_path):
    (tmp_path / "imagenet" / "val" / "n0").mkdir(parents=True)
    with pytest.raises(DatasetError, match="1 class folders, expected 1000"):
        evaluate_imagenet(Constant(0), tmp_path, eval_transform(8))
    with pytest.raises(Exception, match="no ReaL label|no validation image"):
        real_accuracy([1, 2], [[], []])
    # ImageNetV2's class folders straight under imagenetv2/: which variant is unknown
    _jpeg(tmp_path / "imagenetv2" / "3" / "0.jpeg")
    with pytest.raises(DatasetError, match="holds class folders itself.*matched-frequency"):
        imagenet_v2(tmp_path, None)
    _jpeg(tmp_path / "v2b" / "imagenetv2" / "imagenetv2-top-images-format-val" / "n01" / "0.jpg")
    with pytest.raises(DatasetError, match="'n01' is not a class index"):
        imagenet_v2(tmp_path / "v2b", None)


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
    ctx = TrialContext(out_dir=str(tmp_path), data_root=str(tmp_path))
    out = run_trial(run_checkpoint, spec, ctx, report=lambda r: None)
    assert out["status"] == "finished" and "accuracy" not in out  # None values are dropped
    assert "ImageNet validation not found" in out["upstream_eval"]
    assert out["filters_pruned_share"] > 0
    layers = json.loads(out["layer_stats_json"])
    assert layers["conv1.weight"][1] == pytest.approx(100 * 2 / model.conv1.weight.shape[0])


def _checkpoint_spec(tmp_path: Path) -> TrialSpec:
    """A dense resnet_tiny checkpoint whose classifier always says class 3 (its bias)."""
    torch.manual_seed(0)
    model = models.build_model("resnet_tiny", 1000)
    with torch.no_grad():
        model.fc.bias[3] = 1e4
    path = tmp_path / "dense.pth"
    checkpoints.save_reference_checkpoint(path, model, "resnet_tiny", "imagenet")
    return TrialSpec(stage="checkpoint", method="dense", sparsity=0, arch="resnet_tiny",
                     dataset="imagenet", seed=0, num_classes=1000, image_size=16,
                     checkpoint=str(path), checkpoint_hash="h")


def test_checkpoint_trial_records_each_imagenet_v2_variant_and_their_mean(tmp_path):
    _imagenet(tmp_path)
    _v2(tmp_path, *V2)
    spec, ctx = _checkpoint_spec(tmp_path), TrialContext(out_dir=str(tmp_path),
                                                         data_root=str(tmp_path))
    out = run_trial(run_checkpoint, spec, ctx, report=lambda r: None)
    assert out["status"] == "finished" and out["accuracy"] == pytest.approx(0.1)
    assert {k: out[k] for k in V2_HAND} == pytest.approx(V2_HAND)
    assert out["accuracy_v2"] == pytest.approx((50.0 + 25.0 + 80.0) / 3)
    # Two variants: each is recorded, the average is not, and the row says what is missing.
    (tmp_path / "imagenetv2" / "imagenetv2-threshold0.7-format-val").rename(tmp_path / "away")
    out = run_trial(run_checkpoint, spec, ctx, report=lambda r: None)
    assert "accuracy_v2" not in out and "accuracy_v2_threshold07" not in out
    assert out["accuracy_v2_top_images"] == pytest.approx(80.0)
    assert "ImageNetV2 matched-frequency, top-images" in out["upstream_eval"]
    assert "no ImageNetV2 average (the mean of its 3 variants): threshold-0.7 not found" in (
        out["upstream_eval"])
