"""Atomic file writes: readers see the old content or the new one, never a partial file.

Every file another process (or a rerun after a kill) reads is written here: to a hidden
``.<name>.tmp-<pid>`` in the destination's folder (so the rename never crosses file
systems), fsynced (so a power cut cannot leave an empty file under the final name), renamed
onto the destination, and removed on any failure. A failed write raises an ``OSError`` that
keeps the errno and names the destination, which library errors (pyarrow, torch) often do not.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path


def temp_path(path: str | os.PathLike[str]) -> Path:
    """Where ``atomic_path(path)`` writes first: a hidden sibling, unique per process."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, label: str | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    The caller writes the whole file to the yielded path (``torch.save``, ``df.to_parquet``,
    ``fig.savefig``...). On leaving the block the file is fsynced and renamed onto ``path``;
    if the block or the rename fails, the temporary file is removed and ``path`` is untouched.
    The parent folder is created if needed.

    Args:
        path: the destination file.
        label: how an error message names the destination, e.g. ``"checkpoint <path>"``;
            default: the path itself.

    Raises:
        OSError: writing failed (e.g. ENOSPC); the errno is kept (EIO if the cause had none)
            and the message reads ``could not write <label>: <reason>``. Other exceptions
            pass through unchanged.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as err:
        code = err.errno if err.errno is not None else errno.EIO  # callers may compare errno
        raise OSError(code, f"could not write {label or path}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, label: str | None = None
) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_path``); returns the path."""
    with atomic_path(path, label=label) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, label: str | None = None
) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (see ``atomic_path``); returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"), label=label)


def _fsync(path: Path) -> None:
    # fsync through a fresh descriptor flushes the file's data whoever wrote it (numpy, torch,
    # pyarrow and matplotlib close their own handles).
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
