"""Bad input, round two: the classes the first round left open, each with many inputs.
Every refusal is exit 2 (or a ``StudyError``/``BadInput``) with one paragraph that names the
file, key or value and what was expected, comes within seconds, and leaves nothing written;
reports leave impossible values out of every mean and say so.

Classes: study files without bounds (size, alias expansion, nesting); pruning settings checked
only when the prune trial ran; tracking stores MLflow cannot open and messages cut mid-word;
an output folder that cannot be written; a cluster address that does not answer; checkpoint
files that are something else than a checkpoint; results columns outside their range.
"""

from __future__ import annotations

import copy
import errno
import math
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from common.errors import BadInput
from orchestrator import options as opts
from orchestrator import sweep
from search_spaces import loader
from search_spaces.loader import MAX_STUDY_BYTES, load_study
from search_spaces.schema import StudyError
from tests.bad_input import kit
from tests.reports.sample_results import hand_table

SPACES = Path(__file__).resolve().parents[2] / "search_spaces"
TINY = yaml.safe_load((SPACES / "tiny.yaml").read_text())


@pytest.fixture
def hand():
    return hand_table()


def refused(capsys, argv: list[str], words: list[str]) -> str:
    assert sweep.main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("error: ") and kit.one_paragraph(err), err
    for w in words:
        assert w in err, (w, err)
    return err


# ---------------------------------------------------------------------------------------
# Study files are bounded: size, alias expansion, nesting


def bomb(levels: int = 9, width: int = 9) -> str:
    """A flow list of anchors, each holding ``width`` aliases of the one before: 4 KB of
    text, ``width ** levels`` values once expanded."""
    parts = ["&l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels + 1):
        parts.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "[" + ", ".join(parts) + "]"


def tiny_text(**replace: str) -> str:
    text = (SPACES / "tiny.yaml").read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


BOMBS = {
    # where the expanded value would be walked: str() of the description, the prune settings'
    # tuples, a method label's text, a key the schema refuses by name (never walked at all)
    "description": tiny_text(**{"description: >-": f"description: {bomb()}\nold: >-"}),
    "prune": tiny_text(**{"prune: {batch_size: 64}":
                          f"prune: {{batch_size: 64, exclude: {bomb()}}}"}),
    "label": tiny_text(**{"{label: GMP,": f"{{label: {bomb()},"}),
    "unknown-key": tiny_text() + f"\nx-anchors: {bomb()}\n",
    "wide": tiny_text() + f"\nx: {bomb(levels=3, width=60)}\n",
}


@pytest.mark.parametrize("where", sorted(BOMBS))
def test_alias_bomb_is_refused_at_once(tmp_path, where):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMBS[where])
    assert path.stat().st_size < 8000
    t0 = time.monotonic()
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert msg.startswith(f"{path}: line ") and "expands to more than 100,000 values" in msg
    assert "aliases" in msg


def test_the_base_of_extends_is_bounded_too(tmp_path):
    (tmp_path / "base.yaml").write_text(BOMBS["description"])
    path = tmp_path / "variant.yaml"
    path.write_text("extends: base.yaml\nname: variant\n")
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert "base.yaml" in str(err.value) and "expands to more than 100,000" in str(err.value)


