"""The backbone as DeepSparse and ONNX Runtime run it: an ONNX file, and its sparsity read back.

Why read back: BatchNorm folding and the exporter's tensor sharing decide what the runtimes
see, so the sparsity a speed row reports is counted in the file, not in the PyTorch model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_path
from trainables import models

ONNX_INPUT = "input"
ONNX_OUTPUT = "features"


def export_backbone_onnx(
    model: nn.Module,
    arch: str,
    path: str | os.PathLike,
    image_size: int | None = None,
    batch_size: int | None = None,
    opset: int = 17,
) -> Path:
    """Export the penultimate-feature backbone of ``model`` to ONNX, atomically.

    The classifier is replaced by the identity (``models.backbone``) and the copy is exported in
    eval mode with the legacy TorchScript exporter (DeepSparse 1.8 refuses opset 20, and the
    dynamo exporter needs an onnx version that cannot live next to it; stack.md).

    Args:
        model: a model of ``arch`` (its classifier is dropped; ``model`` is not modified).
        arch: registered architecture name.
        path: destination ``.onnx`` file; written atomically (``common.atomic``).
        image_size: input side in pixels; default ``models.input_size(arch)``.
        batch_size: ``None`` exports a dynamic batch axis. DeepSparse compiles a fixed batch
            either way (it rewrites the batch dimension before compiling) and ONNX Runtime
            accepts any batch, so one dynamic file serves every batch size.
        opset: ONNX opset; DeepSparse 1.8 compiles 17-19.

    Returns:
        The path of the written file.
    """
    if not 7 <= opset <= 19:
        raise ValueError(f"opset must be in 7..19 for DeepSparse 1.8, got {opset}")
    size = image_size or models.input_size(arch)
    net = models.backbone(model, arch).eval().cpu()
    example = torch.randn(batch_size or 1, 3, size, size)
    path = Path(path)
    dynamic_axes = None
    if batch_size is None:
        dynamic_axes = {ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}}
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(
            net,
            (example,),
            str(tmp),
            dynamo=False,
            opset_version=opset,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes=dynamic_axes,
        )
    return path


def onnx_sparsity(path: str | os.PathLike) -> float:
    """Percent of zeros over the Conv/Gemm/MatMul weights of an ONNX file, counted per node.

    Read back from the file so the number describes what DeepSparse actually runs (BatchNorm
    folded into convolutions by the exporter keeps zeros zero). The exporter stores identical
    tensors once and points the other nodes at them through ``Identity`` nodes (two all-zero
    convolutions become one initializer), so weights are resolved through ``Identity`` and
    counted once per node that runs them, as PyTorch counts its parameters.
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    graph = onnx.load(str(path)).graph
    inits = {t.name: t for t in graph.initializer}
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input}
    zeros = total = 0
    arrays: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        name = node.input[1]
        for _ in range(len(alias) + 1):  # follow Identity chains, never loop forever
            if name in inits or name not in alias:
                break
            name = alias[name]
        if name not in inits:
            continue  # an activation (MatMul of two inputs), not a weight
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(inits[name])
        w = arrays[name]
        zeros += int(np.count_nonzero(w == 0))
        total += w.size
    if total == 0:
        raise ValueError(f"ONNX file {path} has no Conv/Gemm/MatMul weight initializers")
    return 100.0 * zeros / total
