"""One speed trial, step by step as the protocol reads: build, export, compile, check, time.

``speed_trial`` runs the steps in order on one machine and returns one results row; each step
is a plain function, so the protocol reads as the list of steps it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from common import columns as C
from search_spaces.recipe import PAPER_CROP_SCALE, Recipe
from search_spaces.schema import SpeedSettings
from trainables import models
from trainables.datasets.transforms import eval_resize_size
from trainables.speed.environment import environment, physical_cores
from trainables.speed.export import export_backbone_onnx, onnx_sparsity
from trainables.speed.online import (
    ONLINE_NUM_CLASSES,
    OnlineRun,
    OnlineSetup,
    SyntheticImages,
    online_linear_run,
)
from trainables.speed.profiles import PRUNE_PROFILES, macs_share, prune_random
from trainables.speed.runtimes import (
    check_outputs_match,
    compile_deepsparse,
    onnxruntime_features,
    onnxruntime_session,
    torch_threads,
)
from trainables.speed.timing import TimingStats, check_reps, inference_speed

# What a study sets (its YAML's ``speed:`` block) defaults here too, so each default lives in
# one place: ``SpeedSettings``. The trial times batch 1 and the largest of ``batch_sizes``.
_STUDY = SpeedSettings()


@dataclass(frozen=True)
class SpeedSpec:
    """One speed trial: a backbone at one sparsity, timed against its dense references.

    Attributes:
        arch: registered architecture.
        method: label of the sparse model's method (``"random_uniform"`` for random weights).
        sparsity: target sparsity in percent (int, 0-99); with random weights the backbone is
            pruned to it by magnitude (``profile``); with ``load_model`` it is a label.
        profile: where random weights' zeros go, one of ``PRUNE_PROFILES`` (``prune_random``);
            ignored for trained weights, which keep their own. Default: the study's
            ``speed.random_profile``.
        checkpoint: a sparse checkpoint file (any ``trainables.checkpoints`` format) of
            ``arch``; its weights are timed as they are (``weights="trained"``).
        load_model: builds the trained sparse model (classifier included or not), instead of
            ``checkpoint``. Must pickle (cloudpickle) to travel to a Ray actor. With neither,
            random weights are pruned to ``sparsity`` (``weights="random"``).
        dense_model: builds the dense reference model (the study's dense backbone); ``None`` =
            fresh random weights of ``arch`` (dense kernels do not depend on values), and then
            the dense online run has no accuracy: random weights are no baseline.
        image_size: input side; ``None`` = the architecture's input size.
        batch: batch size of the batched timings (the ``*_b64`` columns; ``batch`` says which).
            Default: the largest of the study's ``speed.batch_sizes``.
        warmup, reps: untimed and timed repetitions per runtime, interleaved. Default: the
            study's ``speed.warmup`` and ``speed.reps``.
        num_cores: cores for every runtime; ``None`` = all physical cores of the process's
            machine (the speed pool passes the CPUs its actor holds).
        online_dataset: builds the training split of the online runs, yielding raw
            ``(PIL image, label)``; ``None`` = ``online_images`` synthetic images.
        online_test: builds its test split (raw images); ``None``: no test split, so the
            online accuracy columns stay empty (synthetic images never have one).
        online_dataset_name: the ``dataset`` column of the row.
        online_classes, online_metric: the online dataset's class count and metric.
        online_images: size of the synthetic online dataset (defines the epoch).
        online_recipe: the online runs' linear finetuning recipe (epochs, SGD, step decay);
            its ``batch_size`` is replaced by ``batch``. ``None``: the paper's recipe for the
            study's default ``speed.online_epochs``.
        online_epoch_selection: which epoch's accuracy is reported (``engine.EPOCH_SELECTIONS``).
        online_batches: batches trained and timed per online epoch (``None``: the whole
            epoch); the epoch time is extrapolated from their median when fewer than the
            epoch. Default: the study's ``speed.online_batches``.
        online_warmup: untimed batches through the backbone before the first online epoch.
        online_baselines: also time one online epoch with the dense backbone in ONNX Runtime
            and in PyTorch (timing only: their classifier would be DeepSparse dense's).
        loader_workers: DataLoader worker processes of every online run (the same for dense
            and sparse); they share the trial's cores with the backbone, as in the reference.
            Default: the study's ``speed.loader_workers``.
        interpolation, online_crop_scale, online_hflip: the online augmentation
            (``transforms.train_transform``): the study's full finetuning's for its datasets.
        check_atol: tolerance of the DeepSparse vs PyTorch output check (relative to scale).
        seed: seeds random weights, inputs and the online epoch.
        work_dir: where the ONNX files go; ``None`` = a temporary folder removed afterwards.
        trial_id: copied into the result row.
    """

    arch: str
    method: str
    sparsity: int
    profile: str = _STUDY.random_profile
    checkpoint: str | None = None
    load_model: Callable[[], nn.Module] | None = None
    dense_model: Callable[[], nn.Module] | None = None
    image_size: int | None = None
    batch: int = max(_STUDY.batch_sizes)
    warmup: int = _STUDY.warmup
    reps: int = _STUDY.reps
    num_cores: int | None = None
    online_dataset: Callable[[], Dataset] | None = None
    online_test: Callable[[], Dataset] | None = None
    online_dataset_name: str = "synthetic"
    online_classes: int = ONLINE_NUM_CLASSES
    online_metric: str = "top1"
    online_images: int = 64 * 20
    online_recipe: Recipe | None = None
    online_epoch_selection: str = "metric"
    online_batches: int | None = _STUDY.online_batches
    online_warmup: int = 1
    online_baselines: bool = True
    loader_workers: int = _STUDY.loader_workers
    interpolation: str = "bilinear"
    online_crop_scale: tuple[float, float] = PAPER_CROP_SCALE
    online_hflip: bool = True
    check_atol: float = 1e-3
    seed: int = 0
    work_dir: str | None = None
    trial_id: str | None = None

    def __post_init__(self) -> None:
        if self.arch not in models.ARCHITECTURES:
            raise ValueError(
                f"SpeedSpec.arch {self.arch!r} unknown; known: {models.ARCHITECTURES.names()}"
            )
        if not isinstance(self.sparsity, int) or not 0 <= self.sparsity < 100:
            raise ValueError(
                f"SpeedSpec.sparsity must be an int percent in 0..99, got {self.sparsity!r}"
            )
        if self.batch < 1 or self.online_images < 1:
            raise ValueError(
                f"SpeedSpec.batch and online_images must be >= 1, got {self.batch}, "
                f"{self.online_images}"
            )
        if self.loader_workers < 0 or self.online_classes < 1:
            raise ValueError(
                f"SpeedSpec.loader_workers must be >= 0 and online_classes >= 1, got "
                f"{self.loader_workers}, {self.online_classes}"
            )
        if self.num_cores is not None and self.num_cores < 1:
            raise ValueError(f"SpeedSpec.num_cores must be >= 1 or None, got {self.num_cores}")
        if self.checkpoint is not None and self.load_model is not None:
            raise ValueError("SpeedSpec: give checkpoint or load_model, not both")
        if self.profile not in PRUNE_PROFILES:
            raise ValueError(
                f"SpeedSpec.profile must be one of {PRUNE_PROFILES}, got {self.profile!r}"
            )
        check_reps(self.warmup, self.reps)

    @property
    def weights(self) -> str:
        return "random" if self.load_model is None and self.checkpoint is None else "trained"

    @property
    def sparsity_profile(self) -> str:
        """``profile`` for random weights; ``"trained"`` when the weights bring their own."""
        return self.profile if self.weights == "random" else "trained"

    def label(self) -> str:
        weights = "trained" if self.weights == "trained" else f"random-{self.profile}"
        return f"{self.arch}/{self.method}/{self.sparsity}/{weights}"

    def row(self, status: str) -> dict[str, Any]:
        """The results-row columns every speed trial has, finished or not."""
        return {
            C.TRIAL_ID: self.trial_id,
            C.MODE: "speed",
            C.STATUS: status,
            C.ARCH: self.arch,
            C.METHOD: self.method,
            C.SPARSITY: self.sparsity,
            C.DATASET: self.online_dataset_name,
            C.SEED: self.seed,
            C.ACCURACY: float("nan"),
            C.WEIGHTS: self.weights,
            C.SPARSITY_PROFILE: self.sparsity_profile,
            C.BATCH: self.batch,
        }


# Steps of the protocol, in the order speed_trial runs them.


def build_backbones(spec: SpeedSpec) -> tuple[nn.Module, nn.Module]:
    """The dense reference and the sparse backbone of the trial, both in eval mode.

    The dense one is ``spec.dense_model`` or fresh random weights under ``spec.seed``; the
    sparse one comes from ``load_model`` or ``checkpoint`` (trained weights), else it is the
    dense one pruned to ``spec.sparsity`` with ``spec.profile`` (random weights).

    Returns:
        ``(dense, sparse)`` feature backbones (classifier = identity).
    """
    dense_full = spec.dense_model() if spec.dense_model else _random_model(spec.arch, spec.seed)
    dense = _as_backbone(dense_full, spec.arch)
    if spec.load_model is not None:
        sparse = _as_backbone(spec.load_model(), spec.arch)
    elif spec.checkpoint is not None:
        sparse = _as_backbone(_load_checkpoint_model(spec.checkpoint, spec.arch), spec.arch)
    else:
        sparse = prune_random(dense, spec.sparsity / 100, seed=spec.seed, profile=spec.profile)
    return dense, sparse


def _random_model(arch: str, seed: int) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return models.build_model(arch, 1000)


def _as_backbone(model: nn.Module, arch: str) -> nn.Module:
    """The feature backbone whether or not ``model`` still has its classifier."""
    if isinstance(getattr(model, models.classifier_name(arch), None), nn.Identity):
        return model.eval()
    return models.backbone(model, arch).eval()


def _load_checkpoint_model(path: str, arch: str) -> nn.Module:
    # Imported here: the checkpoint module is only needed for trained weights.
    from trainables.checkpoints import build_backbone_model, load_checkpoint

    ckpt = load_checkpoint(path, arch=arch)
    return build_backbone_model(ckpt, num_classes=ckpt.num_classes or 1000)


def export_backbones(
    spec: SpeedSpec, dense: nn.Module, sparse: nn.Module, work: Path, image_size: int
) -> tuple[Path, Path]:
    """Both backbones as ONNX files in ``work`` (one dynamic-batch file each).

    Returns:
        ``(sparse_onnx, dense_onnx)``; the dense file is named by architecture alone, so trials
        sharing a ``work_dir`` overwrite the same dense reference.
    """
    tag = f"{spec.arch}-{spec.method}-{spec.sparsity}-{spec.weights}-{spec.seed}"
    sparse_onnx = export_backbone_onnx(sparse, spec.arch, work / f"{tag}.onnx", image_size)
    dense_onnx = export_backbone_onnx(
        dense, spec.arch, work / f"{spec.arch}-dense.onnx", image_size
    )
    return sparse_onnx, dense_onnx


@dataclass(frozen=True)
class Engines:
    """A trial's DeepSparse engines: sparse by batch size (1 and ``spec.batch``), dense at
    ``spec.batch`` (one dense batch is enough: batch 1 is a sparse-only column).
    """

    sparse: dict[int, Any]
    dense: Any


def compile_engines(
    spec: SpeedSpec, sparse_onnx: Path, dense_onnx: Path, num_cores: int
) -> Engines:
    """Compile the sparse file at batch 1 and ``spec.batch``, the dense one at ``spec.batch``."""
    batches = sorted({1, spec.batch})
    sparse = {b: compile_deepsparse(sparse_onnx, b, num_cores) for b in batches}
    return Engines(sparse=sparse, dense=compile_deepsparse(dense_onnx, spec.batch, num_cores))


def check_engines(
    spec: SpeedSpec,
    engines: Engines,
    dense: nn.Module,
    sparse: nn.Module,
    dense_onnx: Path,
    sparse_onnx: Path,
    num_cores: int,
) -> None:
    """Raise unless every engine computes what its PyTorch backbone computes.

    Why before timing: a fast engine that computes something else would be a false speed-up.
    """
    with torch_threads(num_cores):
        for engine in engines.sparse.values():
            check_outputs_match(sparse, sparse_onnx, engine, spec.check_atol, spec.seed)
        check_outputs_match(dense, dense_onnx, engines.dense, spec.check_atol, spec.seed)


def time_inference(
    spec: SpeedSpec,
    engines: Engines,
    ort: Any,
    dense: nn.Module,
    image_size: int,
    num_cores: int,
) -> dict[str, TimingStats]:
    """DeepSparse sparse against DeepSparse, ONNX Runtime and PyTorch dense, interleaved."""
    return inference_speed(
        sparse_engines=engines.sparse,
        dense_engine=engines.dense,
        ort_session=ort,
        dense_model=dense,
        image_size=image_size,
        batch=spec.batch,
        warmup=spec.warmup,
        reps=spec.reps,
        num_cores=num_cores,
        seed=spec.seed,
    )


def online_dataset(spec: SpeedSpec, image_size: int) -> Dataset:
    """The raw images of the online epoch: ``spec.online_dataset`` or synthetic ones.

    Synthetic images are drawn at the eval resize side of ``image_size``, the size a decoded
    dataset's images are cropped from.
    """
    if spec.online_dataset is not None:
        return spec.online_dataset()
    return SyntheticImages(
        spec.online_images, eval_resize_size(image_size), spec.online_classes, spec.seed
    )


def online_setup(spec: SpeedSpec, image_size: int, num_cores: int) -> OnlineSetup:
    """How the trial's online runs train: its recipe at the trial's batch, loader, augmentation."""
    recipe = spec.online_recipe or Recipe(epochs=_STUDY.online_epochs)
    return OnlineSetup(
        recipe=dataclasses.replace(recipe, batch_size=spec.batch), image_size=image_size,
        loader_workers=spec.loader_workers, max_batches=spec.online_batches,
        warmup_batches=spec.online_warmup, num_cores=num_cores, metric=spec.online_metric,
        epoch_selection=spec.online_epoch_selection, interpolation=spec.interpolation,
        crop_scale=spec.online_crop_scale, hflip=spec.online_hflip, seed=spec.seed,
    )


@dataclass(frozen=True)
class OnlineRuns:
    """Online runs of one trial; ``ort`` and ``torch`` are ``None`` without baselines."""

    sparse: OnlineRun
    dense: OnlineRun
    ort: OnlineRun | None
    torch: OnlineRun | None


def time_online_runs(
    spec: SpeedSpec,
    engines: Engines,
    ort: Any,
    dense: nn.Module,
    image_size: int,
    num_cores: int,
) -> OnlineRuns:
    """Online linear finetuning with the sparse and the dense backbone, same data and seed.

    DeepSparse sparse and dense train for the recipe's epochs and are evaluated on the test
    split (the dense run only when its weights are the study's dense backbone); with
    ``spec.online_baselines``, ONNX Runtime and PyTorch dense time one epoch.
    """
    setup = online_setup(spec, image_size, num_cores)
    train = online_dataset(spec, image_size)
    test = spec.online_test() if spec.online_test is not None else None
    classes = spec.online_classes
    sparse = online_linear_run(engines.sparse[spec.batch], train, classes, setup, test)
    baseline_test = test if spec.dense_model is not None else None
    dense_run = online_linear_run(engines.dense, train, classes, setup, baseline_test)
    run_ort = run_torch = None
    if spec.online_baselines:
        once = dataclasses.replace(setup, recipe=dataclasses.replace(setup.recipe, epochs=1))
        run_ort = online_linear_run(onnxruntime_features(ort), train, classes, once)
        run_torch = online_linear_run(dense, train, classes, once)
    return OnlineRuns(sparse=sparse, dense=dense_run, ort=run_ort, torch=run_torch)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def online_columns(runs: OnlineRuns) -> dict[str, Any]:
    """The row's online-run columns: epoch times and speed-ups, the loader's share of each
    DeepSparse run, and both runs' test accuracy with the gap (sparse - dense, points)."""
    sparse, dense, ort, torch_ = runs.sparse, runs.dense, runs.ort, runs.torch
    nan = float("nan")
    return {
        C.ONLINE_EPOCHS: sparse.epochs,
        C.EPOCH_TIME_S: sparse.seconds,
        C.DENSE_EPOCH_TIME_S: dense.seconds,
        C.ORT_DENSE_EPOCH_TIME_S: ort.seconds if ort else nan,
        C.TORCH_DENSE_EPOCH_TIME_S: torch_.seconds if torch_ else nan,
        C.SPEEDUP_EPOCH: _ratio(dense.seconds, sparse.seconds),
        C.SPEEDUP_EPOCH_VS_ORT: _ratio(ort.seconds, sparse.seconds) if ort else nan,
        C.SPEEDUP_EPOCH_VS_TORCH: _ratio(torch_.seconds, sparse.seconds) if torch_ else nan,
        C.EPOCH_BATCHES: sparse.epoch_batches,
        C.EPOCH_TIMED_BATCHES: sparse.timed_batches,
        C.EPOCH_EXTRAPOLATED: sparse.extrapolated,
        C.LOADER_SHARE: sparse.loader_share,
        C.DENSE_LOADER_SHARE: dense.loader_share,
        C.ONLINE_ACCURACY: sparse.accuracy,
        C.DENSE_ONLINE_ACCURACY: dense.accuracy,
        C.ONLINE_ACCURACY_GAP: sparse.accuracy - dense.accuracy,
    }


def result_row(
    spec: SpeedSpec,
    *,
    image_size: int,
    sparsity_measured: float,
    macs: float,
    t: Mapping[str, TimingStats],
    runs: OnlineRuns,
) -> dict[str, Any]:
    """The trial's results row (without environment facts): times, speed-ups, spread, the
    online runs' loader share and accuracy.

    Args:
        sparsity_measured: percent of zeros in the sparse ONNX file (``onnx_sparsity``).
        macs: ``macs_share`` of the sparse backbone.
        t: ``inference_speed``'s timings.
    """
    sparse_b = t[f"deepsparse_b{spec.batch}"]
    row: dict[str, Any] = {
        **spec.row("finished"),
        C.SPARSITY_MEASURED: sparsity_measured,
        C.MACS_SHARE: macs,
        C.IMAGE_SIZE: image_size,
        C.REPS: spec.reps,
        C.LOADER_WORKERS: spec.loader_workers,
        C.DS_MS_B1: t["deepsparse_b1"].median_ms,
        C.DS_MS_B64: sparse_b.median_ms,
        C.DS_DENSE_MS_B64: t["deepsparse_dense"].median_ms,
        C.ORT_DENSE_MS_B64: t["onnxruntime_dense"].median_ms,
        C.TORCH_DENSE_MS_B64: t["torch_dense"].median_ms,
        C.SPEEDUP_INFERENCE: _ratio(t["deepsparse_dense"].median_ms, sparse_b.median_ms),
        C.SPEEDUP_VS_ORT: _ratio(t["onnxruntime_dense"].median_ms, sparse_b.median_ms),
        C.SPEEDUP_VS_TORCH: _ratio(t["torch_dense"].median_ms, sparse_b.median_ms),
        **online_columns(runs),
    }
    for key, col in (
        ("deepsparse_b1", C.DS_MS_B1),
        (f"deepsparse_b{spec.batch}", C.DS_MS_B64),
        ("deepsparse_dense", C.DS_DENSE_MS_B64),
        ("onnxruntime_dense", C.ORT_DENSE_MS_B64),
        ("torch_dense", C.TORCH_DENSE_MS_B64),
    ):
        row[col + C.P10_SUFFIX] = t[key].p10_ms
        row[col + C.P90_SUFFIX] = t[key].p90_ms
    return row


def speed_trial(spec: SpeedSpec) -> dict[str, Any]:
    """Export, compile, check and time one sparse backbone against its dense references.

    Everything is measured in this one call, side by side: DeepSparse sparse at batch 1 and
    ``spec.batch``; DeepSparse, ONNX Runtime and PyTorch dense at ``spec.batch``; online
    linear finetuning with the sparse and dense backbones in DeepSparse, trained for the
    recipe's epochs and evaluated on the test split (and one epoch of the dense one in ONNX
    Runtime and PyTorch). Outputs of each compiled engine are checked against PyTorch first.

    Returns:
        A flat results row: the speed columns of ``common.columns`` plus environment facts
        (``cpu_model``, ``num_cores``, ``deepsparse_isa``, versions, ``hostname``).
    """
    size = spec.image_size or models.input_size(spec.arch)
    cores = min(spec.num_cores or physical_cores(), physical_cores())
    dense, sparse = build_backbones(spec)
    with contextlib.ExitStack() as stack:
        if spec.work_dir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="speed-")))
        else:
            work = Path(spec.work_dir)
        sparse_onnx, dense_onnx = export_backbones(spec, dense, sparse, work, size)
        measured = onnx_sparsity(sparse_onnx)
        share = macs_share(sparse, size)
        engines = compile_engines(spec, sparse_onnx, dense_onnx, cores)
        check_engines(spec, engines, dense, sparse, dense_onnx, sparse_onnx, cores)
        ort = onnxruntime_session(dense_onnx, cores)
        t = time_inference(spec, engines, ort, dense, size, cores)
        runs = time_online_runs(spec, engines, ort, dense, size, cores)
    row = result_row(
        spec, image_size=size, sparsity_measured=measured, macs=share, t=t, runs=runs
    )
    row.update(environment(cores))
    return row