@pytest.mark.parametrize("text, words", [
    ("name: &a [*a]\n", ["line 1", "refers to a value that contains it"]),
    ("a: &a {b: *a}\n", ["recursive structure"]),
    ("name: " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
    ("name: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", ["nested too deeply"]),
], ids=["self-alias", "mapping-self-alias", "deep-lists", "deep-mappings"])
def test_recursive_or_deep_yaml_is_refused(tmp_path, text, words):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert str(err.value).startswith(str(path))
    for w in words:
        assert w in str(err.value), str(err.value)


@pytest.mark.parametrize("size", [MAX_STUDY_BYTES + 1, 47 << 20, 5 << 30])
def test_oversized_study_file_is_refused_unread(tmp_path, size, monkeypatch):
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.write((SPACES / "tiny.yaml").read_bytes())
        f.truncate(size)  # sparse: no disk used
    monkeypatch.setattr(yaml, "load", lambda *a, **k: pytest.fail("the file was parsed"))
    with pytest.raises(StudyError, match=rf"{size:,} bytes; a study file is a few KB"):
        load_study(path)


def test_oversized_study_file_through_the_cli(in_tmp, capsys):
    big = in_tmp.parent / "big.yaml"
    big.write_text(tiny_text() + "\n" + "# filler\n" * (MAX_STUDY_BYTES // 9 + 1))
    t0 = time.monotonic()
    refused(capsys, ["--study", str(big), "--dry-run"], [str(big), "bytes", "a few KB"])
    assert time.monotonic() - t0 < 10
    assert list(in_tmp.iterdir()) == []


def test_anchors_and_merge_keys_of_a_real_study_still_load(tmp_path):
    text = tiny_text(**{
        "  linear:\n    seeds:": "  linear: &mode\n    seeds:",
        "    seeds: {default: [21, 51, 81], mobilenet_tiny: [21]}":
            "    <<: *mode\n    seeds: {default: [21, 51, 81], mobilenet_tiny: [21]}",
    })
    path = tmp_path / "anchors.yaml"
    path.write_text(text)
    study = load_study(path)
    full = study.mode("full")
    assert full.seeds_for("resnet_tiny") == (21, 51, 81)
    assert full.seeds_for("mobilenet_tiny") == (21,)


def test_bounds_are_far_above_the_built_in_studies():
    for name in loader.builtin_studies():
        path = SPACES / f"{name}.yaml"
        assert path.stat().st_size * 50 < MAX_STUDY_BYTES
        load_study(name)


# ---------------------------------------------------------------------------------------
# Pruning settings: checked against each method's config dataclass at start-up


def write_tiny(folder: Path, mutate) -> Path:
    raw = copy.deepcopy(TINY)
    mutate(raw)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def shared(**kw):
    return lambda r: r["upstream"]["prune"].update(kw)


def override(method: str, **kw):
    return lambda r: r["upstream"].setdefault("prune_overrides", {}).setdefault(
        method, {}).update(kw)


PRUNE = [
    (shared(bogus=3), ["upstream.prune.bogus", "not a setting of pruning method 'gmp'",
                       "valid keys", "initial_sparsity", "prune_overrides.gmp"]),
    (shared(cycles=2), ["upstream.prune.cycles", "pruning method 'gmp'"]),  # acdc's own key
    (shared(exclude="fc"), ["upstream.prune.exclude", "expected a list of names", "'fc'"]),
    (shared(exclude=[1, 2]), ["upstream.prune.exclude", "list of names"]),
    (shared(lr_schedule="linear"), ["lr_schedule must be 'cosine' or 'constant'", "'linear'"]),
    (shared(lr_schedule=5), ["upstream.prune.lr_schedule", "expected text", "5"]),
    (shared(report_every=0), ["upstream.prune.report_every"]),
    (override("gmp", init_sparsity=0.5), ["upstream.prune_overrides.gmp.init_sparsity",
                                          "initial_sparsity"]),
    (override("gmp", initial_sparsity="x"), ["upstream.prune_overrides.gmp.initial_sparsity",
                                             "expected a number", "'x'"]),
    (override("acdc", cycles="lots"), ["upstream.prune_overrides.acdc.cycles",
                                       "expected an integer", "'lots'"]),
    (override("acdc", cycles=1.5), ["prune_overrides.acdc.cycles", "integer"]),
    (override("acdc", warmup_fraction=0.9), ["prune_overrides.acdc (method 'acdc')",
                                             "warmup_fraction must be in [0, 1 - finetune"]),
    (override("acdc", cycles=-1), ["cycles must be >= 0"]),
    (override("rigl_erk1x", alpha=2), ["rigl_erk1x", "alpha must be in [0, 1]", "2"]),
    (override("rigl_erk1x", alpha=float("nan")), ["prune_overrides.rigl_erk1x.alpha",
                                                  "finite"]),
    (override("rigl_erk1x", from_scratch="no"), ["prune_overrides.rigl_erk1x.from_scratch",
                                                 "true or false", "'no'"]),
    (override("rigl_erk5x", multiplier=0), ["multiplier must be >= 1"]),
    (override("str", s_init="low"), ["prune_overrides.str.s_init", "number"]),
    (override("woodfisher", block_size=True), ["prune_overrides.woodfisher.block_size",
                                               "integer"]),
    (override("gmpp", steps=3), ["upstream.prune_overrides.gmpp", "not a method of this study",
                                 "woodfisher"]),
]


@pytest.mark.parametrize("mutate, words", PRUNE)
def test_prune_settings_are_checked_at_start_up(in_tmp, capsys, mutate, words):
    path = write_tiny(in_tmp.parent, mutate)
    err = refused(capsys, ["--study", str(path), "--dry-run"], [str(path), *words])
    assert "upstream" in err


def test_prune_settings_are_checked_before_a_real_run_writes_anything(in_tmp, capsys):
    path = write_tiny(in_tmp.parent, override("acdc", cycles="lots"))
    refused(capsys, ["--study", str(path), "--out", str(in_tmp / "out"), "--no-speed"],
            ["prune_overrides.acdc.cycles"])
    assert list(in_tmp.iterdir()) == []


def test_good_prune_settings_pass(in_tmp, capsys):
    def mutate(r):
        r["upstream"]["prune"].update(steps=200, exclude=["fc"], lr=0.05, batch_size=32)
        r["upstream"]["prune_overrides"] = {
            "acdc": {"cycles": 3, "warmup_fraction": 0.2}, "rigl_erk1x": {"alpha": 0.5},
            "gmp": {"initial_sparsity": 0.1}, "str": {"s_init": -6}}
    path = write_tiny(in_tmp.parent, mutate)
    assert sweep.main(["--study", str(path), "--dry-run"]) == 0, capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Tracking stores: refused before anything is written; messages whole and fitting


@pytest.mark.parametrize("uri, words", [
    ("file:///tmp/mlruns", ["MLflow's file store", "sqlite:////abs/path/mlflow.db"]),
    ("file:./mlruns", ["file store"]),
    ("mlflow.db", ["a plain path", "sqlite:///mlflow.db"]),
    ("/data/mlruns", ["a plain path", "sqlite:////data/mlruns"]),
    ("./runs", ["a plain path"]),
    ("C:\\mlruns", ["a plain path"]),
    ("foo://bar", ["scheme 'foo'", "http, https, sqlite"]),
    ("s3://bucket/mlruns", ["scheme 's3'"]),
    ("htp://127.0.0.1:5000", ["scheme 'htp'"]),
])
def test_tracking_stores_mlflow_cannot_open(in_tmp, capsys, uri, words):
    refused(capsys, ["--tracking-uri", uri, "--dry-run"], ["--tracking-uri", repr(uri), *words])
    assert list(in_tmp.iterdir()) == []


def test_a_file_store_passes_when_mlflow_is_told_to_open_it(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    opts.check_tracking_uri("file:///tmp/mlruns")
    opts.check_tracking_uri("mlflow.db")


FILE_STORE = (  # MLflow 3.17's message, with the URL the old clipping cut to "See htt."
    "The filesystem tracking backend (e.g., './mlruns') is in maintenance mode and will not "
    "receive further updates. Please migrate to a database backend (e.g., "
    "'sqlite:///mlflow.db') to access the latest MLflow features. The `mlflow "
    "migrate-filestore` tool migrates your existing data losslessly. See "
    "https://mlflow.org/docs/latest/self-hosting/migrate-from-file-store for migration "
    "guidance. If the filesystem backend is required for your workflow, set "
    "`MLFLOW_ALLOW_FILE_STORE=true` to opt out of this exception.")
REFUSED = (
    "API request to http://127.0.0.1:9/api/2.0/mlflow/experiments/get-by-name failed with "
    "exception HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: "
    "/api/2.0/mlflow/experiments/get-by-name?experiment_name=x (Caused by NewConnectionError("
    "'<urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new "
    "connection: [Errno 111] Connection refused'))")


@pytest.mark.parametrize("uri, text, words, absent", [
    ("file:///tmp/m", FILE_STORE, ["maintenance mode", "latest MLflow features."],
     ["See htt", "Start the server"]),
    ("http://u:pw@127.0.0.1:9", REFUSED, ["cannot connect: [Errno 111] Connection refused",
                                          "Start the server", "http://***@127.0.0.1:9"],
     ["pw", "Max retries"]),
    ("sqlite:////ro/x.db", "(sqlite3.OperationalError) unable to open database file",
     ["unable to open database file", "folder exists and is writable"], ["Start the server"]),
    ("postgresql://u:pw@h/db", "No module named 'psycopg2'",
     ["psycopg2", "driver"], ["pw@", "Start the server"]),
    ("http://h:5000", "word " * 200, ["word ..."], []),
])
def test_store_errors_are_whole_and_fit_the_store(uri, text, words, absent):
    from orchestrator.tracking import store_error

    msg = store_error(uri, RuntimeError(text))
    assert msg.startswith("cannot use the MLflow tracking store at ") and "\n" not in msg
    assert msg.endswith("leave both unset to use the SQLite file in the output folder.")
    assert ".." not in msg.replace("...", "")
    for w in words:
        assert w in msg, (w, msg)
    for w in absent:
        assert w not in msg, (w, msg)


def test_a_store_that_fails_leaves_no_output_folder(in_tmp, capsys):
    out = in_tmp / "out"
    t0 = time.monotonic()
    refused(capsys, ["--study", "paper", "--out", str(out),
                     "--tracking-uri", f"http://127.0.0.1:{kit.free_port()}"],
            ["cannot use the MLflow tracking store", "Connection refused", "Start the server"])
    assert time.monotonic() - t0 < 60
    assert list(in_tmp.iterdir()) == []


# ---------------------------------------------------------------------------------------
# The output folder must be writable, checked before anything starts


@pytest.mark.parametrize("new", [False, True], ids=["existing", "new-under-it"])
def test_unwritable_output_folder(in_tmp, capsys, monkeypatch, new):
    folder = in_tmp.parent / "ro"
    folder.mkdir()

    def no_write(dir, prefix):  # what a read-only mount or a folder of another user answers
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(opts.tempfile, "mkstemp", no_write)
    out = folder / "a" / "b" if new else folder
    words = ["--out", f"cannot write in {folder}", "Permission denied"]
    if new:
        words.append(f"{out} cannot be made")
    refused(capsys, ["--study", "paper", "--out", str(out)], words)
    refused(capsys, ["--study", "paper", "--out", str(out), "--dry-run"], words)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("name", ["mlflow.db", "sweep.lock", "results.parquet", "trials"])
def test_read_only_file_of_an_earlier_run(in_tmp, capsys, monkeypatch, name):
    out = in_tmp.parent / "run"
    out.mkdir()
    (out / name).mkdir() if name == "trials" else (out / name).write_text("")
    real = os.access
    monkeypatch.setattr(opts.os, "access",  # root ignores permission bits: say what a user sees
                        lambda p, mode: False if Path(p).name == name else real(p, mode))
    refused(capsys, ["--study", "paper", "--out", str(out)],
            [f"{out / name} (from an earlier run) is read-only"])


def _read_only_mount_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind -o ro / / 2>/dev/null"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _read_only_mount_works(),
                    reason="needs unshare -m and mount (a private read-only bind mount)")
@pytest.mark.parametrize("sub", ["", "new/run"])
def test_read_only_mount_as_out(tmp_path, sub):
    """The real thing: a read-only mount, in a mount namespace of the test's own."""
    ro = tmp_path / "ro"
    ro.mkdir()
    out = ro / sub if sub else ro
    cmd = " ".join(kit.sweep_cmd("--study", "paper", "--out", str(out)))
    t0 = time.monotonic()
    res = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind -o ro {ro} {ro} && "
                          f"exec {cmd}"], cwd=kit.REPO, env=kit.BASE_ENV, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert kit.one_paragraph(res.stderr) and "Read-only file system" in res.stderr, res.stderr
    assert time.monotonic() - t0 < 60
    assert list(ro.iterdir()) == []


# ---------------------------------------------------------------------------------------
# A cluster address that does not answer: refused in seconds, not minutes of Ray retries


@pytest.mark.parametrize("address, words", [
    ("127.0.0.1:{port}", ["nothing answers there", "Connection refused", "ray start --head"]),
    ("ray://127.0.0.1:{port}", ["nothing answers there"]),
    ("nohost.invalid:6379", ["nothing answers there"]),
    ("foo", ["expected the head's address as host:port"]),
    ("10.0.0.5", ["host:port"]),
    (":6379", ["host:port"]),
    ("host:port", ["host:port"]),
])
@pytest.mark.parametrize("source", ["--address", "RAY_ADDRESS"])
def test_cluster_address_that_does_not_answer(in_tmp, capsys, monkeypatch, address, words,
                                             source):
    address = address.format(port=kit.free_port())
    argv = ["--study", "paper", "--out", str(in_tmp / "out")]
    if source == "--address":
        argv += ["--address", address]
    else:
        monkeypatch.setenv("RAY_ADDRESS", address)
    t0 = time.monotonic()
    refused(capsys, argv, [source, repr(address), *words])
    assert time.monotonic() - t0 < 30
    assert list(in_tmp.iterdir()) == []


# ---------------------------------------------------------------------------------------
# Checkpoint files that are something else: say what they are and what is accepted


def cli_error(capsys, *argv: str) -> str:
    from trainables.checkpoints.__main__ import main

    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ")
    assert kit.one_paragraph(captured.err), captured.err
    return captured.err


def _write(kind: str, path: Path) -> None:
    import gzip
    import pickle

    import numpy as np
    import torch

    sd = kit.tiny_model().state_dict()
    if kind == "random":
        path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    elif kind == "random-small":
        path.write_bytes(bytes([0x6C, 0xA3, 0xCA, 0xC6, 0x97, 0xAE]))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello world\n")
    elif kind == "html":
        path.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    elif kind == "npy":
        np.save(path.with_suffix(".npy"), np.zeros(3))
        path.with_suffix(".npy").rename(path)
    elif kind == "hdf5":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    elif kind == "gzip":
        path.write_bytes(gzip.compress(b"x" * 100))
    elif kind == "plain-pickle":
        path.write_bytes(pickle.dumps({"state_dict": {"w": [1.0]}}))
    elif kind == "legacy-protocol-4":
        torch.save(sd, path, _use_new_zipfile_serialization=False, pickle_protocol=4)
    elif kind == "whole-model":
        torch.save(kit.tiny_model(), path)
    elif kind == "safetensors-truncated":
        data = kit.write_safetensors(path, sd).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "safetensors-bad-header":
        path.write_bytes((20).to_bytes(8, "little") + b"{not json at all!!!}" + bytes(8))
    elif kind == "safetensors-unknown-dtype":
        kit.write_safetensors(path, {"w": torch.zeros(2)})
        path.write_bytes(path.read_bytes().replace(b'"F32"', b'"F99"'))


CHECKPOINT_KINDS = [
    ("random", ["is not a checkpoint", "match no known file type"]),
    ("random-small", ["is not a checkpoint", "match no known file type"]),
    ("empty", ["is empty (0 bytes)"]),
    ("text", ["is a text file (plain text"]),  # never quoted: test_secrets.py
    ("html", ["is a text file (an HTML page"]),
    ("npy", ["is a NumPy array file"]),
    ("hdf5", ["is an HDF5 file"]),
    ("gzip", ["gzip-compressed; decompress it first"]),
    ("plain-pickle", ["plain Python pickle", "NOT executed", "torch.save(model.state_dict()"]),
    ("legacy-protocol-4", ["legacy-format torch file", "pickle protocol 4", "save it again"]),
    ("whole-model", ["refused", "pickled Python object (trainables.models.TinyResNet)",
                     "could run code", "NOT executed", "torch.save(model.state_dict(), path)"]),
    ("safetensors-truncated", ["damaged safetensors file", "does not fit bytes", "truncated"]),
    ("safetensors-bad-header", ["damaged safetensors file", "header is not JSON"]),
    ("safetensors-unknown-dtype", ["damaged safetensors file", "'F99'", "F32"]),
]


@pytest.mark.parametrize("kind, words", CHECKPOINT_KINDS, ids=[k for k, _ in CHECKPOINT_KINDS])
def test_checkpoint_file_that_is_something_else(tmp_path, capsys, kind, words):
    path = tmp_path / "model.pth"
    _write(kind, path)
    err = cli_error(capsys, str(path))
    assert str(path) in err
    for w in words:
        assert w in err, (w, err)
    if kind != "whole-model":
        assert "could run code" not in err  # only an object that would run code is one
    if not kind.startswith("safetensors") and kind not in ("legacy-protocol-4", "whole-model"):
        assert "Accepted: a file written by torch.save" in err and ".safetensors" in err


@pytest.mark.parametrize("sparsity", [0, 80])
def test_safetensors_checkpoint_is_read(tmp_path, sparsity):
    from trainables import checkpoints as ck

    model = kit.magnitude_prune(kit.tiny_model(), sparsity / 100)
    path = kit.write_safetensors(tmp_path / "gmp.safetensors", model.state_dict())
    ckpt = ck.load_checkpoint(path, arch=kit.ARCH, expect_sparsity=sparsity)
    assert ckpt.arch == kit.ARCH
    for name, tensor in model.state_dict().items():
        assert (ckpt.state_dict[name] == tensor).all(), name


# ---------------------------------------------------------------------------------------
# Results columns outside their range: left out of every mean and named in the notes


@pytest.mark.parametrize("column, value, words", [
    ("train_time_s", -5.0, ["'train_time_s' must be >= 0 (seconds)", "(-5)"]),
    ("epoch_time_s", -0.1, ["'epoch_time_s'"]),
    ("deepsparse_ms_b64", 0.0, ["'deepsparse_ms_b64' must be > 0 (ms)"]),
    ("deepsparse_ms_b1_p90", -3.0, ["'deepsparse_ms_b1_p90'"]),
    ("speedup_inference", 0.0, ["'speedup_inference' must be > 0 (a ratio)"]),
    ("speedup_inference", -2.0, ["'speedup_inference'"]),
    ("speedup_epoch", math.inf, ["'speedup_epoch'", "(inf)"]),
    ("speedup_vs_onnxruntime", -1.0, ["'speedup_vs_onnxruntime'"]),
    ("sparsity_measured", 150.0, ["'sparsity_measured' must be [0, 100] (percent)"]),
    ("sparsity_measured", -1.0, ["'sparsity_measured'"]),
    ("filters_pruned_share", 1.5, ["'filters_pruned_share' must be [0, 1] (a share)"]),
    ("macs_share", -0.2, ["'macs_share'"]),
    ("accuracy_last", 250.0, ["'accuracy_last' must be [0, 100]"]),
    ("epochs", 0, ["'epochs' must be >= 1 (a count)"]),
    ("batch", -64, ["'batch'"]),
    ("lr", 0.0, ["'lr' must be > 0"]),
])
def test_results_outside_their_range_are_left_out_and_named(hand, column, value, words):
    from reports.prepare import prepare_with_notes

    good = {"accuracy_last": 50.0, "sparsity_measured": 80.0, "filters_pruned_share": 0.1,
            "macs_share": 0.3, "epochs": 10, "batch": 64, "lr": 0.1}.get(column, 2.5)
    table = hand.assign(**{column: good})
    table.loc[table.index[3], column] = value
    data, notes = prepare_with_notes(table, "results.csv")
    note = next((n for n in notes if f"'{column}'" in n), "")
    for w in words:
        assert w in note, (w, notes)
    assert "1 value(s) outside it are left out" in note and "row 4 (" in note
    assert math.isnan(data.loc[3, column])  # out of every mean
    assert (data[column].drop(index=3) == good).all()  # the rest untouched


def test_results_in_range_give_no_note(hand):
    from reports.prepare import RANGES, prepare_with_notes

    table = hand.assign(**{c: (lo if ok else lo + 1) for c, (lo, _, ok, _) in RANGES.items()})
    _, notes = prepare_with_notes(table)
    assert not [n for n in notes if "must be" in n], notes


def test_report_names_the_left_out_values(hand, tmp_path):
    from reports.__main__ import main as reports_main

    table = hand.assign(train_time_s=10.0)
    table.loc[table.index[[1, 5]], "train_time_s"] = [-4.0, -9.0]
    csv = tmp_path / "results.csv"
    table.to_csv(csv, index=False)
    assert reports_main(["--results", str(csv), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "'train_time_s' must be >= 0 (seconds): 2 value(s) outside it are left out" in text
    assert "row 2 (-4), 6 (-9)" in text


# ---------------------------------------------------------------------------------------
# Reading commands never create what they read, nor wait on a server without a word


@pytest.mark.parametrize("uri", ["file:///{tmp}/typo", "{tmp}/typo", "sqlite:///{tmp}/typo.db",
                                 "sqlite:////{tmp}/nowhere/mlflow.db"])
def test_reports_on_a_mistyped_store_create_nothing(tmp_path, capsys, uri):
    from reports.__main__ import main as reports_main

    uri = uri.format(tmp=str(tmp_path).lstrip("/") if uri.startswith("file") else tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert reports_main(["--mlflow-uri", uri, "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert "MLflow store not found" in err and "Traceback" not in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_reports_on_a_server_that_does_not_answer(tmp_path, capsys, monkeypatch):
    from reports.__main__ import main as reports_main

    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    t0 = time.monotonic()
    assert reports_main(["--mlflow-uri", f"http://127.0.0.1:{kit.free_port()}",
                         "--out", str(tmp_path / "r")]) == 2
    assert time.monotonic() - t0 < 60
    err = capsys.readouterr().err
    assert "cannot connect: [Errno 111] Connection refused" in err and "\n" == err[-1]
    assert kit.one_paragraph(err) and not (tmp_path / "r").exists()


def test_bad_input_is_a_value_error_for_every_refusal_above():
    """The sweep's exit-2 rule catches ``StudyError`` and ``BadInput``: both are BadInput."""
    assert issubclass(StudyError, BadInput) and issubclass(BadInput, ValueError)
