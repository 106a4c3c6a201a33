"""Each block of a study file (a method, a dataset, a mode, the upstream, speed, estimate) as
its dataclass, every value checked where it is read so an error names its key.

Methods, datasets and architectures are the catalog's (``common.catalog``): a method or dataset
it knows takes its label, family, classes, metric and group from it unless the file gives them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

from common import catalog
from common import columns as C
from search_spaces.recipe import PAPER_CROP_SCALE, Recipe
from search_spaces.study import (
    AUGMENTS,
    DatasetSpec,
    EstimateSettings,
    MethodSpec,
    ModeSpec,
    SpeedSettings,
    StudyError,
    TrainingSpec,
    UpstreamSpec,
)
from search_spaces.values import (
    arch_name,
    boolean,
    check_keys,
    choice,
    dataset_name,
    field_names,
    integer,
    label_text,
    listed,
    number,
    optional_name,
    safe_name,
    sparsity_percent,
    unique,
)

T = TypeVar("T")
MODES = C.TRANSFER_MODES  # the ``modes:`` a study may give
# Input normalisation of a mode: ImageNet's mean/std, or the dataset's own, computed from its
# training split (the reference code: the dataset's own for full finetuning, ImageNet's for
# linear, where the frozen backbone keeps ImageNet's BatchNorm statistics).
NORMALIZATIONS = ("imagenet", "dataset")
NORMALIZE_DEFAULT = {C.MODE_LINEAR: "imagenet", C.MODE_FULL: "dataset"}
# Which epoch's accuracy a transfer trial reports: the best epoch by top-1 (the reference
# code), the best by the dataset's own metric, or the last epoch.
EPOCH_SELECTIONS = ("top1", "metric", "last")
# How speed trials prune random weights (trainables.speed.PRUNE_PROFILES; a test keeps them
# in step).
RANDOM_PROFILES = ("uniform", "global")
# upstream.prune keys every pruning method's config has (trainables.pruning.common.PruneConfig,
# plus the loader's batch_size; a test keeps them in step): kind and lower bound. Keys of one
# method's own config are checked by that config when its trial starts.
PRUNE_COMMON: dict[str, tuple[str, float]] = {
    "steps": ("int", 1), "batch_size": ("int", 1), "frequency": ("int", 1),
    "report_every": ("int", 1), "lr": ("positive", 0), "momentum": ("float", 0),
    "weight_decay": ("float", 0), "finetune_fraction": ("float", 0),
}
Paths = tuple[tuple[int, str], ...]  # (sparsity, file) pairs, sorted
PerArch = tuple[tuple[str, T], ...]  # (arch, value) pairs, sorted


def known_archs() -> tuple[str, ...]:
    """The architectures a study may name: the catalog's."""
    return tuple(a.key for a in catalog.CATALOG.archs)


def recipe_from(where: str, raw: Mapping[str, Any], base: Recipe | None = None) -> Recipe:
    """A recipe: ``base``'s values (or ``Recipe``'s) with what the file gives."""
    check_keys(where, raw, field_names(Recipe))
    values = dataclasses.asdict(base) if base else {}
    for k, v in raw.items():
        if k == "milestones":
            if not isinstance(v, (list, tuple)):
                raise StudyError(f"{where}.milestones: expected a list of epochs, got {v!r}")
            v = tuple(integer(f"{where}.milestones", e, 0) for e in v)
        elif k in ("epochs", "batch_size"):
            v = integer(f"{where}.{k}", v, 1)
        elif k in ("lr", "gamma"):
            v = number(f"{where}.{k}", v, positive=True)
        elif k == "momentum":
            v = number(f"{where}.{k}", v, lo=0, below=1)
        else:
            v = number(f"{where}.{k}", v, lo=0)
        values[k] = v
    # Only milestones the file gives: a recipe that sets just ``epochs: 2`` keeps the default
    # (50, 100), which then never fire, as before.
    epochs = values.get("epochs", Recipe.epochs)
    for m in raw.get("milestones", ()):
        if not 1 <= m < epochs:
            raise StudyError(
                f"{where}.milestones: epoch {m} is outside the run's {epochs} epochs; the lr "
                f"changes after a milestone epoch, so expected 1..{epochs - 1}")
    try:
        return Recipe(**values)
    except ValueError as e:
        raise StudyError(f"{where}: {e}") from None


