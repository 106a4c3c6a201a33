"""The backbones of a study: the sparse (and dense) upstream models its transfer trials start
from, with the content hash that enters their trial ids.

A study with an ``upstream`` block makes its own (the zoo: ``orchestrator.stages.prune``
declares them); a study of given checkpoints names files, read here (``given_backbones``):
a method's checkpoint per architecture and sparsity, LTH-T's ticket, or another method's
mask on the dense weights (``mask_from``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_write_text
from common.errors import BadInput
from search_spaces.schema import MethodSpec, Study


@dataclass(frozen=True)
class Backbone:
    """A sparse (or dense) upstream model that transfer trials start from."""

    arch: str
    method: str
    sparsity: int
    checkpoint: str
    checkpoint_hash: str | None
    mask_checkpoint: str | None = None
    mask_checkpoint_hash: str | None = None
    interpolation: str = "bilinear"
    transfer: bool = True


class FileHashes:
    """sha256 of checkpoint files, and whether a ticket holds weights, remembered by (path,
    size, mtime) so reruns skip re-reading. ``read=False`` (dry run, rehearsal) reads no file
    and knows neither."""

    def __init__(self, cache_file: Path | None, read: bool = True) -> None:
        self.cache_file = cache_file
        self.read = read
        self._cache: dict[str, str | bool | None] = {}
        if cache_file and cache_file.exists():
            try:
                self._cache = json.loads(cache_file.read_text())
            except (OSError, ValueError):
                self._cache = {}

    def _key(self, path: Path) -> str | None:
        if not self.read or not path.is_file():
            return None
        st = path.stat()
        return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    def __call__(self, path: Path) -> str | None:
        key = self._key(path)
        if key is None:
            return None
        if key not in self._cache:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            self._cache[key] = h.hexdigest()
            self._save()
        return self._cache[key]  # type: ignore[return-value]

    def holds_weights(self, ticket: Path) -> bool | None:
        """Whether LTH-T's ticket file holds weights (``checkpoints.ticket_holds_weights``):
        opened once (with torch) per file version; None when not read or not readable (the
        trial then fails on the file, naming it)."""
        key = self._key(ticket)
        if key is None:
            return None
        key += "|holds_weights"
        if key not in self._cache:
            from trainables.checkpoints import ticket_holds_weights

            try:
                self._cache[key] = ticket_holds_weights(ticket)
            except BadInput:
                self._cache[key] = None
            self._save()
        return self._cache[key]  # type: ignore[return-value]

    def _save(self) -> None:
        if not self.cache_file:
            return
        atomic_write_text(self.cache_file, json.dumps(self._cache))


def _resolve(study: Study, given: str | None, pattern: str, arch: str, method: str,
             sparsity: int) -> Path:
    """A given path (absolute: Tune runs each trial in its own folder, where a relative path
    means nothing), or the pattern filled in under ``checkpoint_dir``."""
    if given and "{sparsity}" not in given:
        return Path(given).expanduser().resolve()
    base = Path(study.checkpoint_dir or "checkpoints").expanduser().resolve()
    return base / (given or pattern).format(arch=arch, method=method, sparsity=sparsity)


def _checkpoint_file(study: Study, m: MethodSpec, arch: str, sparsity: int) -> Path:
    """A method's checkpoint file at ``sparsity`` for ``arch``."""
    return _resolve(study, m.checkpoint_for(sparsity, arch), study.checkpoint_pattern, arch,
                    m.name, sparsity)


def ticket_file(study: Study, m: MethodSpec, arch: str, sparsity: int) -> Path | None:
    """LTH-T's ticket file at ``sparsity`` (a path, or the method's pattern under
    checkpoint_dir), or None when the method has no ticket there."""
    given = m.ticket_for(sparsity)
    return None if given is None else _resolve(study, given, given, arch, m.name, sparsity)


def given_backbones(study: Study, hashes: FileHashes) -> list[Backbone]:
    """A study of given checkpoints: per architecture, every method's file per sparsity (or
    LTH-T's ticket, or another method's mask on the dense weights)."""
    found = []
    for arch in study.archs:
        dense_m = next(m for m in study.methods if m.family == "dense")
        dense_file = _checkpoint_file(study, dense_m, arch, 0)
        dense_hash = hashes(dense_file)
        for m in study.methods:
            for s in m.sparsities_for(arch):
                ticket = ticket_file(study, m, arch, s)
                if ticket is not None and hashes.holds_weights(ticket) is False:
                    # A ticket of masks alone: its mask on the dense ImageNet weights
                    # (trainables.checkpoints.load_mask_source reads it).
                    mask, mask_hash = str(ticket), hashes(ticket)
                    found.append(Backbone(arch, m.name, s, str(dense_file), dense_hash, mask,
                                          mask_hash, m.interpolation, m.transfer))
                elif ticket is not None:
                    # LTH-T as the reference code ran it: the ticket file as it is, its own
                    # weights under its own mask (also when not read: dry run, rehearsal).
                    found.append(Backbone(arch, m.name, s, str(ticket), hashes(ticket), None,
                                          None, m.interpolation, m.transfer))
                elif m.mask_from:
                    mf = _checkpoint_file(study, study.method(m.mask_from), arch, s)
                    found.append(Backbone(arch, m.name, s, str(dense_file), dense_hash, str(mf),
                                          hashes(mf), m.interpolation, m.transfer))
                else:
                    f = _checkpoint_file(study, m, arch, s)
                    found.append(Backbone(arch, m.name, s, str(f), hashes(f), None, None,
                                          m.interpolation, m.transfer))
    return found
