"""Finding, reading and narrowing studies: built-in names or a user's YAML file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

import yaml

from common.catalog import DENSE
from search_spaces.overrides import (
    Override, OverrideError, apply_overrides, blame, parse_override,
)
from search_spaces.schema import (
    Study, StudyError, sparsity_percent, study_from_dict, study_to_dict,
)

BUILTIN_DIR = Path(__file__).resolve().parent
# A study file is a few KB (the paper's is 4.4 KB). The bounds keep a wrong or hostile file
# from running for minutes before a message: PyYAML reads about 1 MB a second, and a 4 KB
# file of nested aliases ("billion laughs") expands to 10^9 values once anything walks it.
MAX_STUDY_BYTES = 1 << 20
MAX_STUDY_VALUES = 100_000  # keys and values, counting every alias as the values it repeats


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a document whose aliases expand past
    ``MAX_STUDY_VALUES`` values, or that refers to itself, before any object is built."""

    def compose_document(self):  # type: ignore[override]
        node = super().compose_document()
        _check_expansion(node, MAX_STUDY_VALUES)
        return node


def _check_expansion(root: yaml.Node, limit: int) -> None:
    """Count the values of ``root`` as an alias-expanded tree (shared nodes counted once per
    use, each node's count memoised so the count itself stays cheap); refuse past ``limit``."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > limit:
                mark = node.start_mark
                raise StudyError(
                    f"line {mark.line + 1}: this value expands to more than {limit:,} values "
                    "through YAML aliases (*name); a study needs far fewer, so the file is "
                    "refused before any of it is used (an alias bomb or a mistake)")
            continue
        if key in open_nodes:
            raise StudyError(f"line {node.start_mark.line + 1}: a YAML alias refers to a value "
                             "that contains it (a recursive structure); a study cannot have one")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def bounded_yaml(text: str) -> object:
    """YAML text parsed within the bounds above (a study file, or a ``--set`` value)."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise StudyError("nested too deeply to be a study file (lists or mappings "
                         "inside each other hundreds of levels deep)") from None


def _read_yaml(path: Path) -> object:
    """The parsed file, within the bounds above."""
    size = path.stat().st_size
    if size > MAX_STUDY_BYTES:
        raise StudyError(f"{size:,} bytes; a study file is a few KB and at most "
                         f"{MAX_STUDY_BYTES:,} bytes are read (is it the right file?)")
    with path.open("rb") as f:
        data = f.read(MAX_STUDY_BYTES + 1)  # a file that grew after stat
    if len(data) > MAX_STUDY_BYTES:
        raise StudyError(f"more than {MAX_STUDY_BYTES:,} bytes; a study file is a few KB")
    return bounded_yaml(data.decode("utf-8"))


def builtin_studies() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_study(name_or_path: str | Path, overrides: Iterable[str] = ()) -> Study:
    """A built-in study by name (``paper``, ``tiny``) or a YAML file by path, changed by
    ``--set`` options (``search_spaces.overrides``) before it is checked with them."""
    path = study_file(name_or_path)
    raw = _study_mapping(path)
    try:
        study = study_from_dict(raw)
    except StudyError as e:
        raise StudyError(f"{path}: {e}") from None
    given = parse_overrides(overrides)
    if not given:
        return study
    changed = apply_overrides(raw, study_to_dict(study), given)
    try:
        return study_from_dict(changed)
    except OverrideError:
        raise
    except StudyError as e:
        raise OverrideError(blame(str(e), given, str(path))) from None


def parse_overrides(texts: Iterable[str]) -> list[Override]:
    """``--set`` options as ``Override``s, values read as the study file is."""
    return [parse_override(t, read=bounded_yaml) for t in texts]


def _study_mapping(path: Path) -> dict[str, Any]:
    """The study file's mapping, ``extends`` resolved; refused naming the file."""
    try:
        raw = _read_yaml(path)
    except StudyError as e:
        raise StudyError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise StudyError(f"{path}: not valid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise StudyError(f"{path}: not a text file (not UTF-8 at byte {e.start}); expected "
                         "a study YAML file") from None
    except OSError as e:
        raise StudyError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not isinstance(raw, dict):
        raise StudyError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return _extended(raw, path, seen=(path.resolve(),))


def study_file(name_or_path: str | Path) -> Path:
    """The YAML file of a built-in study name or a path; refused if there is none."""
    text = str(name_or_path)
    path = Path(text)
    if not path.suffix and (BUILTIN_DIR / f"{text}.yaml").exists():
        path = BUILTIN_DIR / f"{text}.yaml"
    if not text.strip() or not path.exists():
        raise StudyError(
            f"study {text!r}: no such file, and not a built-in study "
            f"(built-in: {', '.join(builtin_studies())})"
        )
    if not path.is_file():
        raise StudyError(f"study {text!r}: is a directory or not a regular file; expected a "
                         f"study YAML file or a built-in study ({', '.join(builtin_studies())})")
    return path


