"""Where a speed row was measured: CPU, instruction set, cores and runtime versions.

Speed-ups are only comparable between rows of the same machine and versions, so every row
carries these facts.
"""

from __future__ import annotations

import socket
from typing import Any

import torch

from common import columns as C
from common.machine import cpu_model
from trainables.speed.runtimes import import_deepsparse


def deepsparse_isa() -> str:
    """The instruction set DeepSparse runs with, e.g. ``"avx512,vnni"`` or ``"avx2"``."""
    arch = import_deepsparse().cpu.cpu_architecture()
    return arch.isa + (",vnni" if arch.vnni else "")


def physical_cores() -> int:
    """Physical cores DeepSparse may use in this process."""
    return int(import_deepsparse().cpu.cpu_architecture().num_available_physical_cores)


def environment(num_cores: int) -> dict[str, Any]:
    """Facts a speed row needs to be compared with another machine's."""
    import onnxruntime

    ds = import_deepsparse()
    return {
        C.CPU_MODEL: cpu_model(),
        C.NUM_CORES: num_cores,
        C.DEEPSPARSE_ISA: deepsparse_isa(),
        C.DEEPSPARSE_VERSION: ds.__version__,
        C.ONNXRUNTIME_VERSION: onnxruntime.__version__,
        C.TORCH_VERSION: torch.__version__,
        C.HOSTNAME: socket.gethostname(),
    }
