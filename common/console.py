"""The terminal a command prints to, made safe for any text it may print."""

from __future__ import annotations

import sys


def tolerant_streams() -> None:
    """stdout and stderr print any character: one the terminal's encoding lacks (a
    non-ASCII study path under ``LC_ALL=C``) shows as ``\\xe9`` instead of ending the command
    with a ``UnicodeEncodeError`` where its message should have been."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
