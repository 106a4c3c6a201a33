"""Bad input, one case at a time: each must give a clear error that names the
file / key / value and says what was expected, with no traceback, and leave finished work
alone. These run without Ray; ``test_in_sweep.py`` checks the same inputs inside a sweep.
"""

from __future__ import annotations

import errno
import gc
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from common.atomic import temp_path
from search_spaces.recipe import Recipe
from search_spaces.trial import TrialSpec
from tests.bad_input import kit
from trainables import checkpoints as ck
from trainables.checkpoints.__main__ import main as checkpoints_main
from trainables.entry import full, linear
from trainables.entry.trial import run_trial
from trainables.datasets import DatasetError, DatasetNotFoundError, build_dataset
from trainables.training.features import FeatureCache
from trainables.entry.context import TrialContext


@pytest.fixture
def good(tmp_path) -> Path:
    """An 80 %-sparse resnet_tiny checkpoint in the reference format."""
    return kit.save_checkpoint(tmp_path / "gmp_80.pth", kit.magnitude_prune(kit.tiny_model(), 0.8))


def cli_error(capsys, *argv: str) -> str:
    """``python -m trainables.checkpoints`` on a file: exit code 2, one paragraph on stderr."""
    assert checkpoints_main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert kit.one_paragraph(captured.err), captured.err
    assert captured.err.startswith("error: ")
    return captured.err


# ---------------------------------------------------------------------------------------
# Checkpoints


def test_truncated_checkpoint(good, capsys):
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(good, arch=kit.ARCH, expect_sparsity=80)
    msg = str(err.value)
    assert str(good) in msg and "truncated" in msg
    assert str(good) in cli_error(capsys, str(good))


def test_unknown_checkpoint_format(tmp_path, capsys):
    path = tmp_path / "odd.pth"
    torch.save({"weights": [1, 2, 3], "note": "not a model"}, path)
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path, arch=kit.ARCH)
    msg = str(err.value)
    assert str(path) in msg and "no known format" in msg
    assert "'weights'" in msg  # what was found
    for fmt in ck.FORMATS.names():  # and what each known format expects
        assert fmt in msg
    assert "no known format" in cli_error(capsys, str(path))


def test_checkpoint_that_would_run_code_is_refused_not_executed(tmp_path, good, capsys):
    marker = tmp_path / "pwned"
    payload = torch.load(good, weights_only=True)
    payload["extra"] = kit.RunsCode(marker)
    evil = tmp_path / "evil.pth"
    torch.save(payload, evil)

    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(evil, arch=kit.ARCH)
    assert str(evil) in str(err.value) and "NOT executed" in str(err.value)
    assert "refused" in cli_error(capsys, str(evil))
    assert not marker.exists()

    # Control: the payload is live, so the refusal above is what kept the marker away.
    torch.load(evil, weights_only=False)
    assert marker.read_text() == "executed"


def test_sparsity_differs_from_the_study(good, capsys):
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(good, arch=kit.ARCH, expect_sparsity=90)
    msg = str(err.value)
    assert str(good) in msg and "80.0" in msg and "90% was declared" in msg
    assert "90% was declared" in cli_error(capsys, str(good), "--expect-sparsity", "90")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "100.5", "1e9"])
def test_expected_sparsity_must_be_a_percent(good, capsys, value):
    """NaN fails every "differs by more than" test, so it must be refused as a percent."""
    with pytest.raises(ValueError, match=r"expected sparsity must be a percent in \[0, 100\]"):
        ck.load_checkpoint(good, arch=kit.ARCH, expect_sparsity=float(value))
    err = cli_error(capsys, str(good), f"--expect-sparsity={value}")
    assert str(good) in err and "[0, 100]" in err


