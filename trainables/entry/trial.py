"""What every trial entry shares: the result contract, the Tune trainable, the backbone and data.

An entry is a plain function ``entry(spec, ctx, report) -> dict`` (one per kind of trial:
``upstream``, ``checkpoint``, ``linear``, ``full``, and the rehearsal's stand-ins); the sweep
hands it to Ray Tune through ``tune_trial``. ``run_trial`` decides what a failure is: bad input
(``common.errors.BadInput``: a bad checkpoint, a missing dataset, a bad config value, a NaN
loss) becomes a result with ``status="failed"``, which Tune does not retry; anything else (out
of memory, a dead worker, a stale NFS handle, a bug) is raised, so Tune retries the trial and
the sweep records what is left as an error.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from common.errors import BadInput
from common.masking import redact
from search_spaces.study import TrainingSpec
from search_spaces.trial import TrialSpec, from_dict
from trainables.entry.context import TrialContext

log = logging.getLogger(__name__)
Report = Callable[[dict[str, Any]], None]
Entry = Callable[[TrialSpec, TrialContext, Report], dict[str, Any]]

# Failures that rerunning cannot fix: recorded once as a failed result, never retried by Tune.
# Only bad input: an OSError, an out-of-memory RuntimeError or a bug (TypeError...) is raised.
DETERMINISTIC = (BadInput,)


def run_trial(entry: Entry, spec: TrialSpec, ctx: TrialContext,
              report: Report) -> dict[str, Any]:
    """Run one trial; returns its final result (``status`` finished, or failed on bad input).

    Everything but ``BadInput`` propagates: Tune retries the trial (``--max-failures``) and
    the sweep records the last attempt's traceback as ``status="error"``, which a rerun tries
    again. A bug (TypeError, AttributeError...) is no result either: it fails loudly.
    """
    if not ctx.rehearsal:  # a rehearsal trial computes nothing and imports no torch
        set_threads(ctx)
    try:
        out = entry(spec, ctx, report)
    except DETERMINISTIC as e:
        log.warning("trial %s failed: %s", spec.trial_id, e)
        return {"status": "failed", "error": _message(e), "final": True}
    history = out.pop("history", [])
    out.setdefault("node_id", _node_id())
    return {**{k: v for k, v in out.items() if v is not None}, "status": "finished",
            "final": True, "history_json": json.dumps(history, default=float)}


def tune_trainable(entry: Entry) -> Callable[[dict[str, Any]], None]:
    """``tune_trial`` bound to ``entry``: a function of ``config`` alone, as Ray Tune takes
    it, named after the entry (Tune's trial logs say which), that pickles by reference."""
    trainable = functools.partial(tune_trial, entry)
    trainable.__name__ = entry.__name__  # type: ignore[attr-defined]
    return trainable


# The most often a trial reports an epoch to Tune (whose driver logs each to MLflow as it
# comes): a linear trial's 30 epochs take well under a second, and 30 reports each of 480
# such trials kept the driver's core busy with MLflow writes while the trials waited. The
# epochs not reported live are logged from the trial's history when it ends.
REPORT_EVERY_S = 1.0


def tune_trial(entry: Entry, config: dict[str, Any]) -> None:
    """The Ray Tune function trainable: one trial per config, its epochs reported as they
    end (the first at once, then at most one every ``REPORT_EVERY_S``), then the final
    result (``tune_trainable`` binds the entry)."""
    from ray import tune

    spec = from_dict(config["trial"]["spec"])
    ctx = TrialContext.from_dict(config["ctx"])
    report = throttled(lambda r: tune.report(_numeric(r)), REPORT_EVERY_S)
    final = run_trial(entry, spec, ctx, report=report)
    tune.report(final)


def throttled(report: Report, every_s: float,
              clock: Callable[[], float] = time.monotonic) -> Report:
    """``report`` for the first record, then only for a record at least ``every_s`` after
    the last one it passed on; the others are dropped."""
    last: list[float] = []

    def maybe(record: dict[str, Any]) -> None:
        now = clock()
        if not last or now - last[0] >= every_s:
            last[:] = [now]
            report(record)

    return maybe


def set_threads(ctx: TrialContext) -> None:
    """torch's threads: the trial's CPUs (more would fight the other trials for cores)."""
    import torch

    torch.set_num_threads(max(1, ctx.threads))


def _node_id() -> str | None:
    """The Ray node the trial ran on (results.parquet's ``node_id``), None outside Ray: on a
    cluster it tells which node type each kind of trial landed on."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - a where-it-ran column is no reason to fail a trial
        return None


def _message(e: BaseException) -> str:
    """A failed trial's error: the exception (any URI in it masked) and where it was raised,
    cut to 4000 chars."""
    text = redact(f"{type(e).__name__}: {e}")
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return (text + where)[:4000]


def _numeric(r: dict[str, Any]) -> dict[str, Any]:
    """The numbers of an epoch record, what ``tune.report`` takes per epoch."""
    return {k: v for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# ---------------------------------------------------------------------------------------
# The backbone and the data a trial reads


def load_backbone(spec: TrialSpec) -> Any:
    """The trial's upstream checkpoint: its file as it is (LTH-T's ticket that holds weights
    included: its own weights under its own mask), or, when the spec names a mask source (a
    ticket of masks alone, or ``mask_from``'s checkpoint), the dense weights under that mask.

    The sparsity the study declares is checked against the file (1 point of tolerance).
    """
    from trainables.checkpoints import load_checkpoint
    from trainables.checkpoints.mask_sources import mask_on_dense

    if spec.checkpoint is None:
        raise BadInput(f"trial {spec.trial_id}: no checkpoint file given")
    if spec.mask_checkpoint is None:
        return load_checkpoint(spec.checkpoint, arch=spec.arch, expect_sparsity=spec.sparsity)
    return mask_on_dense(spec.checkpoint, spec.mask_checkpoint, spec.arch, spec.sparsity)


def normalization(spec: TrialSpec, ctx: TrialContext) -> dict[str, Any]:
    """The trial's Normalize mean/std: ImageNet's, or (``normalize: dataset``) the dataset's
    own from its training split, computed once per dataset and size and cached."""
    from trainables.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD

    rule = spec.param("normalize", "imagenet")
    if rule == "imagenet":
        return {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    if rule != "dataset":
        raise BadInput(f"trial {spec.trial_id}: normalize {rule!r} is not one of imagenet, "
                       "dataset")
    from trainables.datasets import normalization_stats

    mean, std = normalization_stats(spec.dataset, ctx.data_root, spec.image_size,
                                    spec.interpolation, ctx.location("data_stats"))
    return {"mean": mean, "std": std}


def trial_dataset(spec: TrialSpec, ctx: TrialContext, split: str, train_aug: bool) -> Any:
    """One split of the trial's dataset, with the eval transform or (``train_aug``) full
    finetuning's augmentation, normalised as the trial says."""
    from search_spaces.recipe import PAPER_CROP_SCALE
    from trainables.datasets import build_dataset, dataset_info
    from trainables.datasets.batched import BatchAugment
    from trainables.datasets.transforms import train_transform

    norm = normalization(spec, ctx)
    if not train_aug:
        return _eval_split(spec.dataset, ctx.data_root, split, spec.image_size,
                           spec.interpolation, tuple(norm["mean"]), tuple(norm["std"]),
                           spec.num_classes or None)
    crop_scale = tuple(spec.param("crop_scale", PAPER_CROP_SCALE))
    hflip = dataset_info(spec.dataset, ctx.data_root).hflip
    if augment(spec) == "batch":
        if spec.interpolation != "bilinear":  # roi_align resamples bilinearly
            raise BadInput(f"trial {spec.trial_id}: augment: batch resamples bilinearly; "
                           f"{spec.method} asks for {spec.interpolation} (use augment: image)")
        return _tensor_split(spec.dataset, ctx.data_root, split, spec.num_classes or None,
                             BatchAugment(spec.image_size, crop_scale, hflip=hflip,
                                          mean=tuple(norm["mean"]), std=tuple(norm["std"])))
    tf = train_transform(spec.image_size, spec.interpolation, crop_scale=crop_scale,
                         hflip=hflip, **norm)
    return build_dataset(spec.dataset, ctx.data_root, split, tf,
                         expected_classes=spec.num_classes or None)


def _tensor_split(dataset: str, data_root: str | None, split: str,
                  expected_classes: int | None, batch_augment: Any) -> Any:
    """A training split as one uint8 tensor with its batch augmentation (``augment: batch``)."""
    from trainables.datasets.batched import TensorImages

    images, labels = _uint8_split(dataset, data_root, split, expected_classes)
    return TensorImages(images, labels, batch_augment)


@functools.lru_cache(maxsize=8)
def _uint8_split(dataset: str, data_root: str | None, split: str,
                 expected_classes: int | None) -> tuple[Any, Any]:
    """A split's images as one uint8 tensor, read once per process (Tune reuses it)."""
    from trainables.datasets import build_dataset
    from trainables.datasets.batched import stack_images, to_uint8

    return stack_images(build_dataset(dataset, data_root, split, to_uint8,
                                      expected_classes=expected_classes), dataset)


def augment(spec: TrialSpec) -> str:
    """How the trial's training batches are augmented: "image" (torchvision) or "batch"."""
    return TrainingSpec.from_params(spec.params).augment


def precision(spec: TrialSpec) -> Any:
    """The trial's ``engine.Precision``: channels_last where the study asks for it."""
    from trainables.training.engine import Precision

    return Precision(channels_last=TrainingSpec.from_params(spec.params).channels_last)


@functools.lru_cache(maxsize=16)
def _eval_split(dataset: str, data_root: str | None, split: str, image_size: int,
                interpolation: str, mean: tuple[float, ...], std: tuple[float, ...],
                expected_classes: int | None = None) -> Any:
    """One split with the eval transform, kept as tensors where small
    (``datasets.materialized``) for every later trial of this process: a trial process (Tune
    reuses it) and a feature task's worker read the same few splits many times."""
    from trainables.datasets import build_dataset, materialized
    from trainables.datasets.transforms import eval_transform

    tf = eval_transform(image_size, interpolation, mean=mean, std=std)
    return materialized(build_dataset(dataset, data_root, split, tf,
                                      expected_classes=expected_classes))


def epoch_selection(spec: TrialSpec) -> str:
    """The trial's rule for the reported epoch; "metric" where the grid set none (the rule
    before it was a study key, which such trial ids stand for)."""
    return str(spec.param("epoch_selection", "metric"))


def protocol(spec: TrialSpec) -> dict[str, str]:
    """The row's record of how the trial normalised its inputs and picked its epoch."""
    return {"epoch_selection": epoch_selection(spec),
            "normalize": str(spec.param("normalize", "imagenet"))}
