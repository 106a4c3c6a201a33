"""Checks of single study values, each raising a ``StudyError`` that names the key.

Why one module: every block of a study file (methods, datasets, modes, speed...) checks the
same kinds of value, and a study is refused whole while loading, before anything runs, so
each check must say where the value is and what was expected.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from typing import Any, Mapping

from common.catalog import IMAGEFOLDER_PREFIX
from search_spaces.study import StudyError

SPARSITY_RANGE = (0, 99)
# A name that becomes one folder or file name: ASCII letters, digits, "_", "-", "." (not
# first), so it can neither climb out of its folder ("..", "/") nor hide (".name").
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def check_keys(where: str, raw: Mapping[str, Any], allowed: set[str], required=()) -> None:
    """``raw`` is a mapping with only ``allowed`` keys and every ``required`` one."""
    if not isinstance(raw, Mapping):
        raise StudyError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise StudyError(
            f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(allowed))}"
        )
    missing = [k for k in required if k not in raw]
    if missing:
        raise StudyError(f"{where}: missing required key {missing[0]!r}")


def field_names(cls: type) -> set[str]:
    """The keys a block may give: its dataclass's fields."""
    return {f.name for f in dataclasses.fields(cls)}


def choice(where: str, value: Any, valid: tuple[str, ...]) -> str:
    """One of ``valid``."""
    if value not in valid:
        raise StudyError(f"{where}: {value!r} is not valid; valid values: {', '.join(valid)}")
    return value


