"""The sweep's memory of what is done: one small JSON file per recorded trial.

Why files and not Tune's experiment state: a rerun may narrow or widen the grid, and the
ledger answers "is this trial id done?" whatever Tuner ran it. Each entry is written
atomically, so a kill -9 leaves either the old state or the new one, never half a file.

A trial's ``status`` is ``finished``; ``failed`` (bad input: rerunning gives the same answer,
so a rerun skips it unless ``--retry-failed``); or ``error`` (it raised something else, a crash
or a bug, and Tune's retries ran out: the entry keeps the traceback, and a rerun tries again).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

from common.atomic import atomic_write_text

FINISHED = "finished"
FAILED = "failed"
ERROR = "error"


class Ledger:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, trial_id: str) -> Path:
        return self.root / f"{trial_id}.json"

    def get(self, trial_id: str) -> dict[str, Any] | None:
        p = self._path(trial_id)
        try:
            return json.loads(p.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # unreadable: treat as not done, the trial reruns

    def status(self, trial_id: str) -> str | None:
        entry = self.get(trial_id)
        return entry["status"] if entry else None

    def record(self, trial_id: str, entry: dict[str, Any]) -> None:
        entry = {**entry, "trial_id": trial_id, "recorded_at": time.time()}
        atomic_write_text(self._path(trial_id), json.dumps(entry, default=_json_default))

    def entries(self) -> Iterator[dict[str, Any]]:
        for p in sorted(self.root.glob("*.json")):
            try:
                yield json.loads(p.read_text())
            except ValueError:
                continue


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    return str(o)
