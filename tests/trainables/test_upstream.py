"""Upstream pretraining: a short run learns, reports each epoch, and evaluate() is top-1 %."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from search_spaces.recipe import Recipe
from trainables.models import build_model
from trainables.procedural import ProceduralImages, ProceduralSpec
from trainables.upstream import evaluate, pretrain, upstream_transforms


def test_evaluate_is_top1_percent():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    assert evaluate(model, DataLoader(TensorDataset(x, y), batch_size=3)) == pytest.approx(75.0)


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
