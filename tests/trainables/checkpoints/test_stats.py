"""Fully pruned filters and the file hash, against hand computations."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

from trainables import checkpoints as ck


def test_filters_pruned_share_on_a_hand_made_state_dict():
    a = torch.ones(4, 2, 3, 3)
    a[0] = 0
    a[2] = 0
    a[1, 0, 0, 0] = 0  # a partly zero filter is not pruned
    b = torch.ones(2, 4, 1, 1)
    b[1] = 0
    sd = {"a.weight": a, "b.weight": b, "fc.weight": torch.zeros(3, 2), "bn.weight": torch.zeros(4)}
    assert ck.per_layer_filters_pruned(sd) == {"a.weight": (2, 4), "b.weight": (1, 2)}
    assert ck.filters_pruned_share(sd) == pytest.approx(3 / 6)
    assert ck.filters_pruned_share({"fc.weight": torch.zeros(2, 2)}) == 0.0


def test_file_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(3000)
    path.write_bytes(data)
    assert ck.file_sha256(path, chunk_bytes=512) == hashlib.sha256(data).hexdigest()