def integer(where: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (not a bool, not 2.0) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise StudyError(f"{where}: expected an integer, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise StudyError(f"{where}: expected an integer >= {lo}, got {value}")
        raise StudyError(f"{where}: {value} is out of range [{lo}, {hi}]")
    return value


def number(where: str, value: Any, positive: bool = False, lo: float | None = None,
           below: float | None = None) -> float:
    """A finite number (YAML's ``.nan`` and ``.inf`` are floats too, and NaN passes every
    comparison), > 0 when ``positive``, >= ``lo``, < ``below``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StudyError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise StudyError(f"{where}: expected a finite number, got {value}")
    if positive and value <= 0:
        raise StudyError(f"{where}: expected a positive number, got {value}")
    if lo is not None and value < lo:
        raise StudyError(f"{where}: expected a number >= {lo:g}, got {value}")
    if below is not None and value >= below:
        raise StudyError(f"{where}: expected a number below {below:g}, got {value}")
    return float(value)


def boolean(where: str, value: Any) -> bool:
    """true or false: ``bool("no")`` is True, so a string is refused rather than converted."""
    if not isinstance(value, bool):
        raise StudyError(f"{where}: expected true or false, got {value!r}")
    return value


def listed(where: str, value: Any, what: str) -> list[Any]:
    """A YAML list; a bare string is refused rather than split into its letters."""
    if not isinstance(value, (list, tuple)):
        raise StudyError(f"{where}: expected a list of {what}, e.g. [{value}], got {value!r}"
                         if isinstance(value, str) else
                         f"{where}: expected a list of {what}, got {value!r}")
    return list(value)


def unique(where: str, values: tuple[Any, ...], given: Any = None) -> tuple[Any, ...]:
    """``values`` if none repeats; ``given``: the list as the file wrote it (0.8 and 80 are
    one sparsity), for the message."""
    seen = set()
    for v in values:
        if v in seen:
            raise StudyError(f"{where}: {v} is listed twice in "
                             f"{list(values) if given is None else list(given)}; each may "
                             "appear once")
        seen.add(v)
    return values


def arch_name(where: str, value: Any, known: tuple[str, ...] | None) -> str:
    """One of the ``known`` architectures (None: any name)."""
    if not isinstance(value, str) or (known is not None and value not in known):
        raise StudyError(f"{where}: unknown architecture {value!r}; known architectures: "
                         f"{', '.join(known or ())}")
    return value


def safe_name(where: str, value: Any, what: str) -> str:
    """A name that becomes a folder or file name inside the output folder."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise StudyError(
            f"{where}: {value!r} cannot be {what}: it becomes a folder name, so it must be 1-100 "
            "ASCII letters, digits, '_', '-' or '.' (not first, no '..')")
    return value


def dataset_name(value: Any, known: tuple[str, ...] | None, where: str = "") -> str:
    """A registered dataset or ``imagefolder:<path>`` (a folder of the user's own images)."""
    where = where or f"datasets.{value}"
    if isinstance(value, str) and value.startswith(IMAGEFOLDER_PREFIX):
        path = value[len(IMAGEFOLDER_PREFIX):]
        if not path.strip() or path != path.strip() or not path.isprintable():
            raise StudyError(f"{where}: expected 'imagefolder:<path>' with a path of printable "
                             f"characters and no surrounding spaces, got {value!r}")
        return value
    safe_name(where, value, "a dataset name")
    if known is not None and value not in known:
        raise StudyError(f"{where}: unknown dataset {value!r}; known datasets: "
                         f"{', '.join(known)}, or imagefolder:<path> for a folder of images")
    return value


def label_text(where: str, value: Any) -> str:
    """What tables and figures show for a method: text (a number is taken as text)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
            isinstance(value, float) and not math.isfinite(value)) or not str(value).strip():
        raise StudyError(f"{where}: expected the text tables and figures show, got {value!r}")
    return str(value)


def optional_name(where: str, value: Any) -> str | None:
    """A method name or nothing."""
    if value is not None and not isinstance(value, str):
        raise StudyError(f"{where}: expected a method name, got {value!r}")
    return value


def optional_path(where: str, value: Any) -> str | None:
    """One path or nothing."""
    if value is not None and not isinstance(value, str):
        raise StudyError(f"{where}: expected one path (a string), got {value!r}")
    return value


def sparsity_percent(where: str, value: Any) -> int:
    """Sparsity as an int percent; fractions like 0.9 are accepted and converted."""
    if isinstance(value, float) and 0 < value < 1:
        value = round(value * 100)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return integer(where, value, *SPARSITY_RANGE)


def config_values(where: str, cls: type, values: Mapping[str, Any], owner: str,
                  extra: frozenset[str] = frozenset(), hint: str = "") -> dict[str, Any]:
    """Study values for the config dataclass ``cls`` (a pruning method's ``PruneConfig``):
    unknown keys refused with the valid ones, each value checked against its field's type,
    which a dataclass does not check (``from_scratch: no`` would be true). ``extra``: keys
    the caller uses itself, left out of the result; ``where`` and ``owner`` name the settings
    and whose they are in messages; ``hint`` follows an unknown key's message."""
    hints = typing.get_type_hints(cls)
    valid = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - valid - set(extra))
    if unknown:
        raise StudyError(f"{where}.{unknown[0]}: not a setting of {owner}; valid keys: "
                         f"{', '.join(sorted(valid | set(extra)))}{hint}")
    return {k: _typed(f"{where}.{k}", v, hints[k]) for k, v in values.items() if k not in extra}


def config_from(where: str, cls: type, values: Mapping[str, Any]) -> Any:
    """``cls(**values)`` (values from ``config_values``), its own checks' errors as a
    ``StudyError`` naming ``where``."""
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise StudyError(f"{where}: {e}") from None


def _typed(where: str, value: Any, hint: Any) -> Any:
    """``value`` as the field type ``hint`` asks for (int, float, bool, str, tuple[str, ...]);
    other types are passed on for the class to check."""
    if hint is bool:
        return boolean(where, value)
    if hint is int:
        return integer(where, value)
    if hint is float:
        return number(where, value)
    if hint is str:
        if not isinstance(value, str):
            raise StudyError(f"{where}: expected text, got {value!r}")
        return value
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(
                isinstance(v, str) for v in value):
            raise StudyError(f"{where}: expected a list of names, got {value!r}")
        return tuple(value)
    return value
