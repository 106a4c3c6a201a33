"""M-FAC: the matrix-free Fisher inverse against a direct one, the OBS update by hand, and a
run to 80 %.

The shared contract (target reached, masks, result) is checked in test_contract.
"""

from __future__ import annotations

import pytest
import torch

from trainables.models.masks import prunable_names
from trainables.pruning import METHODS
from trainables.pruning.mfac import FisherInverse, MFACConfig, mfac_step


def test_fisher_inverse_diagonal_and_products_match_a_direct_inverse():
    torch.manual_seed(0)
    m, d, lam = 5, 12, 0.3
    grads = torch.randn(m, d, dtype=torch.float64)
    direct = torch.linalg.inv(lam * torch.eye(d, dtype=torch.float64) + grads.T @ grads / m)
    finv = FisherInverse(grads, lam)
    v = torch.randn(d, dtype=torch.float64)
    assert torch.allclose(finv.diag(), direct.diagonal(), atol=1e-12)
    assert torch.allclose(finv.times(v), direct @ v, atol=1e-12)


def test_one_gradient_by_hand():
    # g = (1, 0), m = 1, lambda = 1: F = [[2, 0], [0, 1]], F^-1 = diag(0.5, 1)
    finv = FisherInverse(torch.tensor([[1.0, 0.0]]), 1.0)
    assert finv.diag().tolist() == pytest.approx([0.5, 1.0])
    assert finv.times(torch.tensor([2.0, 3.0])).tolist() == pytest.approx([1.0, 3.0])


def test_mfac_step_prunes_globally_and_moves_kept_weights(tiny, dense):
    names = prunable_names(dense)
    before = {n: p.detach().clone() for n, p in dense.named_parameters() if n in names}
    masks, stats = mfac_step(dense, tiny.train_loader, 0.5, MFACConfig(fisher_samples=8),
                             names)
    after = dict(dense.named_parameters())
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert kept == total - round(0.5 * total)
    assert all(float(after[n].detach()[~masks[n]].abs().sum()) == 0 for n in names)
    moved = sum(float((after[n].detach()[masks[n]] - before[n][masks[n]]).abs().sum())
                for n in names)
    assert moved > 0 and stats["differs_from_magnitude"] > 0


def test_mfac_prunes_in_steps_up_to_80_percent(tiny, dense):
    cfg = MFACConfig(steps=12, pruning_steps=2, fisher_samples=8, finetune_fraction=0.25)
    res = METHODS.get("mfac").fn(dense, tiny.train_loader, tiny.val_loader, 0.8, cfg, seed=0)
    log = res.info["pruning_log"]
    assert len(log) == 2 and log[0]["sparsity"] < log[1]["sparsity"]
    assert log[-1]["sparsity"] == pytest.approx(0.8, abs=1e-4)
    assert res.info["sparsity"] == pytest.approx(0.8, abs=1e-4)
