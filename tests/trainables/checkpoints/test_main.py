"""``python -m trainables.checkpoints``: the table, the JSON, errors with exit code 2, tickets."""

from __future__ import annotations

import json
import re

import pytest
import torch

from tests.trainables.checkpoints.samples import (
    ARCH,
    pruned_tiny,
    write_ticket_masks,
    write_weight_ticket,
)
from trainables import checkpoints as ck
from trainables.checkpoints.__main__ import main
from trainables.models import masks as masks_lib


def test_cli_prints_a_table(tmp_path, capsys):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet", wrapped=True)
    assert main([str(path), "--expect-sparsity", "80"]) == 0
    out = capsys.readouterr().out
    assert "format:               reference" in out
    assert "architecture:         resnet_tiny" in out
    assert "upstream dataset:     imagenet" in out
    assert re.search(r"global sparsity:\s+8\d\.\d\d %", out)
    assert "filters fully pruned:" in out
    # int(0.8 * 2304) = 1843 zeros -> 79.99 %
    assert re.search(r"layer1\.0\.conv1\.weight\s+16x16x3x3\s+2304\s+79\.99\s+0/16", out)


def test_cli_json(tmp_path, capsys):
    model, zeros, total = pruned_tiny()
    path = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), path)
    assert main([str(path), "--json", "--arch", ARCH]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "torchvision" and info["arch"] == ARCH
    assert info["upstream_dataset"] is None
    assert info["global_sparsity"] == pytest.approx(100.0 * zeros / total, abs=1e-4)
    assert info["sha256"] == ck.file_sha256(path)
    names = [row["name"] for row in info["layers"]]
    assert names == masks_lib.prunable_names(model)
    assert info["layers"][0]["shape"] == [16, 3, 3, 3]


@pytest.mark.parametrize("problem", ["garbage", "missing", "sparsity"])
def test_cli_errors_exit_2_without_traceback(tmp_path, capsys, problem):
    path = tmp_path / "bad.pt"
    args = [str(path)]
    if problem == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif problem == "sparsity":
        model, _, _ = pruned_tiny()
        ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
        args += ["--expect-sparsity", "95"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and str(path) in captured.err
    assert "Traceback" not in captured.err


def test_cli_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "--expect-sparsity" in out


def test_cli_describes_a_ticket_of_masks_alone(tmp_path, capsys):
    ticket = tmp_path / "ticket.pt"
    write_ticket_masks(ticket)
    assert main([str(ticket), "--arch", ARCH, "--expect-sparsity", "80", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == ck.MASKS_ONLY and info["global_sparsity"] == pytest.approx(80, abs=0.1)
    assert "fc.weight" not in {layer["name"] for layer in info["layers"]}
    assert info["carries_weights"] is False
    assert info["as_lth_ticket"].startswith("its masks on the study's dense weights")


def test_cli_says_a_ticket_with_weights_is_used_as_it_is(tmp_path, capsys):
    ticket = tmp_path / "ticket.pt"
    want = write_weight_ticket(ticket)
    assert main([str(ticket), "--arch", ARCH, "--expect-sparsity", "80", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "lth_ticket" and info["carries_weights"] is True
    assert info["as_lth_ticket"].startswith("the file as it is: its own weights")
    assert info["global_sparsity"] == pytest.approx(want.sparsity, abs=1e-3)
    assert {layer["name"] for layer in info["layers"]} == set(want.masks)
    assert main([str(ticket), "--arch", ARCH]) == 0
    out = capsys.readouterr().out
    assert re.search(r"carries weights:\s+yes", out)
    assert re.search(r"as LTH-T's ticket:\s+the file as it is", out)