def dataset_from(name: str, raw: Mapping[str, Any]) -> DatasetSpec:
    """A dataset of the study; a catalog dataset's classes, metric and group are the
    catalog's unless the file gives them (an image folder must give them)."""
    where = f"datasets.{name}"
    facts = next((d for d in catalog.CATALOG.datasets if d.key == name), None)
    known = ({"classes": facts.classes, "metric": facts.metric, "group": facts.group}
             if facts else {})
    check_keys(where, raw, field_names(DatasetSpec) - {"name"},
               required=[k for k in ("classes", "metric", "group") if k not in known])
    raw = {**known, **raw}
    return DatasetSpec(
        name=name,
        classes=integer(f"{where}.classes", raw["classes"], 2),
        metric=choice(f"{where}.metric", raw["metric"], catalog.METRICS),
        group=choice(f"{where}.group", raw["group"], catalog.GROUPS),
        full_lr=number(f"{where}.full_lr", raw.get("full_lr", 0.001), positive=True),
        train_images=integer(f"{where}.train_images", raw.get("train_images", 0), 0),
        test_images=integer(f"{where}.test_images", raw.get("test_images", 0), 0),
    )


def _sparsity_list(where: str, sps: Any, allow_empty: bool = False) -> tuple[int, ...]:
    if not isinstance(sps, (list, tuple)) or (not sps and not allow_empty):
        raise StudyError(f"{where}: expected a non-empty list of percents, got {sps!r}")
    return unique(where, tuple(sparsity_percent(where, s) for s in sps), sps)


def _sparsities(where: str, raw: Any) -> tuple[tuple[int, ...], PerArch[tuple[int, ...]]]:
    """``[80, 90]`` for every arch, or ``{default: [80, 90], mobilenet_v1: [75, 89]}``: per
    arch, ``default`` (or nothing: ``[]``) for the archs not named."""
    if not isinstance(raw, Mapping):
        return _sparsity_list(where, raw), ()
    default = _sparsity_list(f"{where}.default", raw.get("default", []), allow_empty=True)
    per_arch = tuple(sorted(
        (arch_name(f"{where}", a, known_archs()),
         _sparsity_list(f"{where}.{a}", v, allow_empty=True))
        for a, v in raw.items() if a != "default"))
    if not default and not any(sps for _, sps in per_arch):
        raise StudyError(f"{where}: expected at least one sparsity for some architecture, "
                         f"got {dict(raw)!r}")
    return default, per_arch


def _path_map(where: str, raw: Any) -> Paths:
    """``{sparsity: path}``, sorted by sparsity."""
    if not isinstance(raw, Mapping):
        raise StudyError(f"{where}: expected a mapping sparsity -> path, got {raw!r}")
    out = []
    for k, v in raw.items():
        if not isinstance(v, str) or not v.strip():
            raise StudyError(f"{where}.{k}: expected a file path, got {v!r}")
        out.append((sparsity_percent(where, k), v))
    return tuple(sorted(out))


