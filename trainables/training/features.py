"""Penultimate-layer features of a frozen backbone, computed once and cached on disk.

Why a cache: linear finetuning trains only a head on features that do not depend on the seed
(docs/protocol.md), so the paper's 5 seeds x every (checkpoint, dataset) need one forward pass over
the data each, not five. Ray trials are separate processes, so the cache is a folder of files
with a per-entry file lock: the first trial computes an entry, the others wait and read it.
Under ``--storage`` the folder is a prefix in a bucket (``common.storage``): an entry is one
object, written whole by one PUT, and there is no lock (object stores have none); the sweep's
feature tasks compute each entry once before the linear trials read it, so a trial computes
one itself only when its task failed.

An entry is one uncompressed ``.npz`` file named by a content hash of its key dict. It holds
``features`` (N x D float32), ``labels`` (N int64) and ``meta``: the key itself and a checksum
of both arrays, so a truncated file, bit rot or a hash collision with another checkpoint's key
is detected on read, logged and rebuilt instead of silently feeding wrong features.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common import storage
from common.atomic import atomic_path
from common.errors import BadInput

if TYPE_CHECKING:  # torch is imported where features are extracted: the cache needs numpy only
    import torch
    from torch import nn
    from torch.utils.data import Dataset

log = logging.getLogger(__name__)

FeatureArrays = tuple[np.ndarray, np.ndarray]


def extract_features(
    net: nn.Module,
    dataset: Dataset,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
) -> FeatureArrays:
    """Run a frozen backbone over a dataset, in order, without gradients.

    The network is put in eval mode so BatchNorm uses the checkpoint's (ImageNet) statistics,
    as the paper does for linear finetuning; its previous train/eval mode is restored after.

    Args:
        net: the backbone, i.e. the model with its classifier replaced by the identity
            (``models.backbone``); any output shape (N, ...) is flattened to (N, D).
        dataset: yields ``(image tensor, int label)``; its transform should have no
            augmentation (the caller picks the eval preset).
        batch_size: images per forward pass.
        device: where the forward passes run.
        num_workers: DataLoader worker processes.

    Returns:
        ``(features, labels)``: float32 (N, D) and int64 (N,) numpy arrays in dataset order.
    """
    import torch
    from torch.utils.data import DataLoader
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(dataset) == 0:
        raise BadInput("cannot extract features of an empty dataset")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = net.training
    net.eval()
    net.to(device)
    feats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for images, targets in loader:
                out = net(images.to(device, non_blocking=True))
                feats.append(out.flatten(1).float().cpu().numpy())
                labels.append(torch.as_tensor(targets).reshape(-1).cpu().numpy())
    finally:
        net.train(was_training)
    return (
        np.ascontiguousarray(np.concatenate(feats), dtype=np.float32),
        np.concatenate(labels).astype(np.int64),
    )


def key_digest(key: Mapping[str, Any]) -> str:
    """Stable content hash of a key dict (canonical JSON: sorted keys, no whitespace)."""
    return hashlib.sha256(_canonical(key).encode()).hexdigest()[:32]


def _canonical(key: Mapping[str, Any]) -> str:
    if not isinstance(key, Mapping) or not key:
        raise ValueError(f"a feature cache key must be a non-empty dict, got {key!r}")
    try:
        return json.dumps(dict(key), sort_keys=True, separators=(",", ":"))
    except TypeError as exc:
        raise ValueError(f"feature cache key must be JSON-serialisable: {key!r} ({exc})") from None


def _checksum(features: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    for arr in (features, labels):
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def _checked_arrays(result: Any, key: Mapping[str, Any]) -> FeatureArrays:
    """The compute function's output as (float32 N x D, int64 N), or a ValueError."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError(
            f"compute for {dict(key)} must return (features, labels), got {type(result)}"
        )
    features = np.ascontiguousarray(result[0], dtype=np.float32)
    labels = np.ascontiguousarray(result[1]).astype(np.int64, copy=False)
    if features.ndim != 2 or labels.ndim != 1 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"compute for {dict(key)} returned features {features.shape} and labels "
            f"{labels.shape}; expected (N, D) and (N,)"
        )
    return features, labels


class CorruptEntry(Exception):
    """An entry that exists but cannot be trusted (truncated, wrong key, bad checksum)."""


@dataclass
class CacheStats:
    """Counters for tests and benchmarks (per FeatureCache object, i.e. per process)."""

    hits: int = 0
    misses: int = 0
    rebuilds: int = 0


