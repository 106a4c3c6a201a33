"""A tiny pretrained model and loaders shared by the pruning-method tests (built once)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from search_spaces.recipe import Recipe
from trainables.datasets.procedural import ProceduralImages, ProceduralSpec
from trainables.models import build_model
from trainables.training.upstream import make_loader, pretrain, upstream_transforms

NUM_CLASSES = 8


@pytest.fixture(scope="session")
def tiny():
    """8-class procedural data (256 train / 128 val images) and a 1-epoch resnet_tiny."""
    torch.set_num_threads(1)
    spec = ProceduralSpec(num_classes=NUM_CLASSES)
    train_tf, eval_tf = upstream_transforms(spec.image_size)
    train = ProceduralImages(spec, "train", 32, seed=0, transform=train_tf)
    val = ProceduralImages(spec, "val", 16, seed=0, transform=eval_tf)
    model = build_model("resnet_tiny", NUM_CLASSES)
    pretrain(model, train, val, Recipe(epochs=1, lr=0.05, batch_size=32, milestones=()), seed=0)
    return SimpleNamespace(
        model=model,
        train_loader=make_loader(train, 32, True, 0),
        val_loader=make_loader(val, 128, False, 0),
    )


@pytest.fixture
def dense(tiny):
    """A fresh copy of the tiny dense model (tests prune it in place)."""
    return copy.deepcopy(tiny.model)
