"""Upstream pretraining: a short run learns and reports each epoch; its lr schedule."""

from __future__ import annotations

import torch

from search_spaces.recipe import Recipe
from trainables.datasets.procedural import ProceduralImages, ProceduralSpec
from trainables.models import build_model
from trainables.datasets.batched import TensorImages
from trainables.training.engine import Precision
from trainables.training.upstream import (make_loader, pretrain, upstream_datasets,
                                          upstream_transforms, warmup_step_decay)


def test_warmup_then_step_decay_per_step():
    recipe = Recipe(epochs=3, lr=0.1, batch_size=8, milestones=(1, 2), gamma=0.5)
    # 20 steps an epoch: warm-up over the first 2 steps, halved at epochs 1 and 2.
    factors = [warmup_step_decay(s, 20, recipe) for s in (0, 1, 19, 20, 39, 40)]
    assert factors == [0.5, 1.0, 1.0, 0.5, 0.5, 0.25]


def test_one_epoch_of_pretraining_beats_chance():
    torch.set_num_threads(1)
    # 4 texture classes (solid / horizontal / vertical stripes / checker), 1024 images, 64 steps
    spec = ProceduralSpec(
        num_classes=4, shapes=("square",), textures=("solid", "hstripes", "vstripes", "checker")
    )
    train_tf, eval_tf = upstream_transforms(spec.image_size)
    train = ProceduralImages(spec, "train", 256, seed=1, transform=train_tf)
    val = ProceduralImages(spec, "val", 32, seed=1, transform=eval_tf)
    torch.manual_seed(1)
    model = build_model("resnet_tiny", 4)
    rows = []
    recipe = Recipe(epochs=1, lr=0.05, batch_size=16, milestones=())
    out = pretrain(model, train, val, recipe, seed=1, report=rows.append)
    assert [r["epoch"] for r in rows] == [1]
    assert set(rows[0]) >= {"epoch", "train_loss", "val_accuracy"}
    assert out["val_accuracy"] == rows[0]["val_accuracy"]
    assert out["val_accuracy"] > 25.0 + 15.0  # chance is 25 %


def test_batch_augmented_nhwc_pretraining_learns_and_hands_back_a_default_layout_model():
    """``training: {augment: batch, channels_last: true}``: the train split as one tensor,
    augmented a batch at a time; the model beats chance and comes back NCHW (what the zoo's
    checkpoint writer and every reader expect)."""
    torch.set_num_threads(1)
    spec = ProceduralSpec(
        num_classes=4, shapes=("square",), textures=("solid", "hstripes", "vstripes", "checker")
    )
    train, val = upstream_datasets(spec, 256, 32, seed=1, augment="batch")
    assert isinstance(train, TensorImages) and train.images.dtype == torch.uint8
    assert len(make_loader(train, 16, True, 1)) == 64
    torch.manual_seed(1)
    model = build_model("resnet_tiny", 4)
    out = pretrain(model, train, val, Recipe(epochs=1, lr=0.05, batch_size=16, milestones=()),
                   seed=1, precision=Precision(channels_last=True))
    assert out["val_accuracy"] > 25.0 + 15.0  # chance is 25 %
    assert all(p.is_contiguous() for p in model.parameters())
