"""``python -m trainables.datasets --download``: torchvision's download code fetches an archive
(here from a loopback HTTP server, in DTD's real layout), the MD5 is checked, and the result is
opened as a trial opens it; datasets no code can fetch get directions and their layout."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest
from PIL import Image

from trainables.datasets import DATASETS, build_dataset
from trainables.datasets.__main__ import main
from trainables.datasets.download import DOWNLOADS, WHERE_TO_GET, download


def _dtd_archive(folder: Path) -> Path:
    """dtd-r1.0.1.tar.gz as published: dtd/images/<47 classes>/*.jpg, dtd/labels/*1.txt."""
    classes = [f"texture{c:02d}" for c in range(47)]
    path = folder / "dtd-r1.0.1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        lines = []
        for i, c in enumerate(classes):
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), (i * 5, 20, 40)).save(buf, "JPEG")
            add(f"dtd/images/{c}/{c}_0001.jpg", buf.getvalue())
            lines.append(f"{c}/{c}_0001.jpg")
        for split in ("train1", "val1", "test1"):
            add(f"dtd/labels/{split}.txt", ("\n".join(lines) + "\n").encode())
    return path


@pytest.fixture
def served(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/www``; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_fetches_checks_and_lays_out_dtd(served, tmp_path, monkeypatch, capsys):
    from torchvision.datasets import DTD

    www, base = served
    archive = _dtd_archive(www)
    monkeypatch.setattr(DTD, "_URL", f"{base}/{archive.name}")
    monkeypatch.setattr(DTD, "_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    root = tmp_path / "data"
    assert main(["--download", "dtd,digits", "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "dtd: ready, 94 train / 47 test images" in out  # train1 + val1 train, test1 tests
    assert "digits: built in, nothing to download" in out
    assert (root / "dtd" / "dtd" / "images" / "texture00" / "texture00_0001.jpg").is_file()
    assert len(build_dataset("dtd", root, "test", None)) == 47


def test_a_wrong_checksum_is_a_failed_download(served, tmp_path, monkeypatch, capsys):
    from torchvision.datasets import DTD

    www, base = served
    archive = _dtd_archive(www)
    monkeypatch.setattr(DTD, "_URL", f"{base}/{archive.name}")
    monkeypatch.setattr(DTD, "_MD5", "0" * 32)
    assert main(["--download", "dtd", "--data-root", str(tmp_path / "data")]) == 1
    assert "dtd: download failed" in capsys.readouterr().out


def test_datasets_no_code_can_fetch_get_directions_and_their_layout(tmp_path, capsys):
    assert main(["--download", "birdsnap,cars,imagenet", "--data-root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "birdsnap: no download code can fetch it" in out
    assert DATASETS.get("cars").meta["layout"] in out
    assert "imagenet/real.json" in out and "imagenetv2/" in out
    with pytest.raises(SystemExit):
        main(["--download", "nosuch", "--data-root", str(tmp_path)])


def test_every_dataset_read_from_files_can_be_fetched_or_says_where_from():
    for name in DATASETS.names():
        if DATASETS.get(name).meta.get("builtin"):
            continue
        assert name in DOWNLOADS or name in WHERE_TO_GET, name
    assert callable(download)
