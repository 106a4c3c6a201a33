"""Trials whose checkpoint file changed since they ran.

A trial's id holds its checkpoint's content digest (sha256), so a file replaced under the
same path gives its trials new ids: they run again, as they must. Their old entries would
stay in the ledger beside the new ones, and ``results.parquet`` would then hold two finished
rows of one cell that nothing tells apart. Before anything runs, each ledger entry that is
a grid trial but for its checkpoint digests is found, reported with the file and both
digests, and moved to ``trials/superseded/`` (kept, never read again).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Callable

from orchestrator.grid import Grid
from orchestrator.ledger import Ledger
from search_spaces.trial import to_dict

SUPERSEDED = "superseded"
_DIGESTS = ("checkpoint_hash", "mask_checkpoint_hash")


def _cell(spec: dict[str, Any]) -> str:
    """What a trial is, its checkpoints' digests left out."""
    d = {k: v for k, v in spec.items() if k not in _DIGESTS}
    d["params"] = [p for p in d.get("params") or [] if not str(p[0]).endswith("_hash")]
    return json.dumps(d, sort_keys=True, default=str)


def stale_entries(grid: Grid, ledger: Ledger) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(old entry, new spec) for each ledger entry that a grid trial replaces: the same
    trial, checkpoint paths included, with other checkpoint digests."""
    current = {t.trial_id: to_dict(t) for t in grid.all_trials()}
    by_cell = {_cell(spec): spec for spec in current.values()}
    found = []
    for entry in ledger.entries():
        spec = entry.get("spec")
        if entry["trial_id"] in current or not isinstance(spec, dict):
            continue
        new = by_cell.get(_cell(spec))
        if new is not None:
            found.append((entry, new))
    return found


def retire_changed(grid: Grid, ledger: Ledger, say: Callable[[str], None]) -> int:
    """Reports each changed checkpoint (its path, old and new digest, how many trials run
    again) and moves the entries it replaces aside; returns how many were moved."""
    stale = stale_entries(grid, ledger)
    per_file: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for entry, new in stale:
        old = entry["spec"]
        changed = next((k for k in _DIGESTS if old.get(k) != new.get(k)), _DIGESTS[0])
        path = str(new.get(changed.replace("_hash", "")) or "a checkpoint")
        per_file[(path, str(old.get(changed))[:12], str(new.get(changed))[:12])].append(
            entry["trial_id"])
    for (path, before, now), ids in sorted(per_file.items()):
        say(f"checkpoint {path} changed since {len(ids)} trial(s) ran on it (digest {before}"
            f"... then, {now}... now): they run again; their old entries are moved to "
            f"{ledger.root / SUPERSEDED}")
    for entry, _ in stale:
        ledger.retire(entry["trial_id"], SUPERSEDED)
    return len(stale)
