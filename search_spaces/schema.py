"""A study file's mapping to a ``Study`` and back, checked whole before anything runs.

``study_from_dict`` refuses an invalid study with a ``StudyError`` naming the key and the
valid values; ``study_to_dict`` is its inverse (a YAML round trip). The dataclasses are in
``search_spaces.study``, each block's parsing in ``search_spaces.blocks``, single-value checks
in ``search_spaces.values``; this module is their public face, so callers import from here.
Names of methods, architectures and datasets are the catalog's (``common.catalog``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from common import catalog
from search_spaces.blocks import (
    PRUNE_COMMON,
    RANDOM_PROFILES,
    dataset_from,
    estimate_from,
    known_archs,
    method_from,
    mode_from,
    recipe_from,
    speed_from,
    training_from,
    upstream_from,
)
from search_spaces.recipe import Recipe
from search_spaces.study import (
    DatasetSpec,
    EstimateSettings,
    MethodSpec,
    ModeSpec,
    SpeedSettings,
    Study,
    StudyError,
    TrainingSpec,
    UpstreamSpec,
)
from search_spaces.values import (
    arch_name,
    check_keys,
    config_from,
    config_values,
    dataset_name,
    field_names,
    integer,
    listed,
    optional_path,
    safe_name,
    sparsity_percent,
    unique,
)

__all__ = [
    "PRUNE_COMMON", "RANDOM_PROFILES", "DatasetSpec", "EstimateSettings",
    "MethodSpec", "ModeSpec", "SpeedSettings", "Study", "StudyError", "TrainingSpec",
    "UpstreamSpec",
    "config_from", "config_values", "recipe_from", "sparsity_percent", "study_from_dict",
    "study_to_dict",
]

STUDY_KEYS = field_names(Study)


def study_from_dict(raw: Mapping[str, Any]) -> Study:
    """Validate a parsed YAML mapping into a ``Study``; the first invalid value raises a
    ``StudyError`` naming its key."""
    check_keys(
        "study", raw, STUDY_KEYS, required=("name", "arch", "methods", "datasets", "modes")
    )
    for key in ("methods", "datasets", "modes"):
        if not isinstance(raw[key], Mapping) or not raw[key]:
            raise StudyError(f"{key}: expected a non-empty mapping of name -> settings")
    _check_method_names(raw)
    methods = tuple(method_from(n, v or {}) for n, v in raw["methods"].items())
    _check_method_references(raw, methods)
    arch, archs, extra_archs = _archs(raw)
    for key in ("data_root", "checkpoint_dir"):
        optional_path(key, raw.get(key))
    if not isinstance(raw.get("checkpoint_pattern", ""), str):
        raise StudyError(f"checkpoint_pattern: expected a string such as "
                         f"{Study.checkpoint_pattern!r}, got {raw['checkpoint_pattern']!r}")
    known_datasets = tuple(d.key for d in catalog.CATALOG.datasets)
    for name in raw["datasets"]:
        dataset_name(name, known_datasets)
    return Study(
        # the default output folder is runs/<name>/: the name must stay one folder there
        name=safe_name("name", raw["name"], "a study name"),
        description=str(raw.get("description", "")),
        arch=arch,
        archs=archs,
        extra_archs=extra_archs,
        image_size=integer("image_size", raw.get("image_size", 224), 8),
        methods=methods,
        datasets=tuple(dataset_from(n, v or {}) for n, v in raw["datasets"].items()),
        modes=tuple(mode_from(n, v or {}) for n, v in raw["modes"].items()),
        data_root=raw.get("data_root"),
        checkpoint_dir=raw.get("checkpoint_dir"),
        checkpoint_pattern=str(raw.get("checkpoint_pattern", Study.checkpoint_pattern)),
        upstream=upstream_from(raw["upstream"]) if raw.get("upstream") else None,
        speed=speed_from(raw.get("speed", {}) or {}),
        estimate=estimate_from(raw.get("estimate", {}) or {}),
        training=training_from(raw.get("training", {}) or {}),
    )


def _check_method_names(raw: Mapping[str, Any]) -> None:
    """Every method is one the upstream can make, or, in a study that reads its checkpoints
    from files, a catalog method or one of the study's own with a ``label`` and a ``family``
    (what keeps a typo such as "gmpp" from becoming a method silently)."""
    made_here = catalog.CATALOG.upstream_methods()
    cataloged = {m.key for m in catalog.CATALOG.methods}
    for name, m in raw["methods"].items():
        if name in made_here:
            continue
        own = name in cataloged or (isinstance(m, Mapping) and "label" in m and "family" in m)
        if not own or raw.get("upstream"):
            why = ("the upstream zoo is made by the registered pruning methods"
                   if raw.get("upstream") else
                   "a method of the study's own needs a 'label' and a 'family' "
                   "(its backbones are then its checkpoint files)")
            raise StudyError(
                f"methods: unknown method {name!r}; valid methods: "
                f"{', '.join(made_here)} ({why})"
            )
        safe_name(f"methods.{name}", name, "a method name")


def _check_method_references(raw: Mapping[str, Any], methods: tuple[MethodSpec, ...]) -> None:
    """``mask_from`` and ``upstream.prune_overrides`` name methods of the study, and exactly
    one method is the dense baseline."""
    names = {m.name for m in methods}
    for m in methods:
        if m.mask_from is not None and m.mask_from not in names:
            raise StudyError(
                f"methods.{m.name}.mask_from: {m.mask_from!r} is not a method of this study; "
                f"valid: {', '.join(sorted(names))}"
            )
    up = raw.get("upstream")
    overrides = up.get("prune_overrides") if isinstance(up, Mapping) else None
    if isinstance(overrides, Mapping):
        for name in overrides:
            if name not in names:
                raise StudyError(
                    f"upstream.prune_overrides.{name}: {name!r} is not a method of this study; "
                    f"valid: {', '.join(sorted(names))}")
    if sum(m.family == catalog.DENSE for m in methods) != 1:
        raise StudyError("methods: a study needs exactly one method with family 'dense'")


def _archs(raw: Mapping[str, Any]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``arch``, ``archs`` (default: ``[arch]``) and ``extra_archs``, each a catalog
    architecture, none listed twice."""
    known = known_archs()
    arch = arch_name("arch", raw["arch"], known)
    archs = tuple(arch_name("archs", a, known)
                  for a in listed("archs", raw.get("archs", [arch]), "architecture names"))
    extra_archs = tuple(arch_name("extra_archs", a, known)
                        for a in listed("extra_archs", raw.get("extra_archs", []) or [],
                                        "architecture names"))
    for key, values in (("archs", archs), ("extra_archs", extra_archs)):
        unique(key, values)
    return arch, archs, extra_archs


