"""The sweep's memory of what is done: one small JSON file per recorded trial, plus an index.

Why files and not Tune's experiment state: a rerun may narrow or widen the grid, and the
ledger answers "is this trial id done?" whatever Tuner ran it. Each entry is written
atomically (``common.atomic``), so a kill -9 leaves either the old state or the new one,
never half a file.

Why an index as well: reading one file per trial costs one open per trial, and on a network
file system (the cluster's shared ``--out``) every open is a round trip: 10,000 trials at
2 ms each made a rerun with nothing to do wait 20 s before it began. ``index.jsonl`` holds
every entry as one line, appended after the entry's own file is in place, so a rerun reads
one file and lists the folder once. The per-trial files stay the record that counts:

- an id whose file is in the folder but has no line in the index (the driver was killed
  between the two writes, or the ledger predates the index) is read from its file;
- re-recording an id that already has a line first appends a ``pending`` line (fsynced), so
  a kill before the new line makes the next run read that id's file again, never trust the
  old line;
- an id whose file is gone (someone deleted ``trials/<id>.json`` to run it again) is
  forgotten even if the index has it;
- a torn last line (power loss) is skipped, and that id is read from its file;
- a file whose size is not its line's (truncated, edited by hand) is read; one that is not
  an entry any more is moved to ``corrupt/`` with one warning, and its trial runs again.

When the index holds lines it no longer needs (superseded, pending, torn, forgotten) or
misses ids, the next load rewrites it whole, atomically, from what it found. Only the
sweep's driver writes the ledger (``orchestrator.lock`` keeps it to one), so one process owns
the index while it appends.

A trial's ``status`` is ``finished``; ``failed`` (bad input: rerunning gives the same answer,
so a rerun skips it unless ``--retry-failed``); or ``error`` (it raised something else, a crash
or a bug, and Tune's retries ran out: the entry keeps the traceback, and a rerun tries again).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from common.atomic import atomic_write_text

FINISHED = "finished"
FAILED = "failed"
ERROR = "error"
INDEX = "index.jsonl"  # not *.json: a reader globbing trials/*.json sees entries only


def read_bytes(path: Path) -> bytes:
    """How the ledger reads a file: one open each (the benchmark wraps it to add latency)."""
    with open(path, "rb") as f:
        return f.read()


class Ledger:
    """Trial id -> its latest entry, loaded once (one folder listing, one index read)."""

    def __init__(self, root: Path, read: Callable[[Path], bytes] | None = None,
                 provenance: Mapping[str, str] | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        # Who records (orchestrator.provenance): kept in every entry this ledger writes.
        self.provenance = dict(provenance or {})
        self.root.mkdir(parents=True, exist_ok=True)
        self._read = read or read_bytes
        self._warn = warn or (lambda message: None)
        self._entries: dict[str, dict[str, Any]] = {}
        self._indexed: set[str] = set()  # ids with a valid line in the index
        self.files_read = 0  # per-trial files opened while loading (the benchmark reports it)
        self._load()

    def _path(self, trial_id: str) -> Path:
        return self.root / f"{trial_id}.json"

    @property
    def index_path(self) -> Path:
        return self.root / INDEX

    def _load(self) -> None:
        names = {n[:-5] for n in os.listdir(self.root)
                 if n.endswith(".json") and not n.startswith(".")}
        lines, stale = self._read_index()
        sizes = self._sizes() if lines else {}
        for tid in names:
            entry = lines.get(tid)
            if entry is not None and sizes.get(tid) != len(_line(entry)) - 1:
                entry = None  # the file is not what its line says (truncated, edited)
            if entry is None:  # no line, or a pending one: the file says what is true
                entry = self._read_file(tid)
                stale = True
            if entry is not None:
                self._entries[tid] = entry
        if stale or set(lines) - names:
            self._rewrite_index()
        self._indexed = set(self._entries)

    def _read_index(self) -> tuple[dict[str, dict[str, Any] | None], bool]:
        """The index's last line per id (None: pending); True when it needs a rewrite."""
        try:
            data = self._read(self.index_path)
        except FileNotFoundError:
            return {}, False
        text = data.decode("utf-8", errors="replace")
        stale = bool(text) and not text.endswith("\n")  # a torn last line
        found: dict[str, dict[str, Any] | None] = {}
        count = 0
        for line in text.splitlines():
            count += 1
            try:
                entry = json.loads(line)
                tid = entry["trial_id"]
            except (ValueError, TypeError, KeyError):
                stale = True
                continue
            found[tid] = None if entry.get("pending") else entry
        return found, stale or count > len(found)

    def _sizes(self) -> dict[str, int]:
        """Each entry file's size, from one listing: a file whose size is not its index
        line's is read, so a truncated one is found without opening every file."""
        sizes = {}
        with os.scandir(self.root) as listing:
            for item in listing:
                if item.name.endswith(".json") and not item.name.startswith("."):
                    try:
                        sizes[item.name[:-5]] = item.stat().st_size
                    except FileNotFoundError:
                        continue
        return sizes

    def _read_file(self, trial_id: str) -> dict[str, Any] | None:
        """An entry file's entry; a file that is not one (truncated, corrupt) is moved to
        ``corrupt/`` with one warning, so its trial runs again and nothing is lost."""
        self.files_read += 1
        path = self._path(trial_id)
        try:
            entry = json.loads(self._read(path))
        except FileNotFoundError:
            return None
        except ValueError as err:
            entry = err
        if isinstance(entry, dict) and "status" in entry:
            return entry
        self._set_aside(path, f"{type(entry).__name__}: {entry}"[:120]
                        if isinstance(entry, ValueError) else "not a ledger entry")
        return None

    def _set_aside(self, path: Path, why: str) -> None:
        dest = self.root / "corrupt" / f"{path.name}.{int(time.time())}"
        dest.parent.mkdir(exist_ok=True)
        os.replace(path, dest)
        self._warn(f"warning: ledger entry {path} is unreadable (truncated or corrupt: {why}); "
                   f"moved to {dest}; trial {path.stem} runs again")

    def retire(self, trial_id: str, folder: str) -> Path:
        """Moves an entry's file to ``<root>/<folder>/`` and forgets it (kept, never read
        again: a trial whose checkpoint changed is run anew under its new id)."""
        dest = self.root / folder / f"{trial_id}.json"
        dest.parent.mkdir(exist_ok=True)
        os.replace(self._path(trial_id), dest)
        self._entries.pop(trial_id, None)
        self._indexed.discard(trial_id)
        self._rewrite_index()
        return dest

    def _rewrite_index(self) -> None:
        lines = "".join(_line(self._entries[t]) for t in sorted(self._entries))
        atomic_write_text(self.index_path, lines, label=f"ledger index {self.index_path}")

    def _append(self, line: str, sync: bool) -> None:
        fd = os.open(self.index_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))  # one write: a kill -9 cannot split it
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def get(self, trial_id: str) -> dict[str, Any] | None:
        return self._entries.get(trial_id)

    def status(self, trial_id: str) -> str | None:
        entry = self.get(trial_id)
        return entry["status"] if entry else None

    def record(self, trial_id: str, entry: dict[str, Any]) -> None:
        entry = {**entry, "trial_id": trial_id, "recorded_at": time.time()}
        if self.provenance:
            entry["provenance"] = self.provenance
        text = json.dumps(entry, default=_json_default)
        if trial_id in self._indexed:
            # Durable before the file changes: a kill between the two writes below must not
            # leave the old line in charge of an id whose file is already new.
            self._append(_line({"trial_id": trial_id, "pending": True}), sync=True)
        atomic_write_text(self._path(trial_id), text)
        # No fsync: without this line the next load reads the (fsynced) file instead.
        self._append(text + "\n", sync=False)
        self._entries[trial_id] = json.loads(text)
        self._indexed.add(trial_id)

    def entries(self) -> Iterator[dict[str, Any]]:
        for tid in sorted(self._entries):
            yield self._entries[tid]

    def __len__(self) -> int:
        return len(self._entries)

    def fingerprint(self) -> str:
        """Changes whenever an entry is added or recorded again (what outputs are built on)."""
        h = hashlib.sha256()
        for tid in sorted(self._entries):
            h.update(f"{tid}\0{self._entries[tid].get('recorded_at')}\n".encode())
        return h.hexdigest()[:16]


def _line(entry: dict[str, Any]) -> str:
    return json.dumps(entry, default=_json_default) + "\n"


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    return str(o)
