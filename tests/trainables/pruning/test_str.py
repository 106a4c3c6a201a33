"""STR: the soft threshold by hand, and thresholds that move until the target is reached.

The shared contract (target reached, masks, result) is checked in test_contract.
"""

from __future__ import annotations

import math

import pytest
import torch

from trainables.pruning import METHODS
from trainables.pruning.str_ import STRConfig, soft_threshold


def test_soft_threshold_by_hand():
    s = torch.tensor(0.0)  # sigmoid(0) = 0.5
    w = torch.tensor([1.0, -0.7, 0.3, -0.5])
    assert soft_threshold(w, s).tolist() == pytest.approx([0.5, -0.2, 0.0, 0.0])


@pytest.mark.parametrize("target", [0.8, 0.9])
def test_str_thresholds_rise_and_make_the_sparsity(tiny, dense, target):
    cfg = STRConfig(steps=24, finetune_fraction=0.25)
    res = METHODS.get("str").fn(dense, tiny.train_loader, tiny.val_loader, target, cfg, seed=0)
    info = res.info
    start, end = info["thresholds_start"], info["thresholds_end"]
    assert all(v == pytest.approx(1 / (1 + math.exp(8.0))) for v in start.values())
    assert sum(end[n] > 5 * start[n] for n in end) >= 0.9 * len(end)  # thresholds moved up
    assert len({round(v, 6) for v in end.values()}) > 1  # and per layer, not one global value
    assert info["reached_by_thresholds"]
    assert abs(info["sparsity_from_thresholds"] - target) <= 0.01  # the thresholds did it
    total = sum(m.numel() for m in res.masks.values())
    assert info["fixed_weights"] <= 0.05 * total  # the exact-target correction is small
