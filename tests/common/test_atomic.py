"""common.atomic, once for every writer: the destination holds the old content or the new one,
never a partial file, and no temporary file is left behind."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

from common import atomic
from common.atomic import atomic_path, atomic_write_bytes, atomic_write_text, temp_path


class Crash(RuntimeError):
    pass


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp-" in p.name)


def test_replaces_the_file_in_one_rename(tmp_path, monkeypatch):
    path = tmp_path / "entry.json"
    path.write_text("old")
    renames = []
    real_replace = os.replace

    def watch(src, dst):
        # Just before the rename the destination still holds the old content.
        renames.append((Path(src).name, Path(dst).name, Path(dst).read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", watch)
    assert atomic_write_text(path, "new ü") == path
    assert renames == [(f".entry.json.tmp-{os.getpid()}", "entry.json", "old")]
    assert path.read_bytes() == "new ü".encode()
    assert leftovers(tmp_path) == []


def test_the_temporary_file_is_a_hidden_sibling():
    dest = Path("/runs/tiny/results.parquet")
    assert temp_path(dest) == Path(f"/runs/tiny/.results.parquet.tmp-{os.getpid()}")


def test_creates_the_parent_folder(tmp_path):
    path = tmp_path / "report" / "figures" / "fig2.png"
    atomic_write_bytes(path, b"\x89PNG")
    assert path.read_bytes() == b"\x89PNG"


@pytest.mark.parametrize("error", [Crash("killed while writing"), OSError("short write")])
def test_an_exception_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "model.pth"
    path.write_bytes(b"old checkpoint")
    with pytest.raises(type(error)):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half a new")
            raise error
    assert path.read_bytes() == b"old checkpoint"
    assert leftovers(tmp_path) == []


def test_a_failed_write_of_a_new_file_leaves_nothing(tmp_path):
    with pytest.raises(Crash):
        with atomic_path(tmp_path / "new.csv") as tmp:
            tmp.write_text("a,b\n")
            raise Crash("killed")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_names_the_destination(tmp_path, monkeypatch):
    path = tmp_path / "t1.json"
    path.write_text("old")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(OSError) as err:
        atomic_write_text(path, "new")
    assert err.value.errno == errno.ENOSPC
    assert str(err.value) == f"[Errno 28] could not write {path}: No space left on device"
    assert path.read_text() == "old"
    assert leftovers(tmp_path) == []

    monkeypatch.setattr(Path, "write_bytes", lambda self, data: full_disk(None))
    with pytest.raises(OSError, match=re.escape(f"could not write checkpoint {path}: No space")):
        atomic_write_bytes(path, b"new", label=f"checkpoint {path}")


def test_an_error_without_errno_gets_eio(tmp_path):
    with pytest.raises(OSError) as err:
        with atomic_path(tmp_path / "x.onnx"):
            raise OSError("the exporter gave up")
    assert err.value.errno == errno.EIO
    assert str(err.value).endswith(f"could not write {tmp_path / 'x.onnx'}: the exporter gave up")
