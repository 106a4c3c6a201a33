"""Reading a file safely: a payload is refused and never runs; damaged and missing files
are named."""

from __future__ import annotations

import pickle
import re

import pytest
import torch

from tests.trainables.checkpoints.samples import ARCH, pruned_tiny
from trainables import checkpoints as ck


class _Evil:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, writer):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    payload = {
        "model_config": {"arch": ARCH, "dataset": "x"},
        "model_state_dict": _Evil(str(marker)),
    }
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path)
    assert str(path) in str(err.value) and "NOT executed" in str(err.value)
    assert not marker.exists()


def test_truncated_file_is_a_clear_error(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "cut.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*could not be read"):
        ck.load_checkpoint(path)


def test_missing_file_is_file_not_found(tmp_path):
    path = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        ck.load_checkpoint(path)
