"""Bad input, round three: a user's own images, checkpoints and folders read before they are
trusted, reruns that notice what changed, no hang on a file that never ends, and a message
that names the thing and what to do. Each class is one parametrized test (or a few); the
README's table has a row per class. Secrets: ``test_secrets.py``; failed rows in the report:
``test_failed_rows.py``; the file tree a sweep leaves: ``test_writes_nowhere_else.py``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.errors import BadInput
from tests.bad_input import kit
from trainables.datasets import build_dataset
from trainables.datasets.files import DatasetError, open_rgb


def within(seconds: float, fn, *args):
    """``fn(*args)``'s result or exception, failing the test if it blocks longer (a hang)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} blocked for more than {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ---------------------------------------------------------------------------------------
# Image modes torchvision would misread, and decompression bombs


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A small PNG whose header is rewritten to declare ``width`` x ``height`` pixels."""
    Image.new("RGB", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # its CRC
    path.write_bytes(bytes(data))
    return path


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 257 * 100], [257 * 200, 65535, 128]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    rgb = np.asarray(open_rgb(tmp_path / "g16.png"))
    assert rgb.shape == (2, 3, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    assert rgb[..., 0].tolist() == [[0, 1, 100], [200, 255, 0]]  # 128 / 257 rounds to 0


@pytest.mark.parametrize("mode, words", [("I", "32-bit integer"), ("F", "32-bit float")])
def test_pixels_without_a_known_scale_are_refused_by_name(tmp_path, mode, words):
    dtype = np.int32 if mode == "I" else np.float32
    path = tmp_path / f"{mode}.tif"
    Image.fromarray(np.full((4, 4), 70000, dtype=dtype), mode=mode).save(path)
    with pytest.raises(DatasetError, match=words) as err:
        open_rgb(path)
    assert str(path) in str(err.value) and "8- or 16-bit PNG" in str(err.value)


@pytest.mark.parametrize("side", [30_000, 10_000])  # 2x over the limit (PIL error), 1.1x (warning)
def test_a_decompression_bomb_is_bad_input_naming_file_and_limit(tmp_path, side):
    path = png_header_only(tmp_path / "bomb.png", side, side)
    with pytest.raises(DatasetError) as err:
        within(10, open_rgb, path)
    text = str(err.value)
    assert str(path) in text and "decompression bomb" in text
    assert f"{Image.MAX_IMAGE_PIXELS:,}" in text


# ---------------------------------------------------------------------------------------
# The folder's class count against the study's classes:


def image_folder(root: Path, classes: list[str], per_class: int = 2) -> Path:
    for split in ("train", "test"):
        for i, c in enumerate(classes):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                Image.new("RGB", (8, 8), (40 * i, 7 * k, 0)).save(root / split / c / f"{k}.png")
    return root


@pytest.mark.parametrize("declared", [1, 2, 7])
def test_declared_classes_must_match_the_folder(tmp_path, declared):
    root = image_folder(tmp_path / "pets", ["cat", "dog", "eel"])
    name = f"imagefolder:{root}"
    with pytest.raises(DatasetError) as err:
        build_dataset(name, None, "train", None, expected_classes=declared)
    text = str(err.value)
    assert name in text and f"datasets.{name}.classes" in text and "has 3 class folders" in text
    assert f"declares {declared}" in text and "set classes: 3" in text
    assert len(build_dataset(name, None, "train", None, expected_classes=3)) == 6


def test_a_single_class_is_refused(tmp_path):
    root = image_folder(tmp_path / "one", ["only"])
    with pytest.raises(DatasetError, match="one class folder \\(only\\).*at least 2"):
        build_dataset(f"imagefolder:{root}", None, "train", None)


# ---------------------------------------------------------------------------------------
# python -m trainables.datasets --check reads every image


@pytest.mark.parametrize("bad", ["empty", "truncated", "bomb", "fifo"])
def test_check_reads_every_image_and_names_the_bad_ones(tmp_path, capsys, bad):
    from trainables.datasets.__main__ import main

    root = image_folder(tmp_path / "data" / "mine", ["a", "b"])
    path = root / "test" / "b" / "x.png"
    if bad == "empty":
        path.write_bytes(b"")
    elif bad == "truncated":
        path.write_bytes((root / "test" / "b" / "0.png").read_bytes()[:30])
    elif bad == "bomb":
        png_header_only(path, 30_000, 30_000)
    else:
        os.mkfifo(path)
    assert within(60, main, ["--check", str(tmp_path / "data"), "imagefolder:mine"]) == 2
    out = capsys.readouterr().out
    assert "ERROR" in out and str(path) in out and "Traceback" not in out, out
    assert out.count("ERROR") == 1


def test_check_of_a_missing_folder_is_one_line(tmp_path, capsys):
    from trainables.datasets.__main__ import main

    assert main(["--check", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --check: ") and str(tmp_path / "nowhere") in err
    assert len(err.strip().splitlines()) == 1


def test_check_of_a_good_folder_is_ok(tmp_path, capsys):
    from trainables.datasets.__main__ import main

    image_folder(tmp_path / "mine", ["a", "b"])
    assert main(["--check", str(tmp_path), "imagefolder:mine"]) == 0
    assert "ok: 4 train / 4 test images, all read" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# Files that never end: refused by name, no hang


@pytest.mark.parametrize("kind", ["fifo", "chardev"])
def test_a_checkpoint_path_that_is_not_a_regular_file(tmp_path, capsys, kind):
    from trainables.checkpoints.__main__ import main

    path = tmp_path / "model.pth"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    assert within(30, main, [str(path)]) == 2
    err = capsys.readouterr().err
    words = "a FIFO (named pipe)" if kind == "fifo" else "a character device"
    assert str(path) in err and words in err and "expected a regular file" in err, err


def test_an_image_that_is_a_fifo_is_named(tmp_path):
    os.mkfifo(tmp_path / "x.png")
    with pytest.raises(DatasetError, match="FIFO"):
        within(10, open_rgb, tmp_path / "x.png")


# ---------------------------------------------------------------------------------------
# Checkpoints whose content reads as something else


def _state(change) -> dict:
    sd = kit.tiny_model().state_dict()
    change(sd)
    return sd


CHECKPOINTS = {
    "sparse-coo": (lambda sd: sd.update({"conv1.weight": sd["conv1.weight"].to_sparse()}), None),
    "int8": (lambda sd: sd.update({k: (v * 100).to(torch.int8) for k, v in sd.items()
                                   if k.endswith("weight")}),
             ["integer or quantized weights", "(int8)", "float checkpoint"]),
    "all-conv-zero": (lambda sd: [v.zero_() for k, v in sd.items() if v.dim() == 4],
                      ["convolution weights are zero", "chance", "trained checkpoint"]),
}


@pytest.mark.parametrize("kind", sorted(CHECKPOINTS))
def test_checkpoint_content_that_would_mislead(tmp_path, kind):
    from trainables.checkpoints import load_checkpoint

    change, words = CHECKPOINTS[kind]
    path = tmp_path / f"{kind}.pth"
    torch.save(_state(change), path)
    if words is None:  # a sparse tensor holds the same values: read as dense
        loaded = load_checkpoint(path, arch=kit.ARCH)
        assert torch.equal(loaded.state_dict["conv1.weight"],
                           kit.tiny_model().state_dict()["conv1.weight"])
        return
    with pytest.raises(BadInput) as err:
        load_checkpoint(path, arch=kit.ARCH)
    assert str(path) in str(err.value) and all(w in str(err.value) for w in words), err.value


# ---------------------------------------------------------------------------------------
# Reruns that notice what changed (the ledger and the output folder)


def test_a_truncated_ledger_file_is_moved_aside_and_rerun(tmp_path):
    from orchestrator.ledger import Ledger

    ledger = Ledger(tmp_path / "trials")
    for tid in ("a", "b"):
        ledger.record(tid, {"status": "finished", "metrics": {"accuracy": 1.0}})
    path = tmp_path / "trials" / "a.json"
    path.write_text(path.read_text()[:20])
    said: list[str] = []
    again = Ledger(tmp_path / "trials", warn=said.append)
    assert again.status("a") is None and again.status("b") == "finished"
    assert len(said) == 1 and str(path) in said[0] and "runs again" in said[0], said
    assert not path.exists() and len(list((tmp_path / "trials" / "corrupt").iterdir())) == 1
    assert Ledger(tmp_path / "trials", warn=said.append).status("a") is None and len(said) == 1


def test_a_changed_checkpoint_retires_its_old_trials(tmp_path):
    from orchestrator.changed import retire_changed, stale_entries
    from orchestrator.grid import expand
    from orchestrator.ledger import Ledger
    from search_spaces.loader import load_study

    kit.write_good_zoo(tmp_path / "ckpt")
    study = load_study(kit.write_study(tmp_path / "s.yaml", ckpt_dir=tmp_path / "ckpt"))
    out = tmp_path / "out"
    out.mkdir()
    first = expand(study, out)
    ledger = Ledger(out / "trials")
    for t in first.all_trials():
        ledger.record(t.trial_id, {"status": "finished", "spec": json.loads(json.dumps(
            __import__("search_spaces.trial", fromlist=["to_dict"]).to_dict(t)))})
    zoo = tmp_path / "ckpt" / kit.ARCH / "gmp_80.pth"
    kit.save_checkpoint(zoo, kit.magnitude_prune(kit.tiny_model(seed=5), 0.8))
    second = expand(study, out)
    stale = stale_entries(second, ledger)
    assert stale and all(e["spec"]["checkpoint"] == str(zoo) for e, _ in stale)
    said: list[str] = []
    assert retire_changed(second, ledger, said.append) == len(stale)
    assert len(said) == 1 and f"checkpoint {zoo} changed since {len(stale)} trial(s)" in said[0]
    assert not stale_entries(second, ledger)
    assert len(list((out / "trials" / "superseded").iterdir())) == len(stale)
    assert len(ledger) == len(first.all_trials()) - len(stale)


def test_another_study_in_the_folder_is_refused_naming_both(tmp_path):
    from orchestrator.options import check_folder_study, mark_folder_study

    mark_folder_study(tmp_path, "tiny")
    check_folder_study(tmp_path, "tiny")
    with pytest.raises(BadInput) as err:
        check_folder_study(tmp_path, "paper")
    assert "holds study 'tiny'" in str(err.value) and "not 'paper'" in str(err.value)


@pytest.mark.parametrize("damage", ["garbage", "missing-report"])
def test_outputs_are_checked_not_only_their_existence(tmp_path, capsys, damage):
    import pandas as pd

    from orchestrator.logs import LogSettings, sweep_logging
    from orchestrator.resume import STAMP, outputs_current

    (tmp_path / STAMP).write_text("s")
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "results.parquet")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("# r")
    assert outputs_current(tmp_path, "s")
    if damage == "garbage":
        (tmp_path / "results.parquet").write_bytes(b"not parquet at all" * 10)
    else:
        (tmp_path / "report" / "report.md").unlink()
    with sweep_logging(LogSettings()):  # the terminal, as the CLI sets it up
        assert not outputs_current(tmp_path, "s")
    err = capsys.readouterr().err
    assert "rebuilding" in err and ("results.parquet" in err or "report.md" in err), err


# ---------------------------------------------------------------------------------------
# --address auto / RAY_ADDRESS=auto joins only this user's own Ray


def test_auto_joins_only_this_users_ray():
    from orchestrator.local_ray import LocalRay, resolve_auto

    mine = LocalRay("127.0.0.1:6379", 10, 1000, "me")
    theirs = LocalRay("10.1.2.3:6380", 11, 1001, "bob")
    assert resolve_auto("--address", [mine, theirs], uid=1000) == "127.0.0.1:6379"
    with pytest.raises(BadInput) as err:
        resolve_auto("RAY_ADDRESS", [theirs], uid=1000)
    assert "another user's: bob (PID 11, at 10.1.2.3:6380)" in str(err.value)
    with pytest.raises(BadInput, match="RAY_ADDRESS auto: no Ray runs on this machine"):
        resolve_auto("RAY_ADDRESS", [], uid=1000)


def test_auto_with_no_ray_of_this_user_exits_2_at_once(tmp_path, capsys, monkeypatch):
    from orchestrator import sweep

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("orchestrator.local_ray.local_rays", lambda: [])
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert sweep.main(["--study", "tiny", "--out", str(tmp_path / "out")]) == 2
    assert "RAY_ADDRESS auto: no Ray runs on this machine" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# The environment and the store: a message that says what to do


@pytest.mark.parametrize("case", ["missing", "read-only"])
def test_tmpdir_that_cannot_be_used(tmp_path, capsys, monkeypatch, case):
    from orchestrator import sweep

    target = tmp_path / "tmp"
    if case == "read-only":
        target.mkdir(mode=0o500)
        if os.access(target, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
    monkeypatch.setenv("TMPDIR", str(target))
    assert sweep.main(["--study", "tiny", "--dry-run", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"TMPDIR={target}" in err and ("mkdir -p" in err or "cannot write" in err), err


@pytest.mark.parametrize("kind", ["truncated", "foreign"])
def test_a_store_that_is_not_mlflows_is_named_with_what_to_do(tmp_path, kind):
    import sqlite3

    from orchestrator.options import check_sqlite_store

    db = tmp_path / "mlflow.db"
    if kind == "truncated":
        db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 10)
    else:
        with sqlite3.connect(db) as c:
            c.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(BadInput) as err:
        check_sqlite_store(f"sqlite:///{db}")
    assert str(db) in str(err.value) and f"mv {db} {db}.broken" in str(err.value)


def test_a_sqlite_store_in_a_missing_folder_is_named(tmp_path):
    from orchestrator.options import check_tracking_uri

    with pytest.raises(BadInput, match=f"{tmp_path / 'nope'}, does not exist; create it"):
        check_tracking_uri(f"sqlite:///{tmp_path}/nope/mlflow.db")
    assert not (tmp_path / "nope").exists()


def test_a_non_ascii_study_path_under_lc_all_c(tmp_path):
    """Under the C locale a non-ASCII path printed to stdout (the dry run's output folder)
    ended the command with a UnicodeEncodeError; it is printed escaped instead."""
    folder = tmp_path / "étude"
    folder.mkdir()
    study = folder / "s.yaml"
    study.write_text((kit.REPO / "search_spaces" / "tiny.yaml").read_text())
    env = {**kit.BASE_ENV, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
           "PYTHONIOENCODING": "ascii", "PYTHONPATH": str(kit.REPO)}
    done = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "--study", str(study),
                           "--dry-run", "--out", str(folder / "out")], env=env,
                          capture_output=True, timeout=120, cwd=tmp_path)
    out, err = done.stdout.decode("ascii"), done.stderr.decode("ascii")
    assert done.returncode == 0 and "Traceback" not in err, err
    assert "tude/out" in out and "dry run: nothing was started" in out


def test_a_full_disk_ends_with_what_to_do_not_a_bug_report(tmp_path, capsys):
    """Trials that errored on ENOSPC are named as a full disk, with ``df`` and the rerun;
    any other error keeps the crash-or-bug line."""
    from orchestrator.grid import expand
    from orchestrator.ledger import ERROR, FINISHED, Ledger
    from orchestrator.logs import LogSettings, sweep_logging
    from orchestrator.resume import end_of_run
    from search_spaces.loader import load_study

    grid = expand(load_study("tiny"), tmp_path, hash_files=False)
    first, second, third = grid.all_trials()[:3]
    ledger = Ledger(tmp_path / "trials")
    ledger.record(first.trial_id, {"status": ERROR, "error": "OSError: [Errno 28] could not "
                                   "write checkpoint zoo/a.pth: No space left on device"})
    ledger.record(second.trial_id, {"status": ERROR, "error": "RuntimeError: boom"})
    ledger.record(third.trial_id, {"status": FINISHED})
    with sweep_logging(LogSettings()):
        code = end_of_run(grid, ledger, tmp_path, "sqlite:///x.db", 0.0)
    err = capsys.readouterr().err
    assert code == 4
    assert f"1 trial(s) errored because a disk was full (No space left on device: " \
           f"{first.trial_id})" in err and f"df -h {tmp_path}" in err
    assert "1 trial(s) errored on every attempt (a crash or a bug" in err


def test_errors_on_a_nearly_full_disk_point_at_it(tmp_path, capsys, monkeypatch):
    """A library that reports a cut-short write in its own words (torch: "unexpected pos")
    still gets the disk named when the output folder's disk is nearly full."""
    import orchestrator.resume as resume
    from orchestrator.grid import expand
    from orchestrator.ledger import ERROR, Ledger
    from orchestrator.logs import LogSettings, sweep_logging
    from search_spaces.loader import load_study

    grid = expand(load_study("tiny"), tmp_path, hash_files=False)
    ledger = Ledger(tmp_path / "trials")
    ledger.record(grid.all_trials()[0].trial_id,
                  {"status": ERROR, "error": "RuntimeError: [enforce fail at "
                   "inline_container.cc:672] . unexpected pos 171840 vs 171736"})
    monkeypatch.setattr(resume, "free_bytes", lambda folder: 260 * 1024)
    with sweep_logging(LogSettings()):
        assert resume.end_of_run(grid, ledger, tmp_path, "sqlite:///x.db", 0.0) == 4
    err = capsys.readouterr().err
    assert f"the disk holding {tmp_path} has 0.3 MiB free" in err and "df -h" in err
