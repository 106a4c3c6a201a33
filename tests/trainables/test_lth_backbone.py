"""LTH-T's backbone when it borrows a mask: a mask source's mask on the dense weights."""

from __future__ import annotations

import pytest
import torch

from tests.trainables.test_checkpoints import (ARCH, NUM_CLASSES, pruned_tiny,
                                               write_ticket_masks)
from trainables import checkpoints as ck
from trainables import models
from trainables.lth_backbone import lth_transfer, mask_on_dense


def test_lth_transfer_masks_dense_weights(tmp_path):
    torch.manual_seed(1)
    dense_model = models.build_model(ARCH, NUM_CLASSES)
    with torch.no_grad():
        dense_model.bn1.running_mean.fill_(0.25)
    sparse_model, _, _ = pruned_tiny(seed=2)
    ck.save_reference_checkpoint(tmp_path / "dense.pt", dense_model, ARCH, "imagenet")
    ck.save_reference_checkpoint(tmp_path / "gmp.pt", sparse_model, ARCH, "imagenet")
    dense = ck.load_checkpoint(tmp_path / "dense.pt")
    source = ck.load_checkpoint(tmp_path / "gmp.pt")

    out = lth_transfer(dense, source)

    dense_sd, sparse_sd = dense_model.state_dict(), sparse_model.state_dict()
    assert set(out) == set(dense_sd)
    for k, v in out.items():
        if k in source.masks:
            kept = sparse_sd[k] != 0
            assert torch.equal(v == 0, ~kept), k  # zeros exactly where the source has zeros
            assert torch.equal(v[kept], dense_sd[k][kept]), k
        else:
            assert torch.equal(v, dense_sd[k]), k
    ck.save_reference_checkpoint(tmp_path / "lth.pt", out, ARCH, "imagenet")
    assert ck.load_checkpoint(tmp_path / "lth.pt").sparsity == pytest.approx(source.sparsity)


def test_lth_transfer_refuses_different_shapes(tmp_path):
    dense_model, _, _ = pruned_tiny(fraction=0.0)
    other, _, _ = pruned_tiny(num_classes=5)
    ck.save_reference_checkpoint(tmp_path / "dense.pt", dense_model, ARCH, "imagenet")
    ck.save_reference_checkpoint(tmp_path / "other.pt", other, ARCH, "imagenet")
    with pytest.raises(ValueError, match=r"fc\.weight: dense \[10, 64\] vs mask \[5, 64\]"):
        lth_transfer(
            ck.load_checkpoint(tmp_path / "dense.pt"), ck.load_checkpoint(tmp_path / "other.pt")
        )


def test_a_ticket_of_masks_alone_masks_the_dense_weights(tmp_path):
    torch.manual_seed(0)
    dense_model = models.build_model(ARCH, NUM_CLASSES)
    with torch.no_grad():
        dense_model.bn1.running_mean.fill_(0.25)
    dense_path, ticket = tmp_path / "dense.pt", tmp_path / "ticket.pt"
    ck.save_reference_checkpoint(dense_path, dense_model, ARCH, "imagenet")
    masks = write_ticket_masks(ticket)
    assert not ck.ticket_holds_weights(ticket)

    got = mask_on_dense(dense_path, ticket, ARCH, 80)

    dense = dense_model.state_dict()
    for key, m in masks.items():
        name = key[: -len(".weight_mask")] + ".weight"
        assert torch.equal(got.state_dict[name], dense[name] * m), name
    # everything the ticket has no mask for is the dense file's: BatchNorm, the classifier
    assert torch.equal(got.state_dict["bn1.running_mean"], dense["bn1.running_mean"])
    assert bool((dense["bn1.running_mean"] == 0.25).all())
    assert torch.equal(got.state_dict["fc.weight"], dense["fc.weight"])
    # masks and sparsity over the ticket's layers, as its authors count them
    assert set(got.masks) == {k[: -len("_mask")] for k in masks}
    zeros = sum(int((m == 0).sum()) for m in masks.values())
    assert got.sparsity == pytest.approx(100 * zeros / sum(m.numel() for m in masks.values()))
    assert got.path == f"{dense_path} + mask of {ticket}"


def test_a_mask_of_another_sparsity_is_refused(tmp_path):
    dense_path, ticket = tmp_path / "dense.pt", tmp_path / "ticket.pt"
    ck.save_reference_checkpoint(dense_path, models.build_model(ARCH, NUM_CLASSES), ARCH,
                                 "imagenet")
    write_ticket_masks(ticket, fraction=0.9)
    with pytest.raises(ValueError, match=r"ticket .* sparsity 89\.99% over the 12 layers .* 80%"):
        mask_on_dense(dense_path, ticket, ARCH, 80)
