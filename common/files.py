"""Checks on a user's file before it is opened: only a regular file is read.

Why before opening: opening a FIFO (named pipe) for reading waits for a writer, forever, and
a character device (``/dev/zero``, ``/dev/urandom``) never ends; either hangs a trial or the
driver where a message should have named the path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from common.errors import BadInput

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe): reading it would wait for a writer forever"),
          (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device: reading it may never end"),
          (stat.S_ISBLK, "a block device"),
          (stat.S_ISDIR, "a directory"))


def require_regular_file(path: str | os.PathLike[str], what: str) -> None:
    """Raises ``BadInput`` naming ``what`` and ``path`` unless it is a regular file (a link
    to one counts). A missing path is left to the caller's own message (``FileNotFoundError``
    from ``os.stat``)."""
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        return
    kind = next((text for test, text in _KINDS if test(mode)), "not a regular file")
    raise BadInput(f"{what} {Path(path)} is {kind}; expected a regular file")