def _extended(raw: dict[str, Any], path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """``extends: paper`` (a built-in name, or a file next to this one): the base study's
    keys, each top-level key this file gives replacing the base's whole (so a variant of the
    paper study restates only what differs, e.g. its architecture and seeds)."""
    base_name = raw.get("extends")
    if base_name is None:
        return raw
    if not isinstance(base_name, str) or not base_name.strip():
        raise StudyError(f"{path}: extends: expected a study name or file, got {base_name!r}")
    base_path = path.parent / base_name
    if not base_path.suffix and (BUILTIN_DIR / f"{base_name}.yaml").exists():
        base_path = BUILTIN_DIR / f"{base_name}.yaml"
    if not base_path.is_file():
        raise StudyError(f"{path}: extends: {base_name!r} is neither a built-in study "
                         f"({', '.join(builtin_studies())}) nor a file next to it")
    if base_path.resolve() in seen:
        raise StudyError(f"{path}: extends: {base_name!r} extends itself (a cycle)")
    try:
        base = _read_yaml(base_path)
    except (StudyError, yaml.YAMLError, OSError, UnicodeDecodeError) as e:
        raise StudyError(f"{base_path}: cannot be read as the base study of {path}: {e}") from None
    if not isinstance(base, dict):
        raise StudyError(f"{base_path}: expected a mapping at the top level")
    base = _extended(base, base_path, (*seen, base_path.resolve()))
    return {**base, **{k: v for k, v in raw.items() if k != "extends"}}


def _parse_list(value: str | Iterable[Any] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _selection(option: str, value: str | Iterable[Any], valid: Iterable[Any]) -> list[str]:
    """A non-empty ``--option a,b`` list: ``--datasets ''`` would leave a grid with nothing
    (or only the dense baseline) in it and exit 0 as if the study had run."""
    wanted = _parse_list(value) or []
    if not wanted:
        raise StudyError(f"{option}: empty selection {value!r}; give at least one of: "
                         f"{', '.join(map(str, valid))} (or leave {option} out)")
    return wanted


def narrow(
    study: Study,
    *,
    methods: str | Iterable[str] | None = None,
    sparsities: str | Iterable[Any] | None = None,
    datasets: str | Iterable[str] | None = None,
    modes: str | Iterable[str] | None = None,
    seeds: int | None = None,
    archs: str | Iterable[str] | None = None,
) -> Study:
    """Restrict any axis of a study (the CLI's ``--methods gmp,acdc --seeds 2`` ...).

    The dense baseline is always kept: every metric of the study is relative to it.
    ``seeds`` keeps the first N seeds of each mode. Each selection is checked against the
    whole study, so a name narrowed away by an earlier option is still named as valid.
    """
    out = study
    if methods is not None:
        out = _narrow_methods(study, out, methods)
    if sparsities is not None:
        out = _narrow_sparsities(study, out, sparsities)
    if datasets is not None:
        wanted = _selection("--datasets", datasets, [d.name for d in study.datasets])
        for w in wanted:
            study.dataset(w)  # raises with the valid names
        out = dataclasses.replace(out, datasets=tuple(d for d in out.datasets if d.name in wanted))
    if modes is not None:
        wanted = _selection("--modes", modes, [m.name for m in study.modes])
        for w in wanted:
            study.mode(w)
        out = dataclasses.replace(out, modes=tuple(m for m in out.modes if m.name in wanted))
    if seeds is not None:
        if seeds < 1:
            raise StudyError(f"--seeds: expected a count >= 1, got {seeds}")
        out = dataclasses.replace(
            out, modes=tuple(m.first_seeds(seeds) for m in out.modes)
        )
    if archs is not None:
        valid = list(dict.fromkeys([study.arch, *study.archs, *study.extra_archs]))
        wanted = _selection("--archs", archs, valid)
        for w in wanted:
            if w not in valid:
                raise StudyError(f"--archs: unknown architecture {w!r}; valid: {', '.join(valid)}")
        out = dataclasses.replace(out, archs=tuple(wanted))
    return out


def _narrow_methods(study: Study, out: Study, methods: str | Iterable[str]) -> Study:
    """``out`` with the wanted methods and the dense baseline; a method another one borrows
    its mask from (LTH-T's ``mask_from``) stays for the upstream only (``transfer=False``)."""
    valid = [m.name for m in study.methods]
    wanted = _selection("--methods", methods, valid)
    for w in wanted:
        if w not in valid:
            raise StudyError(f"--methods: unknown method {w!r}; valid: {', '.join(valid)}")
    keep = set(wanted) | {m.name for m in study.methods if m.family == DENSE}
    sources = {m.mask_from for m in study.methods if m.name in keep and m.mask_from}
    return dataclasses.replace(
        out,
        methods=tuple(
            m if m.name in keep else dataclasses.replace(m, transfer=False)
            for m in out.methods
            if m.name in keep | sources
        ),
    )


def _narrow_sparsities(study: Study, out: Study, sparsities: str | Iterable[Any]) -> Study:
    """``out`` with each method's backbones at the wanted sparsities only; a method left
    with none is dropped, the dense baseline always kept."""
    all_sp = {s for m in study.methods for s in m.all_sparsities() if s}
    wanted_sp = {sparsity_percent("--sparsities", _num(s))
                 for s in _selection("--sparsities", sparsities, sorted(all_sp))}
    bad = sorted(wanted_sp - all_sp)
    if bad:
        raise StudyError(f"--sparsities: {bad[0]} is not in the study; valid: "
                         f"{', '.join(map(str, sorted(all_sp)))}")
    new_methods = []
    for m in out.methods:
        if m.family == DENSE:
            new_methods.append(m)
            continue
        sps = tuple(s for s in m.sparsities if s in wanted_sp)
        per_arch = tuple((a, tuple(s for s in v if s in wanted_sp))
                         for a, v in m.arch_sparsities)
        if sps or any(v for _, v in per_arch):
            new_methods.append(dataclasses.replace(m, sparsities=sps, arch_sparsities=per_arch))
    return dataclasses.replace(out, methods=tuple(new_methods))


def _num(s: str) -> float | int:
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            raise StudyError(f"--sparsities: {s!r} is not a number") from None
