"""Upstream pretraining: a short run learns and reports each epoch; its lr schedule."""

from __future__ import annotations

import torch

from search_spaces.recipe import Recipe
from trainables.datasets.procedural import ProceduralImages, ProceduralSpec
from trainables.models import build_model
from trainables.training.upstream import pretrain, upstream_transforms, warmup_step_decay


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
