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
    verbose: int = 1
    command: str | None = None  # the command line, printed as the one that resumes a stop
    rehearsal: bool = False  # synthetic stand-in trials (trainables.rehearsal), marked as such


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


REHEARSAL_MARK = "REHEARSAL"  # in the output folder of a rehearsal, written before any trial


def check_folder_kind(out_dir: Path, rehearsal: bool) -> None:
    """A rehearsal's synthetic results never share an output folder with real ones.

    Why refuse rather than warn: a resumed sweep builds ``results.parquet``, the aggregates
    and the report from every ledger entry in the folder, so one mixed folder would publish
    made-up numbers next to measured ones. A folder is a rehearsal's when it holds the
    ``REHEARSAL`` mark; a real study's when it holds a ledger, a results table or an MLflow
    store without the mark.
    """
    path = Path(out_dir)
    marked = (path / REHEARSAL_MARK).exists()
    trials = path / "trials"
    used = any((path / name).exists() for name in ("results.parquet", "mlflow.db")) or (
        trials.is_dir() and any(p.suffix in (".json", ".jsonl") for p in trials.iterdir()))
    if rehearsal and used and not marked:
        raise BadInput(f"--rehearsal: {path} holds a real study's results; a rehearsal's "
                       "synthetic ones must not mix with them: leave --out unset (default "
                       "runs/<study>-rehearsal) or name a new folder")
    if not rehearsal and marked:
        raise BadInput(f"--out {path} is a rehearsal's folder (synthetic numbers, "
                       f"{REHEARSAL_MARK} mark): run the real study into another folder, or add "
                       "--rehearsal to resume the rehearsal")


def mark_rehearsal_folder(out_dir: Path) -> None:
    """Write the ``REHEARSAL`` mark (idempotent), before the first trial is recorded."""
    from common.atomic import atomic_write_text

    path = Path(out_dir) / REHEARSAL_MARK
    if not path.exists():
        atomic_write_text(path, "This folder holds a rehearsal (python -m orchestrator.sweep "
                          "--rehearsal): every number in it is synthetic, made up by "
                          "trainables/rehearsal.py; none is a result.\n")


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