def _checkpoints(where: str, raw: Any) -> tuple[Paths, PerArch[Paths]]:
    """``{90: path}`` for every arch, and/or ``{mobilenet_v1: {75: path}}`` per arch."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise StudyError(f"{where}: expected a mapping sparsity -> path")
    archs = known_archs()
    plain = {k: v for k, v in raw.items() if not (isinstance(k, str) and k in archs)}
    per_arch = tuple(sorted((a, _path_map(f"{where}.{a}", v)) for a, v in raw.items()
                            if isinstance(a, str) and a in archs))
    return _path_map(where, plain), per_arch


def _family(where: str, value: Any) -> str:
    """The paper's family or a study's own plain lower-case name."""
    if not isinstance(value, str) or not catalog.FAMILY_NAME.fullmatch(value):
        raise StudyError(f"{where}: {value!r} is not a family name; the paper's are "
                         f"{', '.join(catalog.FAMILIES)}, and a study may name its own (lower-case "
                         "letters, digits and '_', e.g. structured)")
    return value


def method_from(name: str, raw: Mapping[str, Any]) -> MethodSpec:
    """A method of the study; a catalog method's label and family are the catalog's unless
    the file gives them."""
    where = f"methods.{name}"
    check_keys(where, raw, field_names(MethodSpec) - {"name", "arch_sparsities",
                                                      "arch_checkpoints", "ticket_pattern"},
               required=("sparsities",))
    facts = next((m for m in catalog.CATALOG.methods if m.key == name), None)
    sparsities, arch_sparsities = _sparsities(f"{where}.sparsities", raw["sparsities"])
    family = _family(f"{where}.family",
                     raw.get("family", facts.family if facts else catalog.PROGRESSIVE))
    every = {*sparsities, *(s for _, sps in arch_sparsities for s in sps)}
    if family == catalog.DENSE and every != {0}:
        raise StudyError(f"{where}.sparsities: the dense baseline has sparsity [0], got "
                         f"{raw['sparsities']!r}")
    if family != catalog.DENSE and 0 in every:
        raise StudyError(f"{where}.sparsities: sparsity 0 is the dense baseline's; use 1-99")
    checkpoints, arch_checkpoints = _checkpoints(f"{where}.checkpoints", raw.get("checkpoints"))
    tickets, ticket_pattern = _tickets(f"{where}.tickets", raw.get("tickets"), family)
    return MethodSpec(
        name=name,
        label=label_text(f"{where}.label", raw.get("label", facts.label if facts else name)),
        family=family,
        sparsities=sparsities,
        checkpoints=checkpoints,
        mask_from=optional_name(f"{where}.mask_from", raw.get("mask_from")),
        interpolation=choice(
            f"{where}.interpolation", raw.get("interpolation", "bilinear"), ("bilinear", "bicubic")
        ),
        transfer=boolean(f"{where}.transfer", raw.get("transfer", True)),
        arch_sparsities=arch_sparsities,
        arch_checkpoints=arch_checkpoints,
        tickets=tickets,
        ticket_pattern=ticket_pattern,
    )


def _tickets(where: str, raw: Any, family: str) -> tuple[Paths, str | None]:
    """LTH-T's ticket files: a path per sparsity, or a pattern with ``{sparsity}``."""
    if raw is None:
        return (), None
    if family != catalog.LOTTERY:
        raise StudyError(f"{where}: only a lottery-family method (LTH-T) has ticket "
                         f"files; this one is {family!r}")
    if isinstance(raw, str):
        if "{sparsity}" not in raw:
            raise StudyError(f"{where}: a pattern needs '{{sparsity}}' (one ticket "
                             f"file per sparsity), got {raw!r}")
        return (), raw
    return _path_map(where, raw), None


