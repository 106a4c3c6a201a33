"""FeatureCache: hits, one computation across processes, corrupt/stale entries, full disks.

torch is imported only in the extraction test, so the spawned cache processes start fast.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pytest

from trainables.training import features as features_mod
from trainables.training.features import FeatureCache, extract_features

KEY = {"checkpoint_sha": "abc123", "arch": "resnet_tiny", "dataset": "toy", "split": "train",
       "transform": "eval", "image_size": 32}


def _arrays(seed: int = 0, n: int = 20, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, 3, n).astype(np.int64)


class Counting:
    """A compute function that counts its calls."""

    def __init__(self, seed: int = 0) -> None:
        self.calls = 0
        self.seed = seed

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        return _arrays(self.seed)


def _entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))


def test_second_get_is_a_hit_without_compute(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    compute = Counting()
    x1, y1 = cache.get_or_compute(KEY, compute)
    x2, y2 = cache.get_or_compute(dict(reversed(list(KEY.items()))), compute)  # order-free key
    assert compute.calls == 1
    assert (cache.stats.hits, cache.stats.misses, cache.stats.rebuilds) == (1, 1, 0)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x2.dtype == np.float32 and y2.dtype == np.int64
    # a fresh object (another process) reads the same file
    other = FeatureCache(tmp_path)
    other.get_or_compute(KEY, compute)
    assert compute.calls == 1 and other.stats.hits == 1
    assert _entries(tmp_path) == [cache.path_for(KEY).name]


def test_different_keys_are_different_entries(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    cache.get_or_compute(KEY, Counting(0))
    x, _ = cache.get_or_compute({**KEY, "split": "test"}, Counting(1))
    np.testing.assert_array_equal(x, _arrays(1)[0])
    assert cache.stats.misses == 2


def _compute_once_worker(root: str, counter: str, barrier, results) -> None:
    def compute() -> tuple[np.ndarray, np.ndarray]:
        with open(counter, "a") as fh:
            fh.write("computed\n")
        time.sleep(0.5)  # keep the other process waiting on the lock
        return _arrays()

    cache = FeatureCache(root)
    barrier.wait()
    x, _ = cache.get_or_compute(KEY, compute)
    results.put((cache.stats.hits, cache.stats.misses, float(x.sum())))


def test_two_processes_compute_once(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    counter = tmp_path / "computed.txt"
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_compute_once_worker,
                    args=(str(tmp_path / "cache"), str(counter), barrier, results))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    outs = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert counter.read_text().splitlines() == ["computed"]
    assert sorted((h, m) for h, m, _ in outs) == [(0, 1), (1, 0)]
    assert outs[0][2] == pytest.approx(outs[1][2])


def test_truncated_entry_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = FeatureCache(tmp_path)
    cache.get_or_compute(KEY, Counting())
    path = cache.path_for(KEY)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    compute = Counting()
    with caplog.at_level(logging.WARNING, logger=features_mod.__name__):
        x, y = cache.get_or_compute(KEY, compute)
    assert compute.calls == 1 and cache.stats.rebuilds == 1
    assert str(path) in caplog.text and "rebuilding" in caplog.text
    np.testing.assert_array_equal(x, _arrays()[0])
    assert FeatureCache(tmp_path).get_or_compute(KEY, compute)[1].shape == y.shape
    assert compute.calls == 1


def test_flipped_bytes_fail_the_checksum(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    cache.get_or_compute(KEY, Counting())
    path = cache.path_for(KEY)
    x, _ = _arrays()
    data = bytearray(path.read_bytes())
    at = bytes(data).find(x.tobytes()[:16])  # inside the stored (uncompressed) features
    assert at > 0
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    compute = Counting()
    cache.get_or_compute(KEY, compute)
    assert compute.calls == 1 and cache.stats.rebuilds == 1


def test_entry_of_another_key_is_rebuilt(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    other_key = {**KEY, "checkpoint_sha": "other"}
    cache.get_or_compute(other_key, Counting(seed=7))
    # a stale entry from another checkpoint sitting at this key's path
    cache.path_for(other_key).replace(cache.path_for(KEY))
    compute = Counting(seed=0)
    x, _ = cache.get_or_compute(KEY, compute)
    assert compute.calls == 1 and cache.stats.rebuilds == 1
    np.testing.assert_array_equal(x, _arrays(0)[0])


def test_disk_full_leaves_no_partial_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(features_mod.np, "savez", full_disk)
    cache = FeatureCache(tmp_path)
    with pytest.raises(OSError) as info:
        cache.get_or_compute(KEY, Counting())
    assert info.value.errno == errno.ENOSPC
    assert str(cache.path_for(KEY)) in str(info.value)
    assert _entries(tmp_path) == []  # neither the entry nor its temp file
    monkeypatch.undo()
    compute = Counting()
    cache.get_or_compute(KEY, compute)  # the next attempt computes and stores normally
    assert compute.calls == 1 and _entries(tmp_path) == [cache.path_for(KEY).name]


def test_bad_key_and_bad_compute_output(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    with pytest.raises(ValueError, match="JSON"):
        cache.get_or_compute({"checkpoint": object()}, Counting())
    with pytest.raises(ValueError, match="expected"):
        cache.get_or_compute(KEY, lambda: (np.zeros((3, 2)), np.zeros(4)))
    assert _entries(tmp_path) == []


def test_extract_features_uses_eval_mode_and_keeps_order() -> None:
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    from trainables.models import backbone, build_model

    torch.manual_seed(0)
    model = build_model("resnet_tiny", num_classes=5)
    net = backbone(model, "resnet_tiny")
    net.train()
    images = torch.randn(10, 3, 32, 32)
    labels = torch.arange(10) % 5
    feats, labs = extract_features(net, TensorDataset(images, labels), batch_size=4)
    assert net.training  # mode restored
    assert feats.shape == (10, model.fc.in_features) and feats.dtype == np.float32
    np.testing.assert_array_equal(labs, labels.numpy())
    net.eval()
    with torch.no_grad():
        expected = net(images).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)
    # BN running statistics untouched (eval mode during extraction)
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert torch.all(bn.running_mean == 0)


def test_entries_in_cloud_storage_are_objects_written_whole_and_checked(s3_bucket):
    """Under --storage the cache is a prefix in a bucket: the same keys, checks and rebuilds."""
    from common import storage

    cache = FeatureCache("s3://bucket/study/features")
    feats, labels = np.arange(12, dtype=np.float32).reshape(4, 3), np.arange(4)
    calls = []

    def compute():
        calls.append(1)
        return feats, labels

    key = {"checkpoint": "abc", "dataset": "digits", "split": "train"}
    got = cache.get_or_compute(key, compute)
    again = FeatureCache("s3://bucket/study/features").get_or_compute(key, compute)
    assert len(calls) == 1 and np.array_equal(got[0], feats) and np.array_equal(again[1], labels)
    where = cache.path_for(key)
    assert where.startswith("s3://bucket/study/features/") and storage.exists(where)
    storage.write_bytes(where, b"PK\x03\x04 cut off")  # a damaged object is rebuilt
    assert np.array_equal(cache.get_or_compute(key, compute)[0], feats) and len(calls) == 2
    assert cache.stats.rebuilds == 1
