"""``--set dotted.key=value``: changes to a study file's mapping, made before it is checked.

Why on the raw mapping: the changed study then goes through the same checks as the file
(``search_spaces.schema``), so a bad value gets the message it would get in the YAML file.
The grammar is Hydra's, which researchers already type: ``key=value`` changes a key the study
has (its file gives it, or the schema fills in its default), ``+key=value`` adds one it lacks,
``++key=value`` sets a key whether or not it is there, ``~key`` removes one the file gives.
Values are read as YAML (``2``, ``false``, ``[21, 51]``, ``{epochs: 2}``); a list or a mapping
replaces the whole value, as it would in the file. A path goes through mappings only: a list
is given whole.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import yaml

from search_spaces.study import StudyError

SET, ADD, FORCE, DELETE = "set", "add", "force", "delete"
_KEY = re.compile(r"[^.=\s]+(\.[^.=\s]+)*")
EXAMPLE = "--set modes.full.workers=2"


class OverrideError(StudyError):
    """A ``--set`` option that cannot be applied: its form, its value or its key."""


@dataclass(frozen=True)
class Override:
    """One ``--set`` option: ``text`` as given, the dotted ``key``, what it does, its value."""

    text: str
    key: str
    action: str
    value: Any = None

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("."))


def parse_override(text: str, read: Callable[[str], Any] = yaml.safe_load) -> Override:
    """One ``--set`` option's text as an ``Override``, its value read by ``read`` (YAML; the
    loader passes its bounded reader); refused with the form expected."""
    action, rest = SET, text.strip()
    if rest.startswith("~"):
        action, rest = DELETE, rest[1:]
    elif rest.startswith("++"):
        action, rest = FORCE, rest[2:]
    elif rest.startswith("+"):
        action, rest = ADD, rest[1:]
    key, sep, raw_value = rest.partition("=")
    key = key.strip()
    form = (f"expected key=value with a dotted key (e.g. {EXAMPLE}); +key=value adds a key "
            "the study lacks, ~key removes one")
    if not _KEY.fullmatch(key) or (action == DELETE) == bool(sep):
        raise OverrideError(f"--set {text!r}: {form}")
    if action == DELETE:
        return Override(text, key, action)
    return Override(text, key, action, _yaml_value(text, raw_value, read))


def _yaml_value(text: str, raw: str, read: Callable[[str], Any]) -> Any:
    """The value of ``key=value`` read as YAML."""
    try:
        return read(raw)
    except (yaml.YAMLError, StudyError) as e:
        detail = " ".join(str(e).split())
        raise OverrideError(f"--set {text}: the value is not valid YAML ({detail}); quote the "
                            "option for the shell, e.g. --set 'modes.linear.seeds=[21, 51]'"
                            ) from None


def apply_overrides(raw: Mapping[str, Any], full: Mapping[str, Any],
                    overrides: Iterable[Override]) -> dict[str, Any]:
    """A copy of ``raw`` (the study file's mapping, ``extends`` resolved) with each override
    applied in order. ``full`` is the same study as the schema reads it, every key with its
    default (``study_to_dict``): a key is the study's when either has it."""
    out = copy.deepcopy(dict(raw))
    for o in overrides:
        _apply(out, full, o)
    return out


def _apply(raw: dict[str, Any], full: Mapping[str, Any], o: Override) -> None:
    """One override on ``raw``, in place."""
    here: dict[str, Any] = raw
    known: Any = full
    for depth, part in enumerate(o.path[:-1]):
        where = ".".join(o.path[:depth + 1])
        key = _find(here, part)
        key_known = _find(known, part) if isinstance(known, Mapping) else None
        if key is None and key_known is None and o.action not in (ADD, FORCE):
            raise OverrideError(_unknown(o, depth, here, known))
        key = key if key is not None else (key_known if key_known is not None else _key(part))
        value = here.get(key)
        if value is None:
            value = here[key] = {}
        if not isinstance(value, dict):
            kind = "a list" if isinstance(value, list) else f"the value {value!r}"
            raise OverrideError(f"--set {o.text}: {where} is {kind}, not a mapping; give it "
                                f"whole, e.g. --set '{where}=...'")
        here = value
        known = known.get(key_known) if isinstance(known, Mapping) else None
    _apply_last(here, known, o)


def _apply_last(here: dict[str, Any], known: Any, o: Override) -> None:
    """The override's last key, in the mapping ``here`` (``known``: the same level of the
    study with its defaults, or None)."""
    last = o.path[-1]
    key = _find(here, last)
    key_known = _find(known, last) if isinstance(known, Mapping) else None
    exists = key is not None or key_known is not None
    if o.action == DELETE:
        if key is None:
            why = ("the study file does not give it (its default applies)" if exists
                   else "the study has no such key")
            raise OverrideError(f"--set {o.text}: nothing to remove: {why}")
        del here[key]
        return
    if o.action == SET and not exists:
        raise OverrideError(_unknown(o, len(o.path) - 1, here, known))
    if o.action == ADD and exists:
        raise OverrideError(f"--set {o.text}: {o.key} is already in the study; change it with "
                            f"--set {o.text.lstrip('+')} (++ sets a key whether or not it is "
                            "there)")
    target = key if key is not None else (key_known if key_known is not None else _key(last))
    here[target] = o.value


def _find(mapping: Mapping[Any, Any], part: str) -> Any:
    """The key of ``mapping`` written ``part`` (YAML keys may be numbers: a sparsity), or None."""
    for k in mapping:
        if str(k) == part:
            return k
    return None


def _key(part: str) -> Any:
    """A new key as YAML reads it: ``90`` a number, anything else a string."""
    try:
        value = yaml.safe_load(part)
    except yaml.YAMLError:
        return part
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else part


def _unknown(o: Override, depth: int, here: Mapping[Any, Any], known: Any) -> str:
    """The message for a key the study does not have: the key and the keys at its level."""
    where = ".".join(o.path[:depth])
    keys = sorted({str(k) for k in here} | ({str(k) for k in known}
                                              if isinstance(known, Mapping) else set()))
    level = f"under {where}" if where else "at the top level"
    return (f"--set {o.text}: the study has no key {o.path[depth]!r} {level}; keys there: "
            f"{', '.join(keys) or '(none)'} (+{o.text.lstrip('+')} adds it, if the study "
            "file may give it)")


def blame(message: str, overrides: Iterable[Override], source: str) -> str:
    """A schema message about the changed study, said of the ``--set`` option(s) whose key it
    names (``modes.full.workers: expected ...``) or a key beside it (``recipe.epochs`` moves
    ``recipe.milestones`` out of range), else of the file with all of them."""
    where = message.split(":", 1)[0].strip()
    given = list(overrides)
    mine = [o for o in given if _related(where, o.key)]
    if mine:
        return f"{' '.join('--set ' + o.text for o in mine)}: {message}"
    return f"{source} with {' '.join('--set ' + o.text for o in given)}: {message}"


def _related(where: str, key: str) -> bool:
    """``where`` (a message's key) is ``key``, inside or above it, or beside it."""
    parent = key.rpartition(".")[0]
    return (where == key or where.startswith(key + ".") or key.startswith(where + ".")
            or bool(parent) and where.startswith(parent + "."))
