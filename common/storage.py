"""Where trials keep what outlives them: a local folder, or cloud storage named by a URI.

Why one module: with ``--storage s3://bucket/prefix`` (or ``gs://``, or any URI pyarrow's
file systems open) the nodes of a cluster share no folder, so the feature cache, the zoo, the
normalisation statistics and the full-finetuning state are objects in a bucket, as Ray's own
``storage_path`` is. Every place that reads or writes them goes through these functions,
which take a *location*: a local path (written through ``common.atomic``, exactly as before)
or a URI (one object: a PUT is all or nothing, so readers never see a partial one).

Errors name the location with any credentials in it masked (``masked``) and keep an errno, so
``common.errors.machine_error`` tells a storage outage (retry) from bad input; a missing
object is a ``FileNotFoundError``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from common.atomic import atomic_path, atomic_write_bytes

T = TypeVar("T")

# Query parameters of a pyarrow URI that carry secrets (S3FileSystem's and GcsFileSystem's).
_SECRET_PARAMS = ("access_key", "secret_key", "session_token", "access_token",
                  "credential", "password", "token")


def is_uri(location: str | os.PathLike[str] | None) -> bool:
    """Whether ``location`` is a URI of another file system (``s3://``, ``gs://``,
    ``hdfs://``...) rather than a local path (``file://`` counts as local)."""
    if location is None or isinstance(location, Path):
        return False
    scheme = urlsplit(str(location)).scheme
    return len(scheme) > 1 and "://" in str(location) and scheme.lower() != "file"


def join(root: str | os.PathLike[str], *parts: str) -> str:
    """``root`` with ``parts`` appended: a path for a local root, a URI (its query kept at the
    end, where pyarrow reads it) for a URI root."""
    if not is_uri(root):
        return str(Path(root).joinpath(*parts))
    s = urlsplit(str(root))
    path = "/".join([s.path.rstrip("/"), *(p.strip("/") for p in parts)])
    return urlunsplit((s.scheme, s.netloc, path, s.query, ""))


def masked(location: str | os.PathLike[str]) -> str:
    """The location for messages: ``user:secret@`` and secret query values as ``***``."""
    text = re.sub(r"//[^/@]*@", "//***@", str(location))
    names = "|".join(_SECRET_PARAMS)
    return re.sub(rf"(?i)([?&](?:{names})=)[^&]*", r"\1***", text)


def filesystem(location: str) -> tuple[Any, str]:
    """``(pyarrow FileSystem, path on it)`` of a URI; a URI pyarrow cannot open is bad input
    (``ValueError``) naming it."""
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(str(location))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{masked(location)} is not a storage URI pyarrow can open ({e}); "
                         "expected e.g. s3://bucket/prefix, gs://bucket/prefix or a local "
                         "path") from None


def _os_error(action: str, location: str, err: BaseException) -> OSError:
    """pyarrow's error as an ``OSError`` whose errno says what kind of fault it is and whose
    message names the location (masked): a missing object ``ENOENT`` (a
    ``FileNotFoundError``), refused credentials ``EACCES``, anything else ``EIO``."""
    text = str(err).replace("\n", " ")
    low = text.lower()
    missing_object = "no_such_key" in low or "path does not exist" in low or (
        "not found" in low and "bucket" not in low)
    if isinstance(err, FileNotFoundError) or missing_object:
        code = errno.ENOENT
    elif any(w in low for w in ("access_denied", "accessdenied", "forbidden",
                                "invalid_access_key", "invalidaccesskeyid",
                                "signature_does_not_match", "signaturedoesnotmatch")):
        code = errno.EACCES
    else:
        code = getattr(err, "errno", None) or errno.EIO
    cls = FileNotFoundError if code == errno.ENOENT else OSError
    return cls(code, f"could not {action} {masked(location)}: {text}")


def _on_storage(action: str, location: str, work: Callable[[Any, str], T],
                label: str | None = None) -> T:
    """``work(filesystem, path)`` on a URI's file system, its ``OSError`` (resolving the
    file system included: S3 asks for the bucket's region) turned by ``_os_error``."""
    try:
        fs, path = filesystem(location)
        return work(fs, path)
    except OSError as e:
        raise _os_error(action, label or location, e) from None


def _read(fs: Any, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return f.read()


def read_bytes(location: str | os.PathLike[str]) -> bytes:
    """The whole file or object. Raises ``FileNotFoundError`` when there is none."""
    if not is_uri(location):
        return Path(location).read_bytes()
    return _on_storage("read", str(location), _read)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


def write_bytes(location: str | os.PathLike[str], data: bytes, *,
                label: str | None = None) -> None:
    """Replace the file or object with ``data``, all at once (``common.atomic`` locally)."""
    if not is_uri(location):
        atomic_write_bytes(location, data, label=label)
        return

    def write(fs: Any, path: str) -> None:
        fs.create_dir(_parent(path), recursive=True)
        with fs.open_output_stream(path) as f:
            f.write(data)

    _on_storage("write", str(location), write, label)


def exists(location: str | os.PathLike[str]) -> bool:
    """Whether a file or object is there."""
    if not is_uri(location):
        return Path(location).is_file()
    import pyarrow.fs as pafs

    return _on_storage("look up", str(location),
                       lambda fs, path: fs.get_file_info(path).type == pafs.FileType.File)


def delete(location: str | os.PathLike[str]) -> None:
    """Remove a file or object; a missing one is no error."""
    if not is_uri(location):
        Path(location).unlink(missing_ok=True)
        return
    try:
        _on_storage("delete", str(location), lambda fs, path: fs.delete_file(path))
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def local_copy(location: str | os.PathLike[str]) -> Iterator[Path]:
    """A local path to read the file or object at: the path itself, or a temporary download
    (same file name) removed on leaving the block."""
    if not is_uri(location):
        yield Path(location)
        return
    folder = tempfile.mkdtemp(prefix="sparse-transfer-")
    try:
        local = Path(folder) / (str(location).split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                                or "object")

        def download(fs: Any, path: str) -> None:
            with fs.open_input_stream(path) as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)

        _on_storage("read", str(location), download)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def publish(location: str | os.PathLike[str], *, label: str | None = None) -> Iterator[Path]:
    """A local temporary path to write; on success it becomes the file (atomic rename) or the
    object (one upload). On failure nothing is published."""
    if not is_uri(location):
        with atomic_path(location, label=label) as tmp:
            yield tmp
        return
    folder = tempfile.mkdtemp(prefix="sparse-transfer-")
    try:
        tmp = Path(folder) / "upload"
        yield tmp

        def upload(fs: Any, path: str) -> None:
            fs.create_dir(_parent(path), recursive=True)
            with open(tmp, "rb") as src, fs.open_output_stream(path) as dst:
                shutil.copyfileobj(src, dst, 1 << 22)

        _on_storage("write", str(location), upload, label)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
