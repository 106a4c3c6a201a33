"""The study as a sweep ran it, kept in ``<out>/study.yaml``, and what changed since.

Why: with ``--set``, narrowing options and ``--smoke-test`` the study that ran is not the
file's; ``study.yaml`` is it (every key with its value, so ``--study <out>/study.yaml`` runs
the same grid), copied to the summary run in MLflow. A rerun whose study differs says so
before anything runs, with the keys that changed and what it does to trial ids: a trial
whose settings changed gets a new id and runs anew, and the results under its old id stay in
the ledger (and so in ``results.parquet``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from common.atomic import atomic_write_text
from orchestrator.grid import expand
from search_spaces.schema import Study, StudyError, study_from_dict, study_to_dict

STUDY_FILE = "study.yaml"
SHOWN_KEYS = 4  # changed keys named in the message; the rest are counted


def study_text(study: Study, source: str = "", overrides: Sequence[str] = ()) -> str:
    """``study.yaml``'s text: a comment saying where it came from, then the whole study."""
    given = " ".join(shlex.join(["--set", o]) for o in overrides)
    head = [f"# The study as the sweep ran it: {source or study.name}"
            + (f" with {given}" if given else "") + ", after --smoke-test and the narrowing",
            "# options. Every key has its value; --study <this file> runs the same grid."]
    return "\n".join(head) + "\n" + yaml.safe_dump(study_to_dict(study), sort_keys=False)


def write_study(out_dir: Path, study: Study, source: str = "",
                overrides: Sequence[str] = ()) -> Path:
    """``<out>/study.yaml``, atomically (a reader sees the old study or the new one)."""
    path = Path(out_dir) / STUDY_FILE
    atomic_write_text(path, study_text(study, source, overrides))
    return path


def previous_study(out_dir: Path) -> Study | None:
    """The study the last run in ``out_dir`` ran, or None (no such file, or one this version
    of the schema cannot read: nothing to compare with)."""
    path = Path(out_dir) / STUDY_FILE
    try:
        raw = yaml.safe_load(path.read_text())
        return study_from_dict(raw) if isinstance(raw, dict) else None
    except (OSError, yaml.YAMLError, StudyError, UnicodeDecodeError):
        return None


def id_changes(before: Study, after: Study) -> dict[str, int]:
    """Per stage, the trials of ``after`` whose ids ``before`` does not have (new trials or
    changed settings). Ids without checkpoint hashes (no file is opened): both sides alike."""
    old = {t.trial_id for t in expand(before, Path("."), hash_files=False).all_trials()}
    new: dict[str, int] = {}
    for t in expand(after, Path("."), hash_files=False).all_trials():
        if t.trial_id not in old:
            new[t.stage] = new.get(t.stage, 0) + 1
    return new


def changed_keys(before: Any, after: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two study mappings, with both values."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        found = []
        for key in dict.fromkeys([*before, *after]):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in before:
                found.append(f"{where} added")
            elif key not in after:
                found.append(f"{where} removed")
            else:
                found += changed_keys(before[key], after[key], where)
        return found
    if before == after:
        return []
    return [f"{prefix} {_short(before)} -> {_short(after)}"]


def _short(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return text if len(text) <= 40 else text[:37] + "..."


def change_line(out_dir: Path, study: Study) -> str | None:
    """One line when ``study`` differs from the last run's in ``out_dir``: the keys that
    changed and what that does to trial ids; None when it is the same or there is none."""
    before = previous_study(out_dir)
    if before is None or before == study:
        return None
    keys = changed_keys(study_to_dict(before), study_to_dict(study))
    shown = ", ".join(keys[:SHOWN_KEYS]) + (f" and {len(keys) - SHOWN_KEYS} more"
                                            if len(keys) > SHOWN_KEYS else "")
    new, gone = id_changes(before, study), sum(id_changes(study, before).values())
    text = f"the study differs from the last run's ({Path(out_dir) / STUDY_FILE}): {shown}"
    if not new and not gone:
        return text + "; every trial id stays"
    counts = ", ".join(f"{stage} {n}" for stage, n in new.items())
    if new:
        text += (f"; {sum(new.values())} of its trials have ids the last run's do not "
                 f"({counts}): they run anew")
    if gone:
        text += (f"; {gone} of the last run's trials are not in it (their results stay in "
                 "trials/ and results.parquet: use another --out to keep the two apart)")
    return text
