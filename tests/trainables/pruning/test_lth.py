"""LTH-T: the source's zeros on the dense weights, nothing else.

The shared contract (target reached, masks, result) is checked in test_contract.
"""

from __future__ import annotations

import copy

import pytest
import torch

from trainables.pruning import METHODS
from trainables.pruning.common import global_magnitude_masks
from trainables.pruning.lth import LTHConfig, lth_transfer_masks


def _shuffled_source(dense: torch.nn.Module, target: float) -> torch.nn.Module:
    """A 'pruned' model whose weights differ from the dense ones everywhere."""
    src = copy.deepcopy(dense)
    with torch.no_grad():
        for p in src.parameters():
            p.add_(0.01 * torch.randn_like(p))
    masks = global_magnitude_masks(src, target)
    params = dict(src.named_parameters())
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m)
    return src


def test_lth_keeps_dense_values_exactly_where_the_source_is_nonzero(dense):
    source = _shuffled_source(dense, 0.9)
    model, masks = lth_transfer_masks(dense, source)
    src, out, ref = (dict(m.named_parameters()) for m in (source, model, dense))
    for name, mask in masks.items():
        assert torch.equal(out[name] == 0, src[name] == 0)
        assert torch.equal(out[name][mask], ref[name][mask])
    for name in ref:  # BatchNorm and biases: untouched dense values
        if name not in masks:
            assert torch.equal(out[name], ref[name])


def test_registered_lth_t_with_a_given_source_and_a_wrong_target(tiny, dense):
    source = _shuffled_source(dense, 0.8)
    entry = METHODS.get("lth_t")
    res = entry.fn(
        copy.deepcopy(dense), None, tiny.val_loader, 0.8, LTHConfig(), 0, mask_source=source
    )
    assert res.info["steps"] == 0  # no training: the dense weights under the source's mask
    dense_params = dict(dense.named_parameters())
    for name, param in res.model.named_parameters():
        kept = res.masks.get(name, torch.ones_like(param, dtype=torch.bool))
        assert torch.equal(param[kept], dense_params[name][kept]), name
    with pytest.raises(ValueError, match="sparsity"):
        entry.fn(copy.deepcopy(dense), None, None, 0.9, LTHConfig(), 0, mask_source=source)


def test_lth_t_runs_its_mask_source_when_none_is_given(tiny, dense):
    cfg = LTHConfig(mask_from="gmp", steps=6, frequency=3)
    res = METHODS.get("lth_t").fn(copy.deepcopy(dense), tiny.train_loader, None, 0.9, cfg, 0)
    assert res.info["mask_from"] == "gmp"
    assert res.info["source_sparsity"] == pytest.approx(res.info["mask_sparsity"])
    with pytest.raises(ValueError, match="mask_from"):
        LTHConfig(mask_from="acdc")
