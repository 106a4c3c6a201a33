"""Speed trials: a backbone exported to ONNX, timed in DeepSparse against dense references.

The paper's speed claims (Section 3.6, Figure 4) are ratios measured on one machine in one run:
DeepSparse running the sparse backbone against the same architecture dense, in DeepSparse,
ONNX Runtime and PyTorch, for inference and for *online* linear finetuning (features computed
on the fly from augmented images read by DataLoader workers, a linear head trained in PyTorch
and evaluated on the test split). Shared machines
are noisy, so every reference is timed inside the same trial, interleaved repetition by
repetition with the sparse engine, and only ratios of medians are compared.

Plain functions, no Ray: ``orchestrator.speed_pool`` places trials on whole CPU nodes.
DeepSparse is imported lazily with its analytics off (``NM_DISABLE_ANALYTICS=1``).

One module per concern:
- ``export``: the backbone as an ONNX file, and the sparsity read back from it.
- ``profiles``: random weights pruned to a sparsity (where the zeros go), ``macs_share``.
- ``runtimes``: DeepSparse engines, ONNX Runtime sessions, PyTorch threads, output check.
- ``timing``: interleaved repetitions, ``TimingStats``, ``inference_speed``.
- ``online``: online linear finetuning (DataLoader workers, timed epochs, loader share,
  test accuracy) and its synthetic images.
- ``environment``: CPU, instruction set, cores and versions a row was measured with.
- ``trial``: ``SpeedSpec`` and ``speed_trial``, the protocol step by step.

The names below are re-exported for scripts and tests (``from trainables import speed as S``).
"""

from __future__ import annotations

import os

# DeepSparse reads this at import; a speed trial must never phone home. Set here so it holds
# whichever submodule is imported first.
os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

from trainables.speed.environment import (  # noqa: E402
    cpu_model,
    deepsparse_isa,
    environment,
    physical_cores,
)
from trainables.speed.export import export_backbone_onnx, onnx_sparsity  # noqa: E402
from trainables.speed.online import (  # noqa: E402
    LoaderWait,
    OnlineRun,
    OnlineSetup,
    SyntheticImages,
    loader_share,
    online_linear_run,
)
from trainables.speed.profiles import PRUNE_PROFILES, macs_share, prune_random  # noqa: E402
from trainables.speed.runtimes import (  # noqa: E402
    check_outputs_match,
    compile_deepsparse,
    onnxruntime_features,
    onnxruntime_session,
)
from trainables.speed.timing import (  # noqa: E402
    TimingStats,
    inference_speed,
    time_fn,
    time_interleaved,
)
from trainables.speed.trial import SpeedSpec, speed_trial  # noqa: E402

__all__ = [
    "PRUNE_PROFILES",
    "LoaderWait",
    "OnlineRun",
    "OnlineSetup",
    "SpeedSpec",
    "SyntheticImages",
    "TimingStats",
    "check_outputs_match",
    "compile_deepsparse",
    "cpu_model",
    "deepsparse_isa",
    "environment",
    "export_backbone_onnx",
    "inference_speed",
    "macs_share",
    "loader_share",
    "online_linear_run",
    "onnx_sparsity",
    "onnxruntime_features",
    "onnxruntime_session",
    "physical_cores",
    "prune_random",
    "speed_trial",
    "time_fn",
    "time_interleaved",
]
