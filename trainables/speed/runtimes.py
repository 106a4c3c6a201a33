"""The runtimes a speed trial compares, set up on the same cores: DeepSparse, ONNX Runtime, PyTorch.

Each takes its core count explicitly, because DeepSparse and ONNX Runtime otherwise use every
core of the machine, whatever Ray granted the process. DeepSparse is imported lazily with its
analytics off (``NM_DISABLE_ANALYTICS=1``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from trainables.speed.export import ONNX_INPUT


def import_deepsparse() -> Any:
    """The ``deepsparse`` module, imported only when a trial needs it, analytics off."""
    os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
    import deepsparse

    return deepsparse


@contextlib.contextmanager
def torch_threads(num_threads: int) -> Iterator[None]:
    """Run PyTorch CPU ops on ``num_threads`` threads, restoring the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def compile_deepsparse(path: str | os.PathLike, batch_size: int, num_cores: int) -> Any:
    """A DeepSparse engine of the ONNX file at a fixed ``batch_size`` on ``num_cores`` cores.

    ``num_cores`` must be passed: DeepSparse otherwise uses every core of the machine, whatever
    Ray has granted the process.
    """
    if batch_size < 1 or num_cores < 1:
        raise ValueError(f"batch_size and num_cores must be >= 1, got {batch_size}, {num_cores}")
    ds = import_deepsparse()
    return ds.Engine(model=str(path), batch_size=batch_size, num_cores=num_cores)


def onnxruntime_session(path: str | os.PathLike, num_cores: int) -> Any:
    """An ONNX Runtime CPU session on ``num_cores`` intra-op threads.

    Spinning is off so that its idle threads do not steal cycles from the runtime timed next
    (the runtimes are timed interleaved).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_cores
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _input_chw(onnx_path: str | os.PathLike) -> tuple[int, int, int]:
    import onnx

    dims = onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim
    chw = tuple(d.dim_value for d in dims[1:])
    if len(chw) != 3 or not all(chw):
        raise ValueError(f"ONNX file {onnx_path}: expected a static (N, C, H, W) input, got {dims}")
    return chw  # type: ignore[return-value]


def deepsparse_features(engine: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap an engine as ``features(x: float tensor NCHW) -> float tensor``."""

    def run(x: torch.Tensor) -> torch.Tensor:
        out = engine.run([np.ascontiguousarray(x.numpy(), dtype=np.float32)], val_inp=False)
        return torch.from_numpy(out[0])

    return run


def onnxruntime_features(session: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap an ONNX Runtime session as ``features(x: float tensor NCHW) -> float tensor``."""

    def run(x: torch.Tensor) -> torch.Tensor:
        x_np = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        return torch.from_numpy(session.run(None, {ONNX_INPUT: x_np})[0])

    return run


def check_outputs_match(
    model: nn.Module,
    onnx_path: str | os.PathLike,
    engine: Any,
    atol: float = 1e-3,
    seed: int = 0,
) -> float:
    """Raise if DeepSparse and PyTorch disagree on a random batch; return the worst difference.

    ``model`` is the backbone that was exported (classifier = identity); the batch has the
    engine's batch size and the ONNX file's input shape. Random-weight backbones can produce
    large features, so the tolerance is relative to the output scale:
    ``|deepsparse - torch| <= atol * max(1, max|torch|)``.
    """
    chw = _input_chw(onnx_path)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((engine.batch_size, *chw)).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    got = engine.run([x])[0]
    if got.shape != expected.shape:
        raise ValueError(
            f"DeepSparse output shape {got.shape} != PyTorch {expected.shape} for {onnx_path}"
        )
    scale = max(1.0, float(np.abs(expected).max()))
    diff = float(np.abs(got - expected).max())
    if not np.isfinite(diff) or diff > atol * scale:
        raise ValueError(
            f"DeepSparse output of {onnx_path} differs from PyTorch: max |diff| {diff:.3g} > "
            f"{atol} x scale {scale:.3g}"
        )
    return diff / scale