class FeatureCache:
    """Features on disk, one ``<hash>.npz`` per key, safe to share between processes.

    Args:
        root: the cache folder (the study's ``runs/<study>/features/``); created if missing.

    Keys are small JSON-serialisable dicts naming everything the features depend on, e.g.
    ``{"checkpoint_sha": ..., "arch": ..., "dataset": ..., "split": ..., "transform": ...,
    "image_size": ...}``. Two keys that differ in any value are different entries.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.remote = storage.is_uri(root)
        self.root: str | Path = str(root) if self.remote else Path(root)
        if not self.remote:
            Path(root).mkdir(parents=True, exist_ok=True)
        self.stats = CacheStats()

    def path_for(self, key: Mapping[str, Any]) -> str | Path:
        """Where the entry for ``key`` lives (it may not exist yet): a path, or a URI."""
        name = f"{key_digest(key)}.npz"
        return storage.join(self.root, name) if self.remote else Path(self.root) / name

    def get_or_compute(
        self, key: Mapping[str, Any], compute: Callable[[], FeatureArrays]
    ) -> FeatureArrays:
        """The cached ``(features, labels)`` of ``key``, computing and storing them if needed.

        A valid entry is read without locking (entries are only ever replaced atomically).
        Otherwise the entry's lock is taken, the entry re-checked (another process may have
        just written it) and, if still missing or invalid, ``compute()`` runs once and its
        result is written atomically. An invalid entry is logged as a warning and rebuilt.

        Raises:
            OSError: writing the entry failed (e.g. ENOSPC); no partial file is left and the
                message names the entry's path. The errno of the cause is kept.
            ValueError: the key is not a JSON-serialisable dict, or ``compute`` returned
                something other than (N x D features, N labels).
        """
        canonical = _canonical(key)
        path = self.path_for(key)
        try:
            arrays = self._read(path, canonical)
        except (FileNotFoundError, CorruptEntry):
            pass  # decided under the lock, where no writer can race us
        else:
            self.stats.hits += 1
            return arrays

        with self._locked(path):
            try:
                arrays = self._read(path, canonical)
            except FileNotFoundError:
                self.stats.misses += 1
            except CorruptEntry as exc:
                log.warning("feature cache entry %s is invalid (%s); rebuilding it", path, exc)
                self.stats.rebuilds += 1
            else:
                self.stats.hits += 1
                return arrays
            features, labels = _checked_arrays(compute(), key)
            self._write(path, canonical, features, labels)
            return features, labels

    @contextmanager
    def _locked(self, path: str | Path) -> Iterator[None]:
        if not isinstance(path, Path):  # an object store has no locks (module docstring)
            yield
            return
        # The lock file is never deleted: unlinking it while another process waits on it
        # would let a third process lock a fresh inode and compute the entry twice.
        lock_path = path.with_suffix(".lock")
        with open(lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _read(path: str | Path, canonical_key: str) -> FeatureArrays:
        source = path if isinstance(path, Path) else io.BytesIO(storage.read_bytes(path))
        try:
            with np.load(source, allow_pickle=False) as npz:
                features = npz["features"]
                labels = npz["labels"]
                meta = json.loads(str(npz["meta"]))
        except FileNotFoundError:
            raise
        except Exception as exc:  # truncated zip, missing member, bad JSON, short read...
            raise CorruptEntry(f"unreadable: {type(exc).__name__}: {exc}") from exc
        stored_key = meta.get("key")
        if stored_key != canonical_key:
            raise CorruptEntry(f"stored key {stored_key} differs from requested {canonical_key}")
        if meta.get("checksum") != _checksum(features, labels):
            raise CorruptEntry("checksum mismatch")
        return features, labels

    @staticmethod
    def _write(path: str | Path, canonical_key: str, features: np.ndarray,
               labels: np.ndarray) -> None:
        meta = json.dumps({"key": canonical_key, "checksum": _checksum(features, labels)})
        size = features.nbytes + labels.nbytes
        label = f"feature cache entry {storage.masked(path)} ({size} bytes of arrays)"
        if not isinstance(path, Path):
            buffer = io.BytesIO()
            np.savez(buffer, features=features, labels=labels, meta=np.array(meta))
            storage.write_bytes(path, buffer.getvalue(), label=label)
            return
        # Through a file object: np.savez would append ".npz" to the temporary file's name.
        with atomic_path(path, label=label) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, features=features, labels=labels, meta=np.array(meta))