@pytest.mark.parametrize("change, expected", [
    ("missing", "missing keys (layer1.0.conv1.weight"),
    ("extra", "unexpected keys (head2.weight"),
    ("shape", "shape mismatches (conv1.weight: checkpoint [16, 3, 5, 5] vs model"),
])
def test_architecture_mismatch(tmp_path, capsys, change, expected):
    sd = kit.tiny_model().state_dict()
    if change == "missing":
        del sd["layer1.0.conv1.weight"]
    elif change == "extra":
        sd["head2.weight"] = torch.zeros(3, 3)
    else:
        sd["conv1.weight"] = torch.zeros(16, 3, 5, 5)
    path = tmp_path / f"{change}.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path, arch=kit.ARCH)
    msg = str(err.value)
    assert str(path) in msg and "does not fit architecture 'resnet_tiny'" in msg
    assert expected in msg
    assert expected in cli_error(capsys, str(path), "--arch", kit.ARCH)


def test_checkpoint_of_another_architecture(tmp_path):
    path = tmp_path / "r18.pth"
    ck.save_reference_checkpoint(path, kit.tiny_model().state_dict(), "resnet18", "imagenet")
    with pytest.raises(ValueError, match="declares architecture 'resnet18'.*asked for"):
        ck.load_checkpoint(path, arch=kit.ARCH)


@pytest.mark.parametrize("where", ["bn1.running_var", "conv1.weight"])
def test_checkpoint_with_nan_values(tmp_path, capsys, where):
    """A diverged upstream run: NaN in BatchNorm statistics would not even make the
    finetuning loss NaN (train-mode BN), so the trial would finish at chance accuracy."""
    model = kit.magnitude_prune(kit.tiny_model(), 0.8)
    with torch.no_grad():
        tensor = dict(model.named_parameters()).get(where)
        if tensor is None:
            tensor = dict(model.named_buffers())[where]
        tensor[tensor != 0] = float("nan")
    path = kit.save_checkpoint(tmp_path / "diverged.pth", model)
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path, arch=kit.ARCH, expect_sparsity=80)
    assert str(path) in str(err.value) and f"NaN or infinite values in 1 tensor(s) ({where})" \
        in str(err.value)
    assert where in cli_error(capsys, str(path))


def test_missing_checkpoint_file(tmp_path, capsys):
    path = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=str(path)):
        ck.load_checkpoint(path)
    assert "does not exist" in cli_error(capsys, str(path))


# ---------------------------------------------------------------------------------------
# Datasets


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("dtd", tmp_path, "train", None)
    msg = str(err.value)
    assert str(tmp_path / "dtd") in msg and "Expected layout" in msg
    with pytest.raises(DatasetNotFoundError, match=f"expected {tmp_path / 'gone'}.*layout"):
        build_dataset(f"imagefolder:{tmp_path / 'gone'}", None, "train", None)


def make_imagefolder(root: Path, splits=("train", "test"), classes=("a", "b"), n=3) -> Path:
    from PIL import Image

    for split in splits:
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(d / f"{i}.png")
    return root


def test_dataset_folder_with_wrong_layout(tmp_path):
    flat = make_imagefolder(tmp_path / "flat", splits=("train",))
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset(f"imagefolder:{flat}", None, "test", None)
    assert str(flat / "test") in str(err.value) and "Expected layout" in str(err.value)

    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_text("not a pickle")
    with pytest.raises(DatasetError) as err:
        build_dataset("cifar10", tmp_path, "train", None)
    assert "cifar-10-batches-py" in str(err.value) and "download=True" not in str(err.value)


def test_unreadable_image(tmp_path):
    root = make_imagefolder(tmp_path / "imgs")
    bad = root / "train" / "b" / "1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    ds = build_dataset(f"imagefolder:{root}", None, "train", None)
    index = ds.files.index(bad)
    ds[index - 1]  # the others still read
    with pytest.raises(DatasetError, match=f"cannot read image file {bad}"):
        ds[index]


# ---------------------------------------------------------------------------------------
# Study files, through the CLI's dry run


BASE_STUDY = """\
name: bad
arch: resnet_tiny
methods:
  dense: {family: dense, sparsities: [0]}
  gmp: {family: progressive, sparsities: [80]}
datasets:
  digits: {classes: 10, metric: top1, group: general}
modes:
  linear: {seeds: [21], recipe: {epochs: 2, lr: 0.1}}
"""


