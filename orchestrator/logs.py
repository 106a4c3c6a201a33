"""The sweep's messages through ``logging``: the terminal as before, and a log file per run.

Why: a sweep left running under ``nohup`` or Ray Jobs had only its terminal's lines, without a
time or a level, and nothing in the output folder. Every message (``say``, the progress lines)
is a log record of the ``orchestrator`` logger: on the terminal as the bare text (a time in
front only with ``--log-timestamps``), in ``<out>/logs/sweep-<start time>.log`` with the time,
the level and the logger. Each run opens a file of its own, appended and never overwritten, so
a resumed sweep keeps every earlier run's log. Ray's and MLflow's own loggers stay at WARNING
(their warnings reach the file too) unless ``--log-level ray=INFO`` asks for more.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common.errors import BadInput
from common.masking import redact

LOG = logging.getLogger("orchestrator")
# The progress lines: left off the terminal by -q, kept in the log file.
PROGRESS = logging.getLogger("orchestrator.progress")
OURS = ("orchestrator", "search_spaces", "trainables", "reports", "common")
# Loggers of the libraries the sweep drives, which keep handlers of their own (they do not
# propagate to the root logger): their level, and the log file's handler next to theirs.
THEIRS = ("ray", "mlflow", "alembic")
LOGS_DIR = "logs"
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_MARK = "_sparse_transfer"  # set on the handlers installed here, to find them again


@dataclass(frozen=True)
class LogSettings:
    """How the sweep logs: the level of its own messages, other loggers' levels by name
    (``ray``, ``mlflow``: WARNING unless given), a time on each terminal line, and ``quiet``
    (``-q``: no progress lines on the terminal)."""

    level: str = "INFO"
    levels: tuple[tuple[str, str], ...] = ()
    timestamps: bool = False
    quiet: bool = False

    def level_of(self, name: str) -> int:
        """The level of logger ``name`` (``ray``): its own, else WARNING for the libraries."""
        given = dict(self.levels)
        if name in given:
            return logging.getLevelName(given[name])
        return logging.WARNING if name in THEIRS else logging.getLevelName(self.level)


def parse_levels(texts: Sequence[str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``--log-level`` values (``DEBUG``, ``ray=INFO``, ``mlflow=DEBUG,ray=INFO``) as the
    sweep's own level and the other loggers' levels; refused naming the levels there are."""
    level, named = "INFO", {}
    for text in texts:
        for item in filter(None, (t.strip() for t in text.split(","))):
            name, sep, value = item.rpartition("=")
            value = value.strip().upper()
            if value not in LEVELS or (sep and not name.strip()):
                raise BadInput(f"--log-level {item!r}: expected a level ({', '.join(LEVELS)}) "
                               "or logger=LEVEL (e.g. ray=INFO, mlflow=DEBUG)")
            if sep:
                named[name.strip()] = value
            else:
                level = value
    return level, tuple(sorted(named.items()))


def say(msg: str) -> None:
    """One message of the sweep; ``error: ...`` and ``warning: ...`` at their levels."""
    LOG.log(level_of(msg), msg)


def level_of(msg: str) -> int:
    head = msg.lstrip()
    if head.startswith("error:"):
        return logging.ERROR
    if head.startswith("warning:"):
        return logging.WARNING
    return logging.INFO