def _seed_list(where: str, seeds: Any) -> tuple[int, ...]:
    """A list of seeds, or a count (``3``: seeds 0, 1, 2)."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise StudyError(f"{where}: seed count must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise StudyError(f"{where}: expected a non-empty list of seeds, got {seeds!r}")
    seeds = tuple(integer(where, s, 0) for s in seeds)
    if len(set(seeds)) != len(seeds):
        raise StudyError(f"{where}: seeds repeat: {list(seeds)}")
    return seeds


def _seeds(where: str, raw: Any) -> tuple[tuple[int, ...], PerArch[tuple[int, ...]]]:
    """``[21, 51, 81]`` for every arch, or ``{default: [21, 51, 81], mobilenet_v1: [21]}``."""
    if not isinstance(raw, Mapping):
        return _seed_list(where, raw), ()
    if "default" not in raw:
        raise StudyError(f"{where}: per architecture, expected a 'default' list too, got "
                         f"{dict(raw)!r}")
    return _seed_list(f"{where}.default", raw["default"]), tuple(sorted(
        (arch_name(where, a, known_archs()), _seed_list(f"{where}.{a}", v))
        for a, v in raw.items() if a != "default"))


def mode_from(name: str, raw: Mapping[str, Any]) -> ModeSpec:
    """A finetuning mode: seeds (a list, or a count), recipe, resources and protocol."""
    where = f"modes.{name}"
    choice("modes", name, MODES)
    check_keys(where, raw, field_names(ModeSpec) - {"name", "arch_seeds"},
               required=("seeds", "recipe"))
    seeds, arch_seeds = _seeds(f"{where}.seeds", raw["seeds"])
    return ModeSpec(
        name=name,
        seeds=seeds,
        arch_seeds=arch_seeds,
        recipe=recipe_from(f"{where}.recipe", raw["recipe"]),
        cpus=number(f"{where}.cpus", raw.get("cpus", 1.0), positive=True),
        gpus=number(f"{where}.gpus", raw.get("gpus", 0.0), lo=0),
        workers=integer(f"{where}.workers", raw.get("workers", 1), 1),
        use_gpu=_use_gpu(f"{where}.use_gpu", raw.get("use_gpu", "auto")),
        trainer=choice(f"{where}.trainer", raw.get("trainer", "ray_train"), ("ray_train", "auto")),
        start_timeout_s=number(f"{where}.start_timeout_s", raw.get("start_timeout_s", 900.0),
                               positive=True),
        crop_scale=_crop_scale(f"{where}.crop_scale", raw.get("crop_scale", PAPER_CROP_SCALE)),
        normalize=choice(f"{where}.normalize", raw.get("normalize", NORMALIZE_DEFAULT[name]),
                          NORMALIZATIONS),
        epoch_selection=choice(f"{where}.epoch_selection", raw.get("epoch_selection", "top1"),
                                EPOCH_SELECTIONS),
    )


def _use_gpu(where: str, value: Any) -> str:
    """``auto``, ``yes`` or ``no``; YAML reads an unquoted ``yes``/``no`` (``use_gpu: no``,
    ``--set modes.full.use_gpu=no``) as true/false, which mean the same."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return choice(where, value, ("auto", "yes", "no"))


def _crop_scale(where: str, value: Any) -> tuple[float, float]:
    """``[low, high]``: shares of the image area, 0 < low <= high <= 1."""
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not 0 < value[0] <= value[1] <= 1):
        raise StudyError(f"{where}: expected [low, high] with 0 < low <= high <= 1 (shares of "
                         f"the image area, the paper's is [0.08, 1.0]), got {value!r}")
    return (float(value[0]), float(value[1]))


def _frozen_items(where: str, raw: Any) -> tuple[tuple[str, Any], ...]:
    if not isinstance(raw, Mapping):
        raise StudyError(f"{where}: expected a mapping, got {raw!r}")
    return tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in raw.items()))


def _prune_items(where: str, raw: Any) -> tuple[tuple[str, Any], ...]:
    """``upstream.prune`` (or one method's overrides): the keys every config shares are checked
    here, before any trial; every other value must at least be finite."""
    items = _frozen_items(where, raw)
    for k, v in items:
        kind, lo = PRUNE_COMMON.get(k, ("", 0))
        if kind == "int":
            integer(f"{where}.{k}", v, int(lo))
        elif kind:
            number(f"{where}.{k}", v, positive=kind == "positive", lo=lo,
                   below=1 if k in ("momentum", "finetune_fraction") else None)
        elif isinstance(v, float):
            number(f"{where}.{k}", v)
    return items