@pytest.mark.parametrize("edit, names", [
    (("name: bad", "name: bad\nepochs: 3"), ["'epochs'", "valid keys"]),
    (("  gmp: {family", "  magnitude: {family"), ["'magnitude'", "valid methods", "gmp"]),
    (("sparsities: [80]", "sparsities: [150]"), ["methods.gmp.sparsities", "150",
                                                  "out of range [0, 99]"]),
    (("seeds: [21]", "seeds: -3"), ["modes.linear.seeds", "-3", ">= 1"]),
    (("{epochs: 2, lr: 0.1}", "{epochs: 2, lr: 0.1, warmup: 5}"),
     ["modes.linear.recipe", "'warmup'"]),
    (("group: general}", "group: general"), ["not valid YAML", "line"]),
], ids=["unknown-key", "unknown-method", "sparsity-range", "negative-seeds", "recipe-key",
        "yaml-syntax"])
def test_bad_study_file(tmp_path, edit, names):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE_STUDY.replace(*edit))
    t0 = time.monotonic()
    res = kit.run_cli(kit.sweep_cmd("--study", str(path), "--dry-run"), timeout=60)
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    assert kit.one_paragraph(res.stderr), res.stderr
    assert str(path) in res.stderr
    for name in names:
        assert name in res.stderr, res.stderr
    assert time.monotonic() - t0 < 30


