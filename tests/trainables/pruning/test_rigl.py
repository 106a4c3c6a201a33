"""RigL: ERK densities, constant per-layer counts with a changing mask, and the 5x budget.

The shared contract (target reached, masks, result) is checked in test_contract.
"""

from __future__ import annotations

import math

import pytest

from trainables.pruning import METHODS
from trainables.pruning.rigl import RigLConfig, erk_counts, erk_densities

SHAPES = {
    "conv1.weight": (16, 3, 3, 3),
    "layer1.weight": (16, 16, 3, 3),
    "layer4.weight": (64, 64, 3, 3),
    "fc.weight": (10, 64),
}


def test_erk_gives_denser_small_layers_and_the_global_target():
    dens = erk_densities(SHAPES, 0.9)
    assert dens["conv1.weight"] > dens["layer1.weight"] > dens["layer4.weight"]
    assert dens["fc.weight"] > dens["layer4.weight"]
    assert all(0 < d <= 1 for d in dens.values())
    numel = {n: math.prod(s) for n, s in SHAPES.items()}
    kept = sum(dens[n] * numel[n] for n in SHAPES)
    assert kept == pytest.approx(0.1 * sum(numel.values()))
    # ERK proportionality holds among the layers that are not capped at dense
    raw = {n: sum(s) / math.prod(s) for n, s in SHAPES.items()}
    sparse = [n for n in SHAPES if dens[n] < 1]
    ratios = {dens[n] / raw[n] for n in sparse}
    assert max(ratios) == pytest.approx(min(ratios))


def test_erk_caps_layers_at_dense_and_redistributes():
    shapes = {"tiny": (2, 1, 1, 1), "big": (256, 256, 3, 3)}
    dens = erk_densities(shapes, 0.5)
    assert dens["tiny"] == 1.0
    counts = erk_counts(shapes, 0.5)
    total = sum(math.prod(s) for s in shapes.values())
    assert sum(counts.values()) == round(0.5 * total)


def test_rigl_1x_moves_the_mask_with_constant_layer_counts(tiny, dense):
    cfg = RigLConfig(steps=20, frequency=4, finetune_fraction=0.2, alpha=0.3)
    res = METHODS.get("rigl_erk1x").fn(dense, tiny.train_loader, tiny.val_loader, 0.8, cfg, seed=0)
    info = res.info
    assert info["mask_updates"] == 3  # t = 4, 8, 12 (< T_end = 16)
    assert info["connections_moved"] > 0 and info["mask_changed_vs_initial"] > 0
    for update in info["update_history"]:
        assert update["active"] == info["layer_counts"]
    assert {n: int(m.sum()) for n, m in res.masks.items()} == info["layer_counts"]
    dens = info["erk_densities"]
    assert dens["conv1.weight"] > dens["layer4.0.conv2.weight"]


def test_rigl_5x_trains_five_times_longer(tiny, dense):
    cfg = RigLConfig(steps=4, frequency=4)
    res = METHODS.get("rigl_erk5x").fn(dense, tiny.train_loader, tiny.val_loader, 0.9, cfg, seed=0)
    assert res.info["steps"] == 20 and res.info["multiplier"] == 5
