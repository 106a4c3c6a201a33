"""One driver per output folder: ``<out>/sweep.lock``.

Why: two sweeps on the same ``--out`` would both see the same trials as pending, run them
twice and race on ``results.parquet`` and the MLflow runs. The lock is ``fcntl.flock`` on an
open file, not the file's existence: the kernel drops it when the holding process ends in
any way (``kill -9`` included), so a killed driver never blocks the next run, and no PID has
to be guessed alive. On NFS (EFS, Filestore) Linux turns ``flock`` into an NFS lock that
every client sees; the server drops it when the client that held it is gone (NFSv4: after its
lease, about 90 s). The file keeps the holder's host, PID, start time and command so the
refused driver can say who runs; it is rewritten in place (not atomically), since the lock
belongs to that one inode, and never deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from common.errors import BadInput

LOCK_NAME = "sweep.lock"


class SweepRunning(BadInput):
    """Another driver holds the output folder's lock."""


def holder_text(info: dict) -> str:
    """``host H, PID P, started T (command)`` from the lock file's contents."""
    if not info:
        return "details not written yet (it is starting)"
    text = (f"host {info.get('host', '?')}, PID {info.get('pid', '?')}, "
            f"started {info.get('started', '?')}")
    if info.get("command"):
        text += f" ({info['command']})"
    return text


def _read(fd: int) -> dict:
    try:
        raw = os.pread(fd, 1 << 16, 0)
        info = json.loads(raw.decode() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def driver_lock(out: Path, command: str | None = None,
                warn: Callable[[str], None] = lambda msg: None) -> Iterator[dict]:
    """Hold ``<out>/sweep.lock`` for the block; raise ``SweepRunning`` naming the holder.

    A file system without locks (``ENOLCK``, an NFS mount without ``lockd``) gets a warning
    through ``warn`` and no lock, rather than no sweep.
    """
    path = out / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by Ray's processes
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepRunning(
                f"another sweep is running on {out}: {holder_text(_read(fd))}. Wait for it to "
                f"finish, or stop it (kill the PID on that host; it resumes later), then run "
                f"this again: two drivers on one output folder would run trials twice. "
                f"Lock file: {path}") from None
        except OSError as e:
            warn(f"cannot lock {path} ({e.strerror}): nothing stops a second sweep on this "
                 "output folder; run one at a time")
        info = {"host": socket.gethostname(), "pid": os.getpid(),
                "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "command": command or ""}
        data = (json.dumps(info) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        yield info
    finally:
        os.close(fd)  # releases the lock