def test_bad_study_base_is_valid(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(BASE_STUDY)
    res = kit.run_cli(kit.sweep_cmd("--study", str(path), "--dry-run"), timeout=60)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("argv, name", [
    (["--seeds", "-1"], "--seeds"),
    (["--methods", "gmp,nope"], "'nope'"),
    (["--sparsities", "200"], "200"),
])
def test_bad_overrides(argv, name):
    res = kit.run_cli(kit.sweep_cmd("--study", "tiny", "--dry-run", *argv), timeout=60)
    assert res.returncode == 2
    assert kit.one_paragraph(res.stderr) and name in res.stderr, res.stderr


# ---------------------------------------------------------------------------------------
# Tracking server


def test_unreachable_tracking_uri_fails_fast_and_keeps_the_password(tmp_path):
    port = kit.free_port()
    uri = f"http://user:secret@127.0.0.1:{port}"
    out = tmp_path / "out"
    t0 = time.monotonic()
    res = kit.run_cli(kit.sweep_cmd("--study", "tiny", "--out", str(out), "--tracking-uri", uri,
                                    "--no-speed"), timeout=120)
    elapsed = time.monotonic() - t0
    assert res.returncode == 2, res.stderr
    # 3 s on an idle machine (MLflow alone retried for minutes); generous for a loaded one
    assert elapsed < 60, f"took {elapsed:.1f}s"
    err = res.stderr
    assert "secret" not in err + res.stdout
    assert f"127.0.0.1:{port}" in err and "cannot use the MLflow tracking store" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in err
    # Nothing was started or written: the store is checked before the output folder is made,
    # and Ray starts only after that (a raylet count would see other sessions' Rays).
    assert "Token authentication" not in err
    assert not out.exists()


def test_tracking_database_without_its_driver(tmp_path):
    """MlflowClient builds the store when created: a missing driver used to escape as a
    ModuleNotFoundError traceback with exit 1."""
    pytest.importorskip("mlflow")
    try:
        import psycopg  # noqa: F401
        pytest.skip("psycopg is installed: this URI would be tried for real")
    except ImportError:
        pass
    uri = f"postgresql://user:secret@127.0.0.1:{kit.free_port()}/db"
    res = kit.run_cli(kit.sweep_cmd("--study", "tiny", "--out", str(tmp_path / "out"),
                                    "--tracking-uri", uri), timeout=120)
    assert res.returncode == 2, res.stderr
    assert "secret" not in res.stderr + res.stdout
    assert "Traceback" not in res.stderr
    assert "cannot use the MLflow tracking store at postgresql://***@127.0.0.1" in res.stderr


# ---------------------------------------------------------------------------------------
# Feature cache


def feature_spec(checkpoint_hash: str) -> TrialSpec:
    return TrialSpec(stage="linear", method="gmp", sparsity=80, arch=kit.ARCH, dataset="digits",
                     seed=21, recipe=Recipe(epochs=2, lr=0.1), num_classes=10,
                     image_size=32, checkpoint="x.pth", checkpoint_hash=checkpoint_hash)


def arrays(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)


def test_truncated_feature_cache_entry_is_rebuilt(tmp_path, caplog):
    cache = FeatureCache(tmp_path)
    key = linear.feature_key(feature_spec("aaa"), "train")
    cache.get_or_compute(key, lambda: arrays(0))
    path = cache.path_for(key)
    path.write_bytes(path.read_bytes()[:100])
    calls = []
    feats, labels = FeatureCache(tmp_path).get_or_compute(
        key, lambda: calls.append(1) or arrays(0))
    assert calls == [1] and np.array_equal(feats, arrays(0)[0])
    assert str(path) in caplog.text and "rebuilding" in caplog.text


def test_feature_cache_entry_from_another_checkpoint_is_rebuilt(tmp_path, caplog):
    cache = FeatureCache(tmp_path)
    key_a = linear.feature_key(feature_spec("checkpoint-a"), "train")
    key_b = linear.feature_key(feature_spec("checkpoint-b"), "train")
    assert cache.path_for(key_a) != cache.path_for(key_b)  # the checkpoint hash is in the key
    cache.get_or_compute(key_a, lambda: arrays(1))
    # A stale or copied file sits under B's name: its stored key says checkpoint A.
    cache.path_for(key_b).write_bytes(cache.path_for(key_a).read_bytes())
    feats, _ = FeatureCache(tmp_path).get_or_compute(key_b, lambda: arrays(2))
    assert np.array_equal(feats, arrays(2)[0])
    assert "checkpoint-a" in caplog.text and "rebuilding" in caplog.text
    feats_a, _ = FeatureCache(tmp_path).get_or_compute(key_a, lambda: arrays(9))
    assert np.array_equal(feats_a, arrays(1)[0])  # A's own entry untouched


# ---------------------------------------------------------------------------------------
# NaN loss


def test_nan_loss_is_a_failed_trial_not_a_crash(monkeypatch):
    monkeypatch.setattr(linear, "features",
                        lambda spec, ctx: {"train": arrays(0), "test": arrays(1)})
    spec = TrialSpec(stage="linear", method="dense", sparsity=0, arch=kit.ARCH, dataset="digits",
                     seed=21, recipe=Recipe(epochs=3, lr=1e30, milestones=()), num_classes=3,
                     checkpoint="x.pth", checkpoint_hash="h")
    out = run_trial(linear.run_linear, spec, TrialContext(out_dir="/nonexistent"),
                    report=lambda r: None)
    assert out["status"] == "failed"
    assert out["error"].startswith("Diverged: training loss is")
    assert re.search(r"is (nan|inf) in epoch [123]: the run diverged", out["error"])


# ---------------------------------------------------------------------------------------
# Full disk: a real ENOSPC, by pointing the writer's temporary file at /dev/full


def full_disk_at(tmp: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    tmp.symlink_to("/dev/full")


def assert_no_temp_files(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if ".tmp-" in p.name]
    assert not left, left


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_full_disk_while_writing_the_feature_cache(tmp_path):
    cache = FeatureCache(tmp_path)
    old_key = linear.feature_key(feature_spec("old"), "train")
    cache.get_or_compute(old_key, lambda: arrays(3))
    old_bytes = cache.path_for(old_key).read_bytes()

    key = linear.feature_key(feature_spec("new"), "train")
    path = cache.path_for(key)
    full_disk_at(temp_path(path))
    with pytest.raises(OSError) as err:
        cache.get_or_compute(key, lambda: arrays(4))
    assert err.value.errno == errno.ENOSPC
    assert str(path) in str(err.value) and "No space left" in str(err.value)
    assert not path.exists()
    assert_no_temp_files(tmp_path)
    assert cache.path_for(old_key).read_bytes() == old_bytes
    del err  # its traceback holds numpy's ZipFile of the failed file: close it here
    gc.collect()


def test_full_disk_while_writing_a_checkpoint(tmp_path, good):
    before = good.read_bytes()
    full_disk_at(temp_path(good))
    with pytest.raises(OSError) as err:
        ck.save_reference_checkpoint(good, kit.tiny_model(seed=5), kit.ARCH, "imagenet")
    assert str(err.value) == f"[Errno 28] could not write checkpoint {good}: " \
        "No space left on device"
    assert good.read_bytes() == before  # the previous checkpoint is intact
    assert_no_temp_files(good.parent)


def test_full_disk_while_writing_the_ledger(tmp_path):
    from orchestrator.ledger import Ledger

    ledger = Ledger(tmp_path)
    ledger.record("t1", {"status": "finished", "metrics": {"accuracy": 50.0}})
    before = (tmp_path / "t1.json").read_text()
    full_disk_at(temp_path(tmp_path / "t1.json"))
    with pytest.raises(OSError) as err:
        ledger.record("t1", {"status": "failed", "error": "x"})
    assert err.value.errno == errno.ENOSPC
    assert str(err.value) == f"[Errno 28] could not write {tmp_path / 't1.json'}: " \
        "No space left on device"
    assert (tmp_path / "t1.json").read_text() == before
    assert ledger.status("t1") == "finished"
    assert_no_temp_files(tmp_path)


def test_full_disk_while_writing_results_parquet(tmp_path):
    import pandas as pd

    from orchestrator.aggregate import write_results

    path = tmp_path / "results.parquet"
    write_results(pd.DataFrame({"trial_id": ["a"], "accuracy": [1.0]}), path)
    full_disk_at(temp_path(path))
    with pytest.raises(OSError) as err:
        write_results(pd.DataFrame({"trial_id": ["a", "b"], "accuracy": [1.0, 2.0]}), path)
    assert err.value.errno == errno.ENOSPC
    assert f"could not write {path}: " in str(err.value) and "No space left" in str(err.value)
    assert pd.read_parquet(path)["trial_id"].tolist() == ["a"]
    assert_no_temp_files(tmp_path)


def test_full_disk_while_saving_a_full_finetuning_epoch(tmp_path, monkeypatch):
    """The in-trial full-finetuning path (``trainer: auto``) saves its state every epoch."""
    from torch.utils.data import TensorDataset

    from trainables import models

    def tiny_build(spec_dict, ctx):
        model = models.replace_classifier(kit.tiny_model(), kit.ARCH, 3)
        data = TensorDataset(torch.randn(8, 3, 32, 32), torch.arange(8) % 3)
        return model, {}, data, data

    monkeypatch.setattr(full, "_build_full", tiny_build)
    monkeypatch.setattr(full, "load_backbone", lambda spec: None)  # checked up front
    monkeypatch.setattr(full, "trial_dataset", lambda *a: None)
    spec = TrialSpec(stage="full", method="dense", sparsity=0, arch=kit.ARCH, dataset="digits",
                     seed=21, recipe=Recipe(epochs=2, lr=0.01, batch_size=4, milestones=()),
                     num_classes=3, checkpoint="x.pth", checkpoint_hash="h")
    folder = tmp_path / "ray" / "train" / spec.trial_id
    folder.mkdir(parents=True)
    full_disk_at(folder / f".full_finetune_state.pt.tmp-{os.getpid()}")
    # A full disk is the machine's fault, not the input's: raised for Tune to retry (and for
    # the sweep to record as an error that a rerun tries again), never a failed result.
    with pytest.raises(OSError) as err:
        run_trial(full.run_full, spec, TrialContext(out_dir=str(tmp_path)), report=lambda r: None)
    assert str(err.value).startswith(
        f"[Errno 28] could not write {folder / 'full_finetune_state.pt'}: No space")
    assert_no_temp_files(folder)