class _Terminal(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (a test's capture, a redirected stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Masked(logging.Formatter):
    """Formats a record with every URI's secrets masked (``common.masking``): the sweep's
    messages and Ray's and MLflow's alike, on the terminal and in the file."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _MaskRecord(logging.Filter):
    """On a library's own handlers (MLflow's and Ray's print to the terminal themselves): the
    record's message masked before they format it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class _Quiet(logging.Filter):
    """``-q``: the progress lines stay off the terminal (the log file keeps them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == PROGRESS.name and record.levelno <= logging.INFO)


def _ours(kind: str) -> logging.Handler | None:
    return next((h for h in logging.getLogger().handlers if getattr(h, _MARK, None) == kind),
                None)


def log_file_name(started: float | None = None) -> str:
    """``sweep-<local start time>.log``: sorts by time, one per run (a second run in the same
    second appends to it, losing nothing)."""
    return f"sweep-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}.log"


def current_log_file() -> Path | None:
    """The log file of the sweep running in this process, or None."""
    handler = _ours("file")
    return Path(handler.baseFilename) if isinstance(handler, logging.FileHandler) else None


def log_files(out_dir: Path) -> list[Path]:
    """Every run's log file in the output folder, oldest first."""
    return sorted((Path(out_dir) / LOGS_DIR).glob("sweep-*.log"))


@contextmanager
def sweep_logging(settings: LogSettings, out_dir: Path | None = None) -> Iterator[Path | None]:
    """The sweep's logging for the ``with`` block: the terminal handler and, with
    ``out_dir``, the run's log file under ``<out_dir>/logs``; yields the file. Nested, an
    outer block's handlers are kept (a caller of ``run_sweep`` that set them up already);
    what the outermost block installed or changed is undone when it ends."""
    root = logging.getLogger()
    names = (*OURS, *THEIRS, *dict(settings.levels))
    outermost = _ours("terminal") is None
    levels = {name: logging.getLogger(name).level for name in names}
    installed: list[logging.Handler] = []
    if outermost:
        installed.append(_terminal(settings))
    if out_dir is not None and _ours("file") is None:
        installed.append(_file(Path(out_dir) / LOGS_DIR / log_file_name()))
    for handler in installed:
        root.addHandler(handler)
    for name in (*OURS, *dict(settings.levels)):
        logging.getLogger(name).setLevel(settings.level_of(name))
    library_logging(settings)
    try:
        yield current_log_file()
    finally:
        for handler in installed:
            root.removeHandler(handler)
            handler.close()
        for name in THEIRS:
            logger = logging.getLogger(name)
            for h in [h for h in logger.handlers if getattr(h, _MARK, None) == "forward"
                      and (outermost or h.target in installed)]:
                logger.removeHandler(h)
        if outermost:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def library_logging(settings: LogSettings) -> None:
    """Ray's and MLflow's loggers at their level, and their records in the log file too.

    Called again once they are imported (``runner.init_ray``): MLflow's import replaces its
    loggers' handlers and Ray's sets its logger's level and formatters. They do not
    propagate, so a forwarder (whose formatter they may overwrite) hands each record to the
    file's handler; their own handlers get a filter that masks secrets in URIs first."""
    target = _ours("file")
    for name in THEIRS:
        logger = logging.getLogger(name)
        logger.setLevel(settings.level_of(name))
        forwarders = [h for h in logger.handlers if getattr(h, _MARK, None) == "forward"]
        for h in forwarders:
            if h.target is not target:
                logger.removeHandler(h)
        if target is not None and not any(h.target is target for h in forwarders):
            logger.addHandler(_Forward(target))
        for h in logger.handlers:
            if not any(isinstance(f, _MaskRecord) for f in h.filters):
                h.addFilter(_MaskRecord())


class _Forward(logging.Handler):
    """Hands a record to the log file's handler, which formats it."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__()
        self.target = target
        setattr(self, _MARK, "forward")

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= self.target.level:
            self.target.handle(record)


def _terminal(settings: LogSettings) -> logging.Handler:
    handler = _Terminal()
    handler.setFormatter(_Masked(
        "%(asctime)s %(message)s" if settings.timestamps else "%(message)s", DATE_FORMAT))
    if settings.quiet:
        handler.addFilter(_Quiet())
    setattr(handler, _MARK, "terminal")
    return handler


def _file(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Opened at the first record: a run that logs nothing leaves no empty file.
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    handler.setFormatter(_Masked(FILE_FORMAT, DATE_FORMAT))
    setattr(handler, _MARK, "file")
    return handler


def flush_log() -> None:
    """Everything logged so far is in the file (before it is copied to MLflow)."""
    handler = _ours("file")
    if handler is not None:
        handler.flush()
