"""LTH-T's mask sources (tickets with and without weights, another method's checkpoint) and
the dense weights under a borrowed mask."""

from __future__ import annotations

import re

import pytest
import torch

from tests.trainables.checkpoints.samples import (
    ARCH,
    NUM_CLASSES,
    mobilenet_sd,
    pruned_tiny,
    write_lth_ticket,
    write_ticket_masks,
    write_torchvision,
    write_weight_ticket,
)
from trainables import checkpoints as ck
from trainables import models
from trainables.checkpoints import lth_transfer, mask_on_dense


def test_a_ticket_with_weights_is_its_own_weights_under_its_own_mask(tmp_path):
    path = tmp_path / "ticket.pt"
    want = write_weight_ticket(path)
    assert ck.ticket_holds_weights(path)

    ckpt = ck.load_checkpoint(path, arch=ARCH, expect_sparsity=80)

    assert ckpt.format == "lth_ticket"
    for name, mask in want.masks.items():
        assert torch.equal(ckpt.state_dict[name], want.orig[name] * mask), name
    for name, value in want.others.items():  # BatchNorm, the classifier: the ticket's own
        assert torch.equal(ckpt.state_dict[name], value), name
    # masks and sparsity over the layers the ticket masks, as its authors count it
    assert set(ckpt.masks) == set(want.masks) and "fc.weight" not in ckpt.masks
    assert ckpt.sparsity == pytest.approx(want.sparsity)
    net = ck.build_backbone_model(ckpt)
    assert torch.equal(net.bn1.running_var, want.others["bn1.running_var"])


def test_a_ticket_with_weights_is_checked_over_the_layers_it_masks(tmp_path):
    path = tmp_path / "ticket.pt"
    write_weight_ticket(path, fraction=0.5)
    with pytest.raises(ValueError, match=r"measured global sparsity 50\.00% over the \d+ "
                                         "layers it masks but 80% was declared"):
        ck.load_checkpoint(path, arch=ARCH, expect_sparsity=80)


def test_only_a_ticket_of_masks_alone_holds_no_weights(tmp_path):
    masks_only, full, plain = tmp_path / "m.pt", tmp_path / "t.pt", tmp_path / "p.pt"
    write_ticket_masks(masks_only)
    write_lth_ticket(full)
    write_torchvision(plain)
    assert not ck.ticket_holds_weights(masks_only)
    assert ck.ticket_holds_weights(full) and ck.ticket_holds_weights(plain)
    # masks beside plain weights (X.weight + X.weight_mask) hold weights too
    torch.save({"conv1.weight": torch.ones(2, 3, 1, 1),
                "conv1.weight_mask": torch.ones(2, 3, 1, 1)}, plain)
    assert ck.ticket_holds_weights(plain)


def test_ticket_sparsity_is_checked_over_its_own_layers(tmp_path):
    ticket = tmp_path / "ticket.pt"
    write_ticket_masks(ticket, fraction=0.5)
    with pytest.raises(ValueError, match="ticket .* measured sparsity 50.00% .* 80% was declared"):
        ck.load_mask_source(ticket, arch=ARCH, expect_sparsity=80)


def test_a_ticket_of_masks_alone_is_not_a_backbone(tmp_path):
    ticket = tmp_path / "ticket.pt"
    write_ticket_masks(ticket)
    with pytest.raises(ValueError, match="mask source"):
        ck.load_checkpoint(ticket, arch=ARCH)


def test_a_full_ticket_is_a_mask_source_too(tmp_path):
    path = tmp_path / "ticket.pt"
    write_lth_ticket(path)
    source = ck.load_mask_source(path, arch=ARCH, expect_sparsity=80)
    assert source.format == ck.MASKS_ONLY and "fc.weight" not in source.masks


def test_a_ticket_in_the_reference_mobilenet_names_is_renamed(tmp_path):
    sd, _ = mobilenet_sd()
    masks = {re.sub(r"^features\.", "model.", n)[: -len(".weight")] + ".weight_mask":
             torch.ones(sd[n].shape) for n in ck.prunable_weight_names(sd) if sd[n].dim() == 4}
    path = tmp_path / "ticket.pt"
    torch.save(masks, path)
    source = ck.load_mask_source(path, arch="mobilenet_v1", expect_sparsity=0)
    assert "features.13.3.weight" in source.masks and "model.13.3.weight" not in source.masks


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
