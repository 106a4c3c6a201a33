"""WoodFisher: Fisher inverse, OBS statistic and update by hand, and a run to 80 %.

The shared contract (target reached, masks, result) is checked in test_contract.
"""

from __future__ import annotations

import pytest
import torch

from trainables.models.masks import prunable_names
from trainables.pruning import METHODS
from trainables.pruning.woodfisher import (
    WoodFisherConfig,
    fisher_inverse,
    fisher_inverse_rank1,
    obs_scores,
    obs_update,
    woodfisher_step,
)


def test_fisher_inverse_matches_a_direct_inverse_both_ways():
    torch.manual_seed(0)
    m, nb, b, lam = 6, 3, 4, 0.05
    grads = torch.randn(m, nb, b, dtype=torch.float64)
    for block in range(nb):
        g = grads[:, block, :]
        direct = torch.linalg.inv(lam * torch.eye(b, dtype=torch.float64) + g.T @ g / m)
        assert torch.allclose(fisher_inverse_rank1(grads, lam)[block], direct, atol=1e-8)
        assert torch.allclose(fisher_inverse(grads, lam)[block], direct, atol=1e-8)


def test_obs_picks_the_larger_weight_when_the_fisher_says_so_and_compensates():
    # Hand-made 2x2 block: w = (1.0, 0.8), F^-1 = [[4, 1], [1, 1]] (positive definite).
    w = torch.tensor([[1.0, 0.8]], dtype=torch.float64)
    finv = torch.tensor([[[4.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)
    rho = obs_scores(w, finv)
    assert rho[0].tolist() == pytest.approx([1.0 / 8.0, 0.64 / 2.0])
    q = int(rho[0].argmin())
    assert q == 0  # magnitude would prune weight 1 (0.8); OBS prunes weight 0 (1.0)
    new = obs_update(w, finv, torch.tensor([[True, False]]))
    # delta_w = -w_q F^-1 e_q / [F^-1]_qq = -1.0 * (4, 1) / 4 = (-1, -0.25)
    assert new[0].tolist() == pytest.approx([0.0, 0.8 - 0.25])


def test_obs_update_with_identity_fisher_is_plain_masking():
    w = torch.tensor([[0.3, -0.2, 0.5]])
    finv = torch.eye(3, dtype=torch.float64).unsqueeze(0)
    new = obs_update(w, finv, torch.tensor([[False, True, False]]))
    assert new[0].tolist() == pytest.approx([0.3, 0.0, 0.5])


def test_woodfisher_step_moves_kept_weights(tiny, dense):
    names = prunable_names(dense)
    before = {n: p.detach().clone() for n, p in dense.named_parameters() if n in names}
    cfg = WoodFisherConfig(fisher_samples=8)
    masks, stats = woodfisher_step(dense, tiny.train_loader, 0.5, cfg, names)
    after = dict(dense.named_parameters())
    moved = sum(
        float((after[n].detach()[masks[n]] - before[n][masks[n]]).abs().sum()) for n in names
    )
    assert moved > 0  # not pure masking: the OBS update changed the weights that stay
    assert stats["differs_from_magnitude"] > 0


def test_woodfisher_prunes_in_steps_up_to_80_percent(tiny, dense):
    cfg = WoodFisherConfig(steps=12, pruning_steps=2, fisher_samples=8, finetune_fraction=0.25)
    res = METHODS.get("woodfisher").fn(dense, tiny.train_loader, tiny.val_loader, 0.8, cfg, seed=0)
    log = res.info["pruning_log"]
    assert len(log) == 2 and log[0]["sparsity"] < log[1]["sparsity"]
    assert log[-1]["sparsity"] == pytest.approx(0.8, abs=1e-4)