def upstream_from(raw: Mapping[str, Any]) -> UpstreamSpec:
    """How the study makes its own zoo: the upstream set, pretraining and pruning settings."""
    where = "upstream"
    check_keys(where, raw, field_names(UpstreamSpec))
    base = UpstreamSpec()
    overrides = raw.get("prune_overrides", {}) or {}
    return UpstreamSpec(
        dataset=safe_name(f"{where}.dataset", raw.get("dataset", base.dataset),
                           "an upstream dataset name"),
        num_classes=integer(f"{where}.num_classes", raw.get("num_classes", base.num_classes), 2),
        images_per_class=integer(
            f"{where}.images_per_class", raw.get("images_per_class", base.images_per_class), 1
        ),
        val_images_per_class=integer(
            f"{where}.val_images_per_class",
            raw.get("val_images_per_class", base.val_images_per_class),
            1,
        ),
        seed=integer(f"{where}.seed", raw.get("seed", base.seed), 0),
        pretrain=recipe_from(f"{where}.pretrain", raw.get("pretrain", {}), base.pretrain),
        prune=_prune_items(f"{where}.prune", raw.get("prune", {}) or {}),
        prune_overrides=tuple(
            sorted(
                (str(m), _prune_items(f"{where}.prune_overrides.{m}", v))
                for m, v in _frozen_items(f"{where}.prune_overrides", overrides)
            )
        ),
    )


def speed_from(raw: Mapping[str, Any]) -> SpeedSettings:
    """The speed trials' settings; a key the file leaves out keeps ``SpeedSettings``' value."""
    where = "speed"
    check_keys(where, raw, field_names(SpeedSettings))
    values: dict[str, Any] = {}
    for k, v in raw.items():
        if k in ("random_sparsities",):
            v = unique(f"{where}.{k}", tuple(sparsity_percent(f"{where}.{k}", s)
                                              for s in listed(f"{where}.{k}", v, "percents")))
        elif k == "batch_sizes":
            v = unique(f"{where}.{k}", tuple(integer(f"{where}.{k}", b, 1)
                                              for b in listed(f"{where}.{k}", v, "batch sizes")))
        elif k == "random_arch":
            v = None if v is None else arch_name(f"{where}.{k}", v, known_archs())
        elif k == "online_dataset":
            v = None if v is None else dataset_name(v, None, where=f"{where}.{k}")
        elif k == "online_datasets":
            v = unique(f"{where}.{k}", tuple(
                dataset_name(x, None, where=f"{where}.{k}")
                for x in listed(f"{where}.{k}", v or [], "dataset names")))
        elif k in ("online_batches", "random_online_batches") and v is None:
            pass  # the whole epoch
        elif k in ("warmup", "reps", "online_batches", "random_online_batches", "online_epochs",
                   "loader_workers"):
            v = integer(f"{where}.{k}", v, 0 if k in ("warmup", "loader_workers") else 1)
        elif k == "random_profile":
            v = choice(f"{where}.{k}", v, RANDOM_PROFILES)
        elif k in ("enabled", "backbones"):
            if not isinstance(v, bool):
                raise StudyError(f"{where}.{k}: expected true or false, got {v!r}")
        values[k] = v
    return SpeedSettings(**values)


def estimate_from(raw: Mapping[str, Any]) -> EstimateSettings:
    """The dry run's throughputs: positive numbers."""
    check_keys("estimate", raw, field_names(EstimateSettings))
    return EstimateSettings(**{k: number(f"estimate.{k}", v, positive=True)
                               for k, v in raw.items()})


def training_from(raw: Mapping[str, Any]) -> TrainingSpec:
    """How the training loops feed their model: ``channels_last`` (bool), ``augment``."""
    check_keys("training", raw, field_names(TrainingSpec))
    base = TrainingSpec()
    return TrainingSpec(
        channels_last=boolean("training.channels_last",
                              raw.get("channels_last", base.channels_last)),
        augment=choice("training.augment", raw.get("augment", base.augment), AUGMENTS),
    )
