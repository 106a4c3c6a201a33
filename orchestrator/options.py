"""The run options of a sweep, apart from the study itself.

A module of their own because both ends need them: ``orchestrator.sweep`` (the CLI) builds
them and ``orchestrator.runner`` consumes them; in either of the two they made the other
import it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.errors import BadInput


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
    verbose: int = 1  # 0 -q, 1 the sweep's progress lines, 2 -v (Ray Tune's too), 3 -vv
    command: str | None = None  # the command line, printed as the one that resumes a stop


def check_count(option: str, value: int | None, lo: int) -> None:
    """A count option (``--num-cpus``, ``--max-concurrent``, ``--max-failures``) must be at
    least ``lo``: ``--num-cpus 0`` would start a Ray that can place no trial and wait
    forever, ``--num-cpus -1`` crashed inside Ray after the output folder was written."""
    if value is not None and value < lo:
        raise BadInput(f"{option}: expected a whole number >= {lo}, got {value}")


def check_out_dir(out_dir: Path, option: str = "--out") -> Path:
    """The output folder, absolute; refused (before anything is written) when it is a file or
    a device (``/dev/null``), or when a part of its path is a file so it can never be made."""
    path = Path(out_dir).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise BadInput(f"{option}: {path} exists and is not a folder; expected a folder (new or "
                       "one from an earlier run of the same study)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BadInput(f"{option}: {path} cannot be made: {parent} is not a folder")
            break
    return path


def check_runs_name(out_dir: Path, runs: Path, name: str) -> None:
    """The default output folder ``runs/<study name>`` must be a folder inside ``runs/``
    (the schema checks the name; this checks what the path became)."""
    base = runs.resolve()
    if out_dir.resolve().parent != base:
        raise BadInput(f"study name {name!r} would put the output folder at {out_dir}, outside "
                       f"{base}; give the study a plain name or pass --out")


# sqlite URIs SQLAlchemy opens in memory: every run is gone when the process exits.
_MEMORY_PATHS = ("", ":memory:")


def check_tracking_uri(uri: str | None, source: str = "--tracking-uri") -> None:
    """Refuse a tracking store that would lose what the sweep logs: an in-memory SQLite
    database (``sqlite://``, ``sqlite:///``, ``sqlite:///:memory:``) or an empty URI."""
    if uri is None:
        return
    if not uri.strip():
        raise BadInput(f"{source}: empty tracking URI; leave it unset to use the SQLite file in "
                       "the output folder")
    if uri.lower().startswith("sqlite:"):
        rest = uri[len("sqlite:"):]
        path = rest[3:] if rest.startswith("///") else rest[2:] if rest.startswith("//") else rest
        path = path.split("?", 1)[0]
        if path in _MEMORY_PATHS or path.startswith(("file::memory:", ":memory:")):
            raise BadInput(
                f"{source}: {uri!r} is an in-memory SQLite store: every run would be lost when "
                "the sweep exits; name a file (sqlite:////abs/path/mlflow.db) or leave it unset "
                "to use the SQLite file in the output folder")
