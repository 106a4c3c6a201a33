"""Timing on a shared machine: repetitions interleaved across runtimes, medians and spread.

Only ratios of medians measured side by side are trusted (load drifts over minutes), so every
runtime a trial compares is timed round-robin in one call (``time_interleaved``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from trainables.speed.export import ONNX_INPUT
from trainables.speed.runtimes import torch_threads


@dataclass(frozen=True)
class TimingStats:
    """Milliseconds per call over ``reps`` timed repetitions (after warm-up)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    reps: int

    @classmethod
    def from_seconds(cls, seconds: Sequence[float]) -> TimingStats:
        ms = np.asarray(seconds, dtype=float) * 1e3
        return cls(
            median_ms=float(np.median(ms)),
            p10_ms=float(np.percentile(ms, 10)),
            p90_ms=float(np.percentile(ms, 90)),
            reps=len(ms),
        )


def check_reps(warmup: int, reps: int) -> None:
    """Raise unless there is a timed repetition and no negative warm-up (medians need one)."""
    if warmup < 0 or reps < 1:
        raise ValueError(f"need warmup >= 0 and reps >= 1, got warmup={warmup}, reps={reps}")


def time_fn(fn: Callable[[], Any], warmup: int, reps: int) -> TimingStats:
    """Call ``fn`` ``warmup`` times untimed, then ``reps`` times timed."""
    return time_interleaved({"fn": fn}, warmup, reps)["fn"]


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]], warmup: int, reps: int
) -> dict[str, TimingStats]:
    """Time several functions round-robin: repetition r of every function, then r + 1.

    On a shared machine the load drifts over minutes; interleaving exposes every runtime to
    the same drift, so their ratios stay meaningful even when absolute times do not.
    """
    check_reps(warmup, reps)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return {name: TimingStats.from_seconds(s) for name, s in seconds.items()}


def inference_speed(
    *,
    sparse_engines: Mapping[int, Any],
    dense_engine: Any,
    ort_session: Any,
    dense_model: nn.Module,
    image_size: int,
    batch: int,
    warmup: int,
    reps: int,
    num_cores: int,
    seed: int = 0,
) -> dict[str, TimingStats]:
    """Time the sparse engine(s) against the dense references, interleaved in one run.

    Args:
        sparse_engines: DeepSparse engines of the sparse backbone by batch size; must hold
            ``batch`` (and usually 1).
        dense_engine: DeepSparse engine of the dense backbone at ``batch``.
        ort_session: ONNX Runtime session of the dense backbone.
        dense_model: the dense PyTorch backbone (timed on ``num_cores`` threads).

    Returns:
        ``{"deepsparse_b<k>": ..., "deepsparse_dense": ..., "onnxruntime_dense": ...,
        "torch_dense": ...}``, the last three at ``batch``.
    """
    if batch not in sparse_engines:
        raise ValueError(f"sparse_engines has batches {sorted(sparse_engines)}, needs {batch}")
    rng = np.random.default_rng(seed)
    inputs = {
        b: rng.standard_normal((b, 3, image_size, image_size)).astype(np.float32)
        for b in {*sparse_engines, batch}
    }
    x = inputs[batch]
    xt = torch.from_numpy(x)
    dense_model = dense_model.eval()

    def torch_run() -> None:
        with torch.inference_mode():
            dense_model(xt)

    fns: dict[str, Callable[[], Any]] = {
        f"deepsparse_b{b}": (lambda e=e, b=b: e.run([inputs[b]], val_inp=False))
        for b, e in sorted(sparse_engines.items())
    }
    fns["deepsparse_dense"] = lambda: dense_engine.run([x], val_inp=False)
    fns["onnxruntime_dense"] = lambda: ort_session.run(None, {ONNX_INPUT: x})
    fns["torch_dense"] = torch_run
    with torch_threads(num_cores):
        return time_interleaved(fns, warmup, reps)
