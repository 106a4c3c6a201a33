"""What a study is: frozen dataclasses for its methods, datasets, modes and settings.

A study is the whole grid of the paper (or a laptop-sized stand-in): which sparse backbones
exist, which downstream datasets, which finetuning modes with which seeds and recipes, and,
for the tiny study, how the upstream zoo is made. ``search_spaces.schema`` builds these from
a study file; nothing here imports torch, so a dry run stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from common import catalog
from common.errors import BadInput
from search_spaces.recipe import PAPER_CROP_SCALE, Recipe


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

    ``sparsities`` hold for every architecture but those ``arch_sparsities`` names (the paper
    pruned MobileNetV1 to other levels); ``checkpoints`` (``arch_checkpoints`` per arch) map
    a sparsity to a file, else the study's ``checkpoint_pattern`` names it. An LTH-T backbone
    comes from, first that applies: its ``tickets`` (Chen et al.'s files, as they are), the
    ``mask_from`` method's mask on the dense weights, or its own files (``lth_source``).
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
        if self.family != catalog.LOTTERY:
            return ""
        if self.ticket_for(sparsity) is not None:
            return {None: "ticket file", True: "ticket mask on dense weights",
                    False: "ticket weights"}[mask_on_dense]
        return f"mask from {self.mask_from}" if self.mask_from else "checkpoint file"


@dataclass(frozen=True)
class ModeSpec:
    """A finetuning mode: its seeds, its recipe and what each trial asks of the cluster.

    ``seeds`` hold for every architecture but those ``arch_seeds`` names (the reference ran
    its MobileNet's full finetuning with one seed).
    """

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
    arch_seeds: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def seeds_for(self, arch: str) -> tuple[int, ...]:
        """The seeds of ``arch``'s trials in this mode."""
        return dict(self.arch_seeds).get(arch, self.seeds)

    def first_seeds(self, n: int) -> "ModeSpec":
        """The mode with the first ``n`` seeds of every architecture."""
        return replace(self, seeds=self.seeds[:n],
                       arch_seeds=tuple((a, s[:n]) for a, s in self.arch_seeds))


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


#: How a study's training loops augment their images: torchvision's transforms image by
#: image (the paper's), or a whole batch at once (``trainables.datasets.batched``).
AUGMENTS = ("image", "batch")


@dataclass(frozen=True)
class TrainingSpec:
    """How the study's training loops feed their model: the same recipe, faster on a CPU.

    ``channels_last``: NHWC batches and weights in pretraining and full finetuning (oneDNN's
    faster convolutions on a CPU, tensor cores on a GPU). ``augment``: ``batch`` augments
    pretraining's, pruning's and full finetuning's batches at once where the split is in
    memory at one size. Both change results in their last digits, not what they measure;
    a trial's params carry them where they differ from the default, so its id says which.
    """

    channels_last: bool = False
    augment: str = "image"

    def params(self) -> tuple[tuple[str, object], ...]:
        """The settings that differ from the default, as trial params."""
        out: tuple[tuple[str, object], ...] = ()
        if self.channels_last:
            out += (("channels_last", True),)
        if self.augment != "image":
            out += (("augment", self.augment),)
        return out

    @classmethod
    def from_params(cls, params: tuple[tuple[str, object], ...]) -> "TrainingSpec":
        """The settings a trial's params carry (``params``' inverse; the rest defaults)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params if k in names})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Study:
    """A whole study: its architectures, methods, datasets and modes, and how to run them."""

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
    training: TrainingSpec = field(default_factory=TrainingSpec)

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
