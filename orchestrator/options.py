"""The run options of a sweep, apart from the study itself.

A module of their own because both ends need them: ``orchestrator.sweep`` (the CLI) builds
them and ``orchestrator.runner`` consumes them; in either of the two they made the other
import it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SweepOptions:
    """Everything about a run that is not the study itself."""

    out_dir: Path
    tracking_uri: str | None = None
    address: str | None = None
    retry_failed: bool = False
    num_cpus: int | None = None
    max_concurrent: int | None = None
    max_failures: int = 2
    speed: bool = True
    report: bool = True
    smoke_test: bool = False
    verbose: int = 1
    command: str | None = None  # the command line, printed as the one that resumes a stop
