"""Figures measured on a checkpoint beyond its sparsity: its fully pruned convolution filters
(the paper's Appendix E) and its file's SHA-256."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

import torch


def per_layer_filters_pruned(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, int]]:
    """``{conv weight name: (fully zero filters, filters)}``; a filter is one output channel
    ``weight[o]`` of a 4-D convolution weight."""
    out = {}
    for name, w in state_dict.items():
        if name.endswith(".weight") and w.dim() == 4:
            zero = int((w.reshape(w.shape[0], -1) == 0).all(dim=1).sum())
            out[name] = (zero, int(w.shape[0]))
    return out


def filters_pruned_share(state_dict: Mapping[str, torch.Tensor]) -> float:
    """Fraction in [0, 1] of all convolution filters that are entirely zero (paper App. E)."""
    counts = per_layer_filters_pruned(state_dict).values()
    total = sum(t for _, t in counts)
    return sum(z for z, _ in counts) / total if total else 0.0


def file_sha256(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (checkpoints can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()
