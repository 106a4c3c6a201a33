"""The project's one "bad input" exception, and the rule that tells it from a crash.

A trial that fails on its input (a bad checkpoint, a malformed dataset, a bad config value, a
diverged loss) fails the same way every time: the sweep records it once as ``"failed"`` and
Ray Tune must not retry it. Anything else (out of memory, a killed worker, a bug) propagates,
is retried and recorded as ``"error"``. So input is refused with ``BadInput`` or a subclass,
each keeping the built-in type callers catch: ``BadInput`` is a ``ValueError``,
``MissingInput`` a ``FileNotFoundError``, ``Diverged`` a ``FloatingPointError`` and
``UnknownName`` a ``KeyError``.
"""

from __future__ import annotations

import errno as _errno


class BadInput(ValueError):
    """Input the run cannot succeed with, however often it is retried; the message names the
    file, key or value and what was expected."""


class MissingInput(BadInput, FileNotFoundError):
    """A file or folder the input names does not exist."""


class Diverged(BadInput, FloatingPointError):
    """The training loss became NaN or infinite: the recipe (e.g. the learning rate) or the
    data does not train, and the same seed diverges again."""


class UnknownName(BadInput, KeyError):
    """A name (architecture, dataset, checkpoint format, pruning method) nobody registered."""

    __str__ = BaseException.__str__  # KeyError's would quote the whole message


# OS errors about the input itself rather than about the machine reading it.
_INPUT_ERRNOS = frozenset({_errno.ENOENT, _errno.ENOTDIR, _errno.EISDIR})


def machine_error(exc: BaseException) -> bool:
    """True for an ``OSError`` the operating system raised about the machine (``EIO``, a
    stale NFS handle, a full disk, too many open files, a permission), which a retry or a
    fix of the machine can cure; False for errors about the input's content.

    Why the errno decides: decoders report a truncated or corrupt file as an ``OSError``
    without one (PIL's "cannot identify image file", "image file is truncated"), while the
    kernel always sets it. Code that turns a reader's errors into ``BadInput`` re-raises the
    exceptions this accepts, so they reach Tune's retries instead of becoming a failed result.
    """
    return (isinstance(exc, OSError) and exc.errno is not None
            and exc.errno not in _INPUT_ERRNOS)