def study_to_dict(study: Study) -> dict[str, Any]:
    """The inverse of ``study_from_dict`` (YAML round trip)."""
    out: dict[str, Any] = {
        "name": study.name,
        "description": study.description,
        "arch": study.arch,
        "archs": list(study.archs),
        "extra_archs": list(study.extra_archs),
        "image_size": study.image_size,
        "data_root": study.data_root,
        "checkpoint_dir": study.checkpoint_dir,
        "checkpoint_pattern": study.checkpoint_pattern,
        "methods": {m.name: _method_to_dict(m) for m in study.methods},
        "datasets": {
            d.name: {k: v for k, v in dataclasses.asdict(d).items() if k != "name"}
            for d in study.datasets
        },
        "modes": {m.name: _mode_to_dict(m) for m in study.modes},
        "speed": {k: _plain(v) for k, v in dataclasses.asdict(study.speed).items()},
        "estimate": dataclasses.asdict(study.estimate),
        "training": dataclasses.asdict(study.training),
    }
    if study.upstream is not None:
        out["upstream"] = _upstream_to_dict(study.upstream)
    return out


def _plain(value: Any) -> Any:
    """A tuple as the list YAML writes."""
    return list(value) if isinstance(value, tuple) else value


def _recipe_to_dict(r: Recipe) -> dict[str, Any]:
    return {**dataclasses.asdict(r), "milestones": list(r.milestones)}


def _method_to_dict(m: MethodSpec) -> dict[str, Any]:
    sparsities: Any = list(m.sparsities)
    if m.arch_sparsities:
        sparsities = {"default": list(m.sparsities),
                      **{a: list(sps) for a, sps in m.arch_sparsities}}
    out: dict[str, Any] = {
        "label": m.label,
        "family": m.family,
        "sparsities": sparsities,
        "checkpoints": {**dict(m.checkpoints),
                        **{a: dict(paths) for a, paths in m.arch_checkpoints}},
        "mask_from": m.mask_from,
        "interpolation": m.interpolation,
        "transfer": m.transfer,
    }
    if m.ticket_pattern is not None:
        out["tickets"] = m.ticket_pattern
    elif m.tickets:
        out["tickets"] = dict(m.tickets)
    return out


def _mode_to_dict(m: ModeSpec) -> dict[str, Any]:
    return {
        "seeds": ({"default": list(m.seeds), **{a: list(s) for a, s in m.arch_seeds}}
                  if m.arch_seeds else list(m.seeds)),
        "recipe": _recipe_to_dict(m.recipe),
        "cpus": m.cpus,
        "gpus": m.gpus,
        "workers": m.workers,
        "use_gpu": m.use_gpu,
        "trainer": m.trainer,
        "start_timeout_s": m.start_timeout_s,
        "crop_scale": list(m.crop_scale),
        "normalize": m.normalize,
        "epoch_selection": m.epoch_selection,
    }


def _upstream_to_dict(u: UpstreamSpec) -> dict[str, Any]:
    return {
        "dataset": u.dataset,
        "num_classes": u.num_classes,
        "images_per_class": u.images_per_class,
        "val_images_per_class": u.val_images_per_class,
        "seed": u.seed,
        "pretrain": _recipe_to_dict(u.pretrain),
        "prune": {k: _plain(v) for k, v in u.prune},
        "prune_overrides": {m: {k: _plain(v) for k, v in items}
                            for m, items in u.prune_overrides},
    }
