"""Typed study definitions: YAML maps onto frozen dataclasses, errors name the key.

A study is the whole grid of the paper (or a laptop-sized stand-in): which sparse backbones
exist, which downstream datasets, which finetuning modes with which seeds and recipes, and,
for the tiny study, how the upstream zoo is made. Nothing here imports torch, so a dry run
stays fast.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from common import columns as C
from common.errors import BadInput
from search_spaces.recipe import PAPER_CROP_SCALE, Recipe

METRICS = ("top1", "mean_per_class")
GROUPS = ("general", "specialized")
MODES = C.TRANSFER_MODES  # the ``modes:`` a study may give
# The paper's method families, in the order reports show them. A study may name others
# ("structured" for Appendix J's channel-pruned models, ...): any plain lower-case name.
FAMILIES = ("dense", "progressive", "regularization", "lottery", "structured")
FAMILY_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Input normalisation of a mode: ImageNet's mean/std, or the dataset's own, computed from its
# training split (the reference code: the dataset's own for full finetuning, ImageNet's for
# linear, where the frozen backbone keeps ImageNet's BatchNorm statistics).
NORMALIZATIONS = ("imagenet", "dataset")
NORMALIZE_DEFAULT = {C.MODE_LINEAR: "imagenet", C.MODE_FULL: "dataset"}
# Which epoch's accuracy a transfer trial reports: the best epoch by top-1 (the reference
# code), the best by the dataset's own metric, or the last epoch.
EPOCH_SELECTIONS = ("top1", "metric", "last")
SPARSITY_RANGE = (0, 99)
# How speed trials prune random weights (trainables.speed.PRUNE_PROFILES; a test keeps them
# in step).
RANDOM_PROFILES = ("uniform", "global")
# Method names a study may use: the dense baseline plus every registered pruning method
# (trainables.pruning.METHODS; a test keeps the two in step without importing torch here).
# A study that reads its checkpoints from files may also name a method of its own (M-FAC,
# "STR, label smoothing" next to the retrained STR, an AMC model...) when it gives it a
# ``label`` and a ``family``: its backbones are its checkpoint files.
KNOWN_METHODS = ("dense", "gmp", "woodfisher", "acdc", "str", "rigl_erk1x", "rigl_erk5x", "lth_t")
# Architectures and datasets a study may name (trainables.models.ARCHITECTURES and
# trainables.datasets.DATASETS; a test keeps them in step, as for the methods). A dataset may
# also be "imagefolder:<path>", a folder of the user's own images.
KNOWN_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet_tiny", "mobilenet_v1")
KNOWN_DATASETS = (
    "sun397", "aircraft", "birdsnap", "caltech101", "caltech101_background", "caltech256",
    "cars", "cifar10", "cifar100",
    "dtd", "flowers", "food101", "pets", "digits", "mnist", "textures", "lfw_faces",
    "fine_stripe_angle", "fine_shape_detail", "fine_stripe_period", "fine_hue",
)
IMAGEFOLDER_PREFIX = "imagefolder:"
# A name that becomes one folder or file name: ASCII letters, digits, "_", "-", "." (not
# first), so it can neither climb out of its folder ("..", "/") nor hide (".name").
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
# upstream.prune keys every pruning method's config has (trainables.pruning.common.PruneConfig,
# plus the loader's batch_size; a test keeps them in step): kind and lower bound. Keys of one
# method's own config are checked by that config when its trial starts.
PRUNE_COMMON: dict[str, tuple[str, float]] = {
    "steps": ("int", 1), "batch_size": ("int", 1), "frequency": ("int", 1),
    "report_every": ("int", 1), "lr": ("positive", 0), "momentum": ("float", 0),
    "weight_decay": ("float", 0), "finetune_fraction": ("float", 0),
}


class StudyError(BadInput):
    """A study file or override is invalid; the message names the key and the valid values."""


@dataclass(frozen=True)
class DatasetSpec:
    """A downstream task as the study uses it (paper Table 2)."""

    name: str
    classes: int
    metric: str
    group: str
    full_lr: float = 0.001
    train_images: int = 0
    test_images: int = 0


@dataclass(frozen=True)
class MethodSpec:
    """A pruning method and the sparsities for which a backbone exists.

    ``sparsities`` hold for every architecture unless ``arch_sparsities`` names the arch
    (``sparsities: {default: [80, 90], mobilenet_v1: [75, 89]}`` in YAML: the paper pruned
    MobileNetV1 to other levels than ResNet50). ``checkpoints`` maps a sparsity to a file
    (``arch_checkpoints`` per arch); when absent the path comes from the study's
    ``checkpoint_pattern``.

    LTH-T (the lottery family) has three sources, per sparsity, first that applies:
    ``tickets`` (a ticket file of Chen et al., CVPR 2021, per sparsity, as the reference code
    used them: the file as it is; a ticket of masks alone puts its mask on the dense weights),
    then ``mask_from`` (another method's checkpoint's mask at the same sparsity on the dense
    weights), else the method's own checkpoint files. ``lth_source`` says which, and the
    results table, MLflow and the report carry it.
    """

    name: str
    label: str
    family: str
    sparsities: tuple[int, ...]
    checkpoints: tuple[tuple[int, str], ...] = ()
    mask_from: str | None = None
    interpolation: str = "bilinear"
    transfer: bool = True  # False: kept only as LTH-T's mask source, not transferred
    arch_sparsities: tuple[tuple[str, tuple[int, ...]], ...] = ()
    arch_checkpoints: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = ()
    # sparsity -> ticket file, and/or a pattern ("{arch}/lth_t_{sparsity}.pth", relative to
    # checkpoint_dir) for every sparsity
    tickets: tuple[tuple[int, str], ...] = ()
    ticket_pattern: str | None = None

    def checkpoint_for(self, sparsity: int, arch: str | None = None) -> str | None:
        per_arch = dict(self.arch_checkpoints).get(arch) if arch else None
        if per_arch and sparsity in dict(per_arch):
            return dict(per_arch)[sparsity]
        return dict(self.checkpoints).get(sparsity)

    def sparsities_for(self, arch: str) -> tuple[int, ...]:
        """The sparsities this method has a backbone at for ``arch``."""
        return dict(self.arch_sparsities).get(arch, self.sparsities)

    def all_sparsities(self) -> tuple[int, ...]:
        """Every sparsity of any architecture, sorted."""
        return tuple(sorted({*self.sparsities,
                             *(s for _, sps in self.arch_sparsities for s in sps)}))

    def ticket_for(self, sparsity: int) -> str | None:
        """The ticket file of ``sparsity`` as given (a path or the pattern), or None."""
        given = dict(self.tickets).get(sparsity)
        return given if given is not None else self.ticket_pattern

    def lth_source(self, sparsity: int, mask_on_dense: bool | None = None) -> str:
        """Where an LTH-T backbone's weights come from, empty for other families: ``ticket
        weights`` (the ticket as it is), ``ticket mask on dense weights`` (a ticket of masks
        alone: its content decides, read by the grid, and ``mask_on_dense`` is whether the
        trial's spec names a mask checkpoint), ``ticket file`` (not known: the dry run),
        ``mask from <m>`` or ``checkpoint file`` (the method's own files)."""
        if self.family != "lottery":
            return ""
        if self.ticket_for(sparsity) is not None:
            return {None: "ticket file", True: "ticket mask on dense weights",
                    False: "ticket weights"}[mask_on_dense]
        return f"mask from {self.mask_from}" if self.mask_from else "checkpoint file"


@dataclass(frozen=True)
class ModeSpec:
    """A finetuning mode: its seeds, its recipe and what each trial asks of the cluster."""

    name: str
    seeds: tuple[int, ...]
    recipe: Recipe
    cpus: float = 1.0
    gpus: float = 0.0
    workers: int = 1  # Ray Train workers per full-finetuning trial
    use_gpu: str = "auto"  # "auto" | "yes" | "no"
    # "ray_train": always a TorchTrainer; "auto": a TorchTrainer when there is something to
    # distribute (several workers or GPUs), else the Tune trial's own process, because a
    # TorchTrainer's start-up (new processes importing torch) dwarfs a tiny trial.
    trainer: str = "ray_train"
    # How long a full-finetuning trial's Ray Train worker group may wait for its resources
    # (all workers at once) before the trial fails with that reason; Ray Train's own default
    # retries the start every 60 s without end. Long enough for an autoscaler to add a node.
    start_timeout_s: float = 900.0
    # Full finetuning's RandomResizedCrop area range (the paper's by default); a study of
    # small images zooms less so the object stays in the crop.
    crop_scale: tuple[float, float] = PAPER_CROP_SCALE
    # A study file's defaults are the reference code's (``mode_from``: ``NORMALIZE_DEFAULT``,
    # best epoch by top-1); these field defaults are what the project did before, which a
    # study that never names them (the tiny study) keeps.
    normalize: str = "imagenet"
    epoch_selection: str = "metric"


@dataclass(frozen=True)
class UpstreamSpec:
    """How the tiny study makes its own zoo (the paper study reads checkpoints instead)."""

    dataset: str = "shapes64"
    num_classes: int = 64
    images_per_class: int = 300
    val_images_per_class: int = 50
    seed: int = 0
    pretrain: Recipe = field(default_factory=lambda: Recipe(epochs=3, lr=0.1, milestones=()))
    prune: tuple[tuple[str, Any], ...] = ()  # passed to the pruning methods' PruneConfig
    prune_overrides: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()  # per method


@dataclass(frozen=True)
class SpeedSettings:
    """DeepSparse speed trials: every study backbone, plus random-weight reference archs."""

    enabled: bool = True
    backbones: bool = True  # one trial per backbone of the study (its real weights)
    random_arch: str | None = None  # e.g. "resnet50": random weights pruned to each sparsity
    random_sparsities: tuple[int, ...] = ()
    # where random weights' zeros go: "uniform" per layer (stem dense) or "global" magnitude
    random_profile: str = "uniform"
    batch_sizes: tuple[int, ...] = (1, 64)
    warmup: int = 2
    reps: int = 5
    online_dataset: str | None = None
    # Figure 4's datasets: one speed trial per backbone and dataset (the paper: pets, flowers,
    # dtd, caltech101); empty: ``online_dataset`` alone.
    online_datasets: tuple[str, ...] = ()
    # Online linear finetuning (Figure 4) on a backbone's dataset: epochs trained with the
    # linear mode's recipe (the paper: its 150), each timed, then the test accuracy.
    online_epochs: int = 1
    # batches trained and timed per online epoch, the epoch's time extrapolated from them (the
    # reference's steps_per_epoch); None: whole epochs
    online_batches: int | None = 4
    # the random-weight reference's online epoch (synthetic images: no test split, so one
    # epoch, timing only): batches timed, extrapolated; None: the whole synthetic epoch
    random_online_batches: int | None = 4
    # DataLoader worker processes of every online run, as the reference's --workers=4; they
    # share the speed actor's cores with DeepSparse, which keeps all of them (as the reference)
    loader_workers: int = 4


@dataclass(frozen=True)
class EstimateSettings:
    """Throughputs behind the dry run's compute estimate (images per second on one GPU)."""

    train_images_per_gpu_s: float = 1200.0
    inference_images_per_gpu_s: float = 3000.0


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    arch: str
    archs: tuple[str, ...]
    image_size: int
    methods: tuple[MethodSpec, ...]
    datasets: tuple[DatasetSpec, ...]
    modes: tuple[ModeSpec, ...]
    data_root: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_pattern: str = "{arch}/{method}_{sparsity}.pth"
    upstream: UpstreamSpec | None = None
    speed: SpeedSettings = field(default_factory=SpeedSettings)
    estimate: EstimateSettings = field(default_factory=EstimateSettings)
    extra_archs: tuple[str, ...] = ()

    def method_facts(self, method: str, sparsity: int,
                     mask_on_dense: bool | None = None) -> dict[str, str]:
        """What the results table and MLflow say of a trial's method beyond its key: ``family``
        and, for LTH-T, ``lth_source``; empty for no method of the study (speed rows)."""
        m = next((m for m in self.methods if m.name == method), None)
        if m is None:
            return {}
        source = m.lth_source(sparsity, mask_on_dense)
        return {"family": m.family, **({"lth_source": source} if source else {})}

    def method(self, name: str) -> MethodSpec:
        for m in self.methods:
            if m.name == name:
                return m
        raise StudyError(f"unknown method {name!r}; valid: {[m.name for m in self.methods]}")

    def dataset(self, name: str) -> DatasetSpec:
        for d in self.datasets:
            if d.name == name:
                return d
        raise StudyError(f"unknown dataset {name!r}; valid: {[d.name for d in self.datasets]}")

    def mode(self, name: str) -> ModeSpec:
        for m in self.modes:
            if m.name == name:
                return m
        raise StudyError(f"unknown mode {name!r}; valid: {[m.name for m in self.modes]}")


# ---------------------------------------------------------------------------------------
# YAML (plain mappings) -> dataclasses, with errors that name the key path.


def _check_keys(where: str, raw: Mapping[str, Any], allowed: set[str], required=()) -> None:
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


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _choice(where: str, value: Any, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise StudyError(f"{where}: {value!r} is not valid; valid values: {', '.join(valid)}")
    return value


def _int(where: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StudyError(f"{where}: expected an integer, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise StudyError(f"{where}: expected an integer >= {lo}, got {value}")
        raise StudyError(f"{where}: {value} is out of range [{lo}, {hi}]")
    return value


def _float(where: str, value: Any, positive: bool = False, lo: float | None = None,
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


def _bool(where: str, value: Any) -> bool:
    """true or false: ``bool("no")`` is True, so a string is refused rather than converted."""
    if not isinstance(value, bool):
        raise StudyError(f"{where}: expected true or false, got {value!r}")
    return value


def _list(where: str, value: Any, what: str) -> list[Any]:
    """A YAML list; a bare string is refused rather than split into its letters."""
    if not isinstance(value, (list, tuple)):
        raise StudyError(f"{where}: expected a list of {what}, e.g. [{value}], got {value!r}"
                         if isinstance(value, str) else
                         f"{where}: expected a list of {what}, got {value!r}")
    return list(value)


def _unique(where: str, values: tuple[Any, ...], given: Any = None) -> tuple[Any, ...]:
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


def _arch(where: str, value: Any, known: tuple[str, ...] | None) -> str:
    if not isinstance(value, str) or (known is not None and value not in known):
        raise StudyError(f"{where}: unknown architecture {value!r}; known architectures: "
                         f"{', '.join(known or ())}")
    return value


def _safe_name(where: str, value: Any, what: str) -> str:
    """A name that becomes a folder or file name inside the output folder."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise StudyError(
            f"{where}: {value!r} cannot be {what}: it becomes a folder name, so it must be 1-100 "
            "ASCII letters, digits, '_', '-' or '.' (not first, no '..')")
    return value


def _dataset_name(value: Any, known: tuple[str, ...] | None, where: str = "") -> str:
    """A registered dataset or ``imagefolder:<path>`` (a folder of the user's own images)."""
    where = where or f"datasets.{value}"
    if isinstance(value, str) and value.startswith(IMAGEFOLDER_PREFIX):
        path = value[len(IMAGEFOLDER_PREFIX):]
        if not path.strip() or path != path.strip() or not path.isprintable():
            raise StudyError(f"{where}: expected 'imagefolder:<path>' with a path of printable "
                             f"characters and no surrounding spaces, got {value!r}")
        return value
    _safe_name(where, value, "a dataset name")
    if known is not None and value not in known:
        raise StudyError(f"{where}: unknown dataset {value!r}; known datasets: "
                         f"{', '.join(known)}, or imagefolder:<path> for a folder of images")
    return value


def _label(where: str, value: Any) -> str:
    """What tables and figures show for a method: text (a number is taken as text)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
            isinstance(value, float) and not math.isfinite(value)) or not str(value).strip():
        raise StudyError(f"{where}: expected the text tables and figures show, got {value!r}")
    return str(value)


def _optional_name(where: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise StudyError(f"{where}: expected a method name, got {value!r}")
    return value


def _optional_str(where: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise StudyError(f"{where}: expected one path (a string), got {value!r}")
    return value


def sparsity_percent(where: str, value: Any) -> int:
    """Sparsity as an int percent; fractions like 0.9 are accepted and converted."""
    if isinstance(value, float) and 0 < value < 1:
        value = round(value * 100)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _int(where, value, *SPARSITY_RANGE)


def recipe_from(where: str, raw: Mapping[str, Any], base: Recipe | None = None) -> Recipe:
    _check_keys(where, raw, _fields(Recipe))
    values = dataclasses.asdict(base) if base else {}
    for k, v in raw.items():
        if k == "milestones":
            if not isinstance(v, (list, tuple)):
                raise StudyError(f"{where}.milestones: expected a list of epochs, got {v!r}")
            v = tuple(_int(f"{where}.milestones", e, 0) for e in v)
        elif k in ("epochs", "batch_size"):
            v = _int(f"{where}.{k}", v, 1)
        elif k in ("lr", "gamma"):
            v = _float(f"{where}.{k}", v, positive=True)
        elif k == "momentum":
            v = _float(f"{where}.{k}", v, lo=0, below=1)
        else:
            v = _float(f"{where}.{k}", v, lo=0)
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
    where = f"datasets.{name}"
    _check_keys(where, raw, _fields(DatasetSpec) - {"name"}, required=("classes", "metric", "group"))
    return DatasetSpec(
        name=name,
        classes=_int(f"{where}.classes", raw["classes"], 2),
        metric=_choice(f"{where}.metric", raw["metric"], METRICS),
        group=_choice(f"{where}.group", raw["group"], GROUPS),
        full_lr=_float(f"{where}.full_lr", raw.get("full_lr", 0.001), positive=True),
        train_images=_int(f"{where}.train_images", raw.get("train_images", 0), 0),
        test_images=_int(f"{where}.test_images", raw.get("test_images", 0), 0),
    )


def _sparsity_list(where: str, sps: Any, allow_empty: bool = False) -> tuple[int, ...]:
    if not isinstance(sps, (list, tuple)) or (not sps and not allow_empty):
        raise StudyError(f"{where}: expected a non-empty list of percents, got {sps!r}")
    return _unique(where, tuple(sparsity_percent(where, s) for s in sps), sps)


def _sparsities(where: str, raw: Any) -> tuple[tuple[int, ...], tuple[tuple[str, tuple[int, ...]], ...]]:
    """``[80, 90]`` for every arch, or ``{default: [80, 90], mobilenet_v1: [75, 89]}``: per
    arch, ``default`` (or nothing: ``[]``) for the archs not named."""
    if not isinstance(raw, Mapping):
        return _sparsity_list(where, raw), ()
    default = _sparsity_list(f"{where}.default", raw.get("default", []), allow_empty=True)
    per_arch = tuple(sorted(
        (_arch(f"{where}", a, KNOWN_ARCHS), _sparsity_list(f"{where}.{a}", v, allow_empty=True))
        for a, v in raw.items() if a != "default"))
    if not default and not any(sps for _, sps in per_arch):
        raise StudyError(f"{where}: expected at least one sparsity for some architecture, "
                         f"got {dict(raw)!r}")
    return default, per_arch


def _path_map(where: str, raw: Any) -> tuple[tuple[int, str], ...]:
    if not isinstance(raw, Mapping):
        raise StudyError(f"{where}: expected a mapping sparsity -> path, got {raw!r}")
    out = []
    for k, v in raw.items():
        if not isinstance(v, str) or not v.strip():
            raise StudyError(f"{where}.{k}: expected a file path, got {v!r}")
        out.append((sparsity_percent(where, k), v))
    return tuple(sorted(out))


def _checkpoints(where: str, raw: Any) -> tuple[tuple[tuple[int, str], ...],
                                                tuple[tuple[str, tuple[tuple[int, str], ...]], ...]]:
    """``{90: path}`` for every arch, and/or ``{mobilenet_v1: {75: path}}`` per arch."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise StudyError(f"{where}: expected a mapping sparsity -> path")
    plain = {k: v for k, v in raw.items() if not (isinstance(k, str) and k in KNOWN_ARCHS)}
    per_arch = tuple(sorted((a, _path_map(f"{where}.{a}", v)) for a, v in raw.items()
                            if isinstance(a, str) and a in KNOWN_ARCHS))
    return _path_map(where, plain), per_arch


def _family(where: str, value: Any) -> str:
    if not isinstance(value, str) or not FAMILY_NAME.fullmatch(value):
        raise StudyError(f"{where}: {value!r} is not a family name; the paper's are "
                         f"{', '.join(FAMILIES)}, and a study may name its own (lower-case "
                         "letters, digits and '_', e.g. structured)")
    return value


def method_from(name: str, raw: Mapping[str, Any]) -> MethodSpec:
    where = f"methods.{name}"
    _check_keys(where, raw, _fields(MethodSpec) - {"name", "arch_sparsities", "arch_checkpoints",
                                                   "ticket_pattern"},
                required=("sparsities",))
    sparsities, arch_sparsities = _sparsities(f"{where}.sparsities", raw["sparsities"])
    family = _family(f"{where}.family", raw.get("family", "progressive"))
    every = {*sparsities, *(s for _, sps in arch_sparsities for s in sps)}
    if family == "dense" and every != {0}:
        raise StudyError(f"{where}.sparsities: the dense baseline has sparsity [0], got "
                         f"{raw['sparsities']!r}")
    if family != "dense" and 0 in every:
        raise StudyError(f"{where}.sparsities: sparsity 0 is the dense baseline's; use 1-99")
    checkpoints, arch_checkpoints = _checkpoints(f"{where}.checkpoints", raw.get("checkpoints"))
    tickets_raw = raw.get("tickets")
    tickets: tuple[tuple[int, str], ...] = ()
    ticket_pattern = None
    if tickets_raw is not None:
        if family != "lottery":
            raise StudyError(f"{where}.tickets: only a lottery-family method (LTH-T) has ticket "
                             f"files; this one is {family!r}")
        if isinstance(tickets_raw, str):
            if "{sparsity}" not in tickets_raw:
                raise StudyError(f"{where}.tickets: a pattern needs '{{sparsity}}' (one ticket "
                                 f"file per sparsity), got {tickets_raw!r}")
            ticket_pattern = tickets_raw
        else:
            tickets = _path_map(f"{where}.tickets", tickets_raw)
    return MethodSpec(
        name=name,
        label=_label(f"{where}.label", raw.get("label", name)),
        family=family,
        sparsities=sparsities,
        checkpoints=checkpoints,
        mask_from=_optional_name(f"{where}.mask_from", raw.get("mask_from")),
        interpolation=_choice(
            f"{where}.interpolation", raw.get("interpolation", "bilinear"), ("bilinear", "bicubic")
        ),
        transfer=_bool(f"{where}.transfer", raw.get("transfer", True)),
        arch_sparsities=arch_sparsities,
        arch_checkpoints=arch_checkpoints,
        tickets=tickets,
        ticket_pattern=ticket_pattern,
    )


def mode_from(name: str, raw: Mapping[str, Any]) -> ModeSpec:
    where = f"modes.{name}"
    _choice("modes", name, MODES)
    _check_keys(where, raw, _fields(ModeSpec) - {"name"}, required=("seeds", "recipe"))
    seeds = raw["seeds"]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise StudyError(f"{where}.seeds: seed count must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise StudyError(f"{where}.seeds: expected a non-empty list of seeds, got {seeds!r}")
    seeds = tuple(_int(f"{where}.seeds", s, 0) for s in seeds)
    if len(set(seeds)) != len(seeds):
        raise StudyError(f"{where}.seeds: seeds repeat: {list(seeds)}")
    return ModeSpec(
        name=name,
        seeds=seeds,
        recipe=recipe_from(f"{where}.recipe", raw["recipe"]),
        cpus=_float(f"{where}.cpus", raw.get("cpus", 1.0), positive=True),
        gpus=_float(f"{where}.gpus", raw.get("gpus", 0.0), lo=0),
        workers=_int(f"{where}.workers", raw.get("workers", 1), 1),
        use_gpu=_choice(f"{where}.use_gpu", raw.get("use_gpu", "auto"), ("auto", "yes", "no")),
        trainer=_choice(f"{where}.trainer", raw.get("trainer", "ray_train"), ("ray_train", "auto")),
        start_timeout_s=_float(f"{where}.start_timeout_s", raw.get("start_timeout_s", 900.0),
                               positive=True),
        crop_scale=_crop_scale(f"{where}.crop_scale", raw.get("crop_scale", PAPER_CROP_SCALE)),
        normalize=_choice(f"{where}.normalize", raw.get("normalize", NORMALIZE_DEFAULT[name]),
                          NORMALIZATIONS),
        epoch_selection=_choice(f"{where}.epoch_selection", raw.get("epoch_selection", "top1"),
                                EPOCH_SELECTIONS),
    )


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
            _int(f"{where}.{k}", v, int(lo))
        elif kind:
            _float(f"{where}.{k}", v, positive=kind == "positive", lo=lo,
                   below=1 if k in ("momentum", "finetune_fraction") else None)
        elif isinstance(v, float):
            _float(f"{where}.{k}", v)
    return items


def config_values(where: str, cls: type, values: Mapping[str, Any], owner: str,
                  extra: frozenset[str] = frozenset(), hint: str = "") -> dict[str, Any]:
    """Study values for the config dataclass ``cls`` (a pruning method's ``PruneConfig``):
    unknown keys refused with the valid ones, each value checked against its field's type.
    A dataclass checks no types: ``cycles: lots`` failed only inside the trial, and
    ``from_scratch: no`` was true. ``extra``: keys the caller uses itself (the loader's
    ``batch_size``), left out of the result. ``where`` names the settings and ``owner``
    whose they are in messages (``upstream.prune``, ``method 'gmp'``); ``hint`` follows an
    unknown key's message."""
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
        return _bool(where, value)
    if hint is int:
        return _int(where, value)
    if hint is float:
        return _float(where, value)
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


def upstream_from(raw: Mapping[str, Any]) -> UpstreamSpec:
    where = "upstream"
    _check_keys(where, raw, _fields(UpstreamSpec))
    base = UpstreamSpec()
    overrides = raw.get("prune_overrides", {}) or {}
    return UpstreamSpec(
        dataset=_safe_name(f"{where}.dataset", raw.get("dataset", base.dataset),
                           "an upstream dataset name"),
        num_classes=_int(f"{where}.num_classes", raw.get("num_classes", base.num_classes), 2),
        images_per_class=_int(
            f"{where}.images_per_class", raw.get("images_per_class", base.images_per_class), 1
        ),
        val_images_per_class=_int(
            f"{where}.val_images_per_class",
            raw.get("val_images_per_class", base.val_images_per_class),
            1,
        ),
        seed=_int(f"{where}.seed", raw.get("seed", base.seed), 0),
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
    where = "speed"
    _check_keys(where, raw, _fields(SpeedSettings))
    values: dict[str, Any] = {}
    for k, v in raw.items():
        if k in ("random_sparsities",):
            v = _unique(f"{where}.{k}", tuple(sparsity_percent(f"{where}.{k}", s)
                                              for s in _list(f"{where}.{k}", v, "percents")))
        elif k == "batch_sizes":
            v = _unique(f"{where}.{k}", tuple(_int(f"{where}.{k}", b, 1)
                                              for b in _list(f"{where}.{k}", v, "batch sizes")))
        elif k == "random_arch":
            v = None if v is None else _arch(f"{where}.{k}", v, KNOWN_ARCHS)
        elif k == "online_dataset":
            v = None if v is None else _dataset_name(v, None, where=f"{where}.{k}")
        elif k == "online_datasets":
            v = _unique(f"{where}.{k}", tuple(
                _dataset_name(x, None, where=f"{where}.{k}")
                for x in _list(f"{where}.{k}", v or [], "dataset names")))
        elif k in ("online_batches", "random_online_batches") and v is None:
            pass  # the whole epoch
        elif k in ("warmup", "reps", "online_batches", "random_online_batches", "online_epochs",
                   "loader_workers"):
            v = _int(f"{where}.{k}", v, 0 if k in ("warmup", "loader_workers") else 1)
        elif k == "random_profile":
            v = _choice(f"{where}.{k}", v, RANDOM_PROFILES)
        elif k in ("enabled", "backbones"):
            if not isinstance(v, bool):
                raise StudyError(f"{where}.{k}: expected true or false, got {v!r}")
        values[k] = v
    return SpeedSettings(**values)


STUDY_KEYS = _fields(Study)


def study_from_dict(
    raw: Mapping[str, Any],
    known_methods: tuple[str, ...] | None = KNOWN_METHODS,
    known_archs: tuple[str, ...] | None = KNOWN_ARCHS,
    known_datasets: tuple[str, ...] | None = KNOWN_DATASETS,
) -> Study:
    """Validate a parsed YAML mapping into a ``Study``.

    Args:
        raw: the parsed file.
        known_methods: pruning-method names a study may use (others are an error naming the
            valid ones); None skips the check.
        known_archs, known_datasets: the same for architectures and datasets.
    """
    _check_keys(
        "study", raw, STUDY_KEYS, required=("name", "arch", "methods", "datasets", "modes")
    )
    for key in ("methods", "datasets", "modes"):
        if not isinstance(raw[key], Mapping) or not raw[key]:
            raise StudyError(f"{key}: expected a non-empty mapping of name -> settings")
    if known_methods is not None:
        for name, m in raw["methods"].items():
            if name in known_methods:
                continue
            # A method of the study's own: read from its files, so it needs a label and a
            # family (what keeps a typo such as "gmpp" from becoming a method silently).
            own = isinstance(m, Mapping) and "label" in m and "family" in m
            if not own or raw.get("upstream"):
                why = ("the upstream zoo is made by the registered pruning methods"
                       if raw.get("upstream") else
                       "a method of the study's own needs a 'label' and a 'family' "
                       "(its backbones are then its checkpoint files)")
                raise StudyError(
                    f"methods: unknown method {name!r}; valid methods: "
                    f"{', '.join(known_methods)} ({why})"
                )
            _safe_name(f"methods.{name}", name, "a method name")
    methods = tuple(method_from(n, v or {}) for n, v in raw["methods"].items())
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
    if sum(m.family == "dense" for m in methods) != 1:
        raise StudyError("methods: a study needs exactly one method with family 'dense'")
    arch = _arch("arch", raw["arch"], known_archs)
    archs = tuple(_arch("archs", a, known_archs)
                  for a in _list("archs", raw.get("archs", [arch]), "architecture names"))
    extra_archs = tuple(_arch("extra_archs", a, known_archs)
                        for a in _list("extra_archs", raw.get("extra_archs", []) or [],
                                       "architecture names"))
    for key, values in (("archs", archs), ("extra_archs", extra_archs)):
        _unique(key, values)
    for key in ("data_root", "checkpoint_dir"):
        _optional_str(key, raw.get(key))
    if not isinstance(raw.get("checkpoint_pattern", ""), str):
        raise StudyError(f"checkpoint_pattern: expected a string such as "
                         f"{Study.checkpoint_pattern!r}, got {raw['checkpoint_pattern']!r}")
    for name in raw["datasets"]:
        _dataset_name(name, known_datasets)
    return Study(
        # the default output folder is runs/<name>/: the name must stay one folder there
        name=_safe_name("name", raw["name"], "a study name"),
        description=str(raw.get("description", "")),
        arch=arch,
        archs=archs,
        extra_archs=extra_archs,
        image_size=_int("image_size", raw.get("image_size", 224), 8),
        methods=methods,
        datasets=tuple(dataset_from(n, v or {}) for n, v in raw["datasets"].items()),
        modes=tuple(mode_from(n, v or {}) for n, v in raw["modes"].items()),
        data_root=raw.get("data_root"),
        checkpoint_dir=raw.get("checkpoint_dir"),
        checkpoint_pattern=str(raw.get("checkpoint_pattern", Study.checkpoint_pattern)),
        upstream=upstream_from(raw["upstream"]) if raw.get("upstream") else None,
        speed=speed_from(raw.get("speed", {}) or {}),
        estimate=EstimateSettings(**_estimate(raw.get("estimate", {}) or {})),
    )


def _estimate(raw: Mapping[str, Any]) -> dict[str, float]:
    _check_keys("estimate", raw, _fields(EstimateSettings))
    return {k: _float(f"estimate.{k}", v, positive=True) for k, v in raw.items()}


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


def study_to_dict(study: Study) -> dict[str, Any]:
    """The inverse of ``study_from_dict`` (YAML round trip)."""

    def recipe(r: Recipe) -> dict[str, Any]:
        d = dataclasses.asdict(r)
        d["milestones"] = list(r.milestones)
        return d

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
        "methods": {
            m.name: _method_to_dict(m)
            for m in study.methods
        },
        "datasets": {
            d.name: {k: v for k, v in dataclasses.asdict(d).items() if k != "name"}
            for d in study.datasets
        },
        "modes": {
            m.name: {
                "seeds": list(m.seeds),
                "recipe": recipe(m.recipe),
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
            for m in study.modes
        },
        "speed": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(study.speed).items()
        },
        "estimate": dataclasses.asdict(study.estimate),
    }
    if study.upstream is not None:
        u = study.upstream
        out["upstream"] = {
            "dataset": u.dataset,
            "num_classes": u.num_classes,
            "images_per_class": u.images_per_class,
            "val_images_per_class": u.val_images_per_class,
            "seed": u.seed,
            "pretrain": recipe(u.pretrain),
            "prune": {k: list(v) if isinstance(v, tuple) else v for k, v in u.prune},
            "prune_overrides": {
                m: {k: list(v) if isinstance(v, tuple) else v for k, v in items}
                for m, items in u.prune_overrides
            },
        }
    return out
