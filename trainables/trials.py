"""Entry points of one trial: turn a ``TrialSpec`` into the plain loops and report back.

This is the thin layer the sweep calls (``tune_entry`` for Ray Tune, ``ensure_features`` as a
Ray task, ``speed_spec_from`` for the speed pool). The loops themselves (``upstream``,
``pruning``, ``linear_finetune``, ``full_finetune``, ``speed``) know nothing of Ray or of
other trials. Bad input (``common.errors.BadInput``: a bad checkpoint, a missing dataset, a bad
config value, a NaN loss) is reported as a result with ``status="failed"`` instead of raised, so
Ray Tune does not retry it; anything else (out of memory, a dead worker, a stale NFS handle, a
bug) is raised, so Tune retries the trial and the sweep records what is left as an error.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from common.errors import BadInput
from search_spaces.trial import TrialSpec, from_dict
from trainables.context import TrialContext

log = logging.getLogger(__name__)
Report = Callable[[dict[str, Any]], None]

# Failures that rerunning cannot fix: recorded once as a failed result, never retried by Tune.
# Only bad input: an OSError, an out-of-memory RuntimeError or a bug (TypeError...) is raised.
DETERMINISTIC = (BadInput,)


def _zoo(ctx: TrialContext, spec: TrialSpec) -> Path:
    return ctx.zoo_checkpoint(spec.arch, spec.method, spec.sparsity)


# ---------------------------------------------------------------------------------------
# Backbones


def load_backbone(spec: TrialSpec) -> Any:
    """The trial's upstream checkpoint: its file as it is (LTH-T's ticket that holds weights
    included: its own weights under its own mask), or, when the spec names a mask source (a
    ticket of masks alone, or ``mask_from``'s checkpoint), the dense weights under that mask.

    The sparsity the study declares is checked against the file (1 point of tolerance).
    """
    from trainables.checkpoints import load_checkpoint, mask_on_dense

    if spec.checkpoint is None:
        raise BadInput(f"trial {spec.trial_id}: no checkpoint file given")
    if spec.mask_checkpoint is None:
        return load_checkpoint(spec.checkpoint, arch=spec.arch, expect_sparsity=spec.sparsity)
    return mask_on_dense(spec.checkpoint, spec.mask_checkpoint, spec.arch, spec.sparsity)


def feature_key(spec: TrialSpec, split: str) -> dict[str, Any]:
    key = {
        "checkpoint": spec.checkpoint_hash, "mask": spec.mask_checkpoint_hash,
        "arch": spec.arch, "method": spec.method, "sparsity": spec.sparsity,
        "dataset": spec.dataset, "split": split, "transform": "eval",
        "image_size": spec.image_size, "interpolation": spec.interpolation,
    }
    if spec.param("normalize", "imagenet") != "imagenet":  # ImageNet's keeps the old keys
        key["normalize"] = spec.param("normalize")
    return key


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
                                    spec.interpolation, ctx.out / "data_stats")
    return {"mean": mean, "std": std}


def _dataset(spec: TrialSpec, ctx: TrialContext, split: str, train_aug: bool) -> Any:
    from trainables.datasets import build_dataset, dataset_info
    from search_spaces.recipe import PAPER_CROP_SCALE
    from trainables.datasets.transforms import eval_transform, train_transform

    norm = normalization(spec, ctx)
    if train_aug:
        tf = train_transform(spec.image_size, spec.interpolation,
                             crop_scale=tuple(spec.param("crop_scale", PAPER_CROP_SCALE)),
                             hflip=dataset_info(spec.dataset, ctx.data_root).hflip, **norm)
    else:
        tf = eval_transform(spec.image_size, spec.interpolation, **norm)
    return build_dataset(spec.dataset, ctx.data_root, split, tf)


def features(spec: TrialSpec, ctx: TrialContext) -> dict[str, tuple[Any, Any]]:
    """Train and test features of the trial's backbone, from the cache or computed once."""
    from trainables.models import backbone
    from trainables.training.features import FeatureCache, extract_features

    cache = FeatureCache(ctx.out / "features")
    net_holder: dict[str, Any] = {}

    def net() -> Any:
        if "net" not in net_holder:
            from trainables.checkpoints import build_backbone_model

            ckpt = load_backbone(spec)
            net_holder["net"] = backbone(build_backbone_model(ckpt), spec.arch)
        return net_holder["net"]

    out = {}
    for split in ("train", "test"):
        out[split] = cache.get_or_compute(
            feature_key(spec, split),
            lambda split=split: extract_features(net(), _dataset(spec, ctx, split, False)),
        )
    return out


def ensure_features(spec_dict: dict[str, Any], ctx: TrialContext) -> None:
    """A Ray task: fill the feature cache for one (backbone, dataset) pair."""
    ctx = TrialContext.from_dict(ctx)
    _threads(ctx)
    features(from_dict(spec_dict), ctx)


def _threads(ctx: TrialContext) -> None:
    import torch

    torch.set_num_threads(max(1, ctx.threads))


# ---------------------------------------------------------------------------------------
# Stages


def _upstream_data(spec: TrialSpec, ctx: TrialContext) -> tuple[Any, Any]:
    """The procedural upstream train/val splits that pretraining and pruning share."""
    from trainables.datasets.procedural import ProceduralSpec
    from trainables.training.upstream import upstream_datasets

    return upstream_datasets(
        ProceduralSpec(num_classes=spec.num_classes, image_size=spec.image_size),
        spec.param("images_per_class"), spec.param("val_images_per_class"), spec.seed,
        cache_dir=ctx.out / "data_cache",
    )


def run_pretrain(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    from trainables.checkpoints import filters_pruned_share, save_reference_checkpoint
    from trainables.models import build_model
    from trainables.training.upstream import pretrain

    train, val = _upstream_data(spec, ctx)
    import torch

    torch.manual_seed(spec.seed)  # the initial weights: the same trial id, the same model
    model = build_model(spec.arch, spec.num_classes)
    res = pretrain(model, train, val, spec.recipe, spec.seed,
                   report=lambda r: report({**r, "accuracy": r.get("val_accuracy")}))
    save_reference_checkpoint(_zoo(ctx, spec), model, spec.arch, spec.dataset,
                              extra={"trial_id": spec.trial_id})
    return {"accuracy": res["val_accuracy"], "train_time_s": res["seconds"],
            "sparsity_measured": 0.0,
            "filters_pruned_share": filters_pruned_share(model.state_dict()),
            "history": res.get("history", [])}


def run_prune(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    from trainables.checkpoints import (build_backbone_model, filters_pruned_share,
                                        load_checkpoint, save_reference_checkpoint)
    from trainables.models.masks import global_sparsity
    from trainables.pruning import METHODS
    from trainables.training.upstream import make_loader

    dense = load_checkpoint(spec.checkpoint, arch=spec.arch, expect_sparsity=0)
    model = build_backbone_model(dense)
    train, val = _upstream_data(spec, ctx)
    params = {k: v for k, v in spec.params if k not in ("images_per_class",
                                                        "val_images_per_class")}
    batch_size = int(params.pop("batch_size", 64))
    entry = METHODS.get(spec.method)
    cfg = prune_config(entry.meta["config"], spec.method, params)
    t0 = time.perf_counter()
    result = entry.fn(
        model, make_loader(train, batch_size, True, spec.seed),
        make_loader(val, 256, False, spec.seed), spec.sparsity / 100, cfg, spec.seed,
        report=report,
    )
    pruned = result.model
    measured = 100 * global_sparsity(pruned)
    save_reference_checkpoint(_zoo(ctx, spec), pruned, spec.arch, spec.dataset,
                              wrapped=True, extra={"trial_id": spec.trial_id})
    info = {k: v for k, v in (result.info or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    history = (result.info or {}).get("history", [])
    return {**info, "accuracy": info.get("val_accuracy", info.get("accuracy")),
            "sparsity_measured": measured,
            "filters_pruned_share": filters_pruned_share(pruned.state_dict()),
            "train_time_s": time.perf_counter() - t0,
            "history": history if isinstance(history, list) else []}


def prune_config(cls: type, method: str, params: dict[str, Any]) -> Any:
    """The method's config dataclass from the study's ``upstream.prune`` settings."""
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise BadInput(f"upstream.prune for {method!r}: unknown key {unknown[0]!r}; "
                       f"valid keys: {', '.join(sorted(valid | {'batch_size'}))}")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
    except (TypeError, ValueError) as e:  # the config's own checks, on the study's values
        raise BadInput(f"upstream.prune for {method!r}: {e}") from None


def run_linear(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    from trainables.training.linear import linear_finetune

    feats = features(spec, ctx)
    res = linear_finetune(feats["train"], feats["test"], num_classes=spec.num_classes,
                          metric=spec.metric, recipe=spec.recipe, seed=spec.seed, report=report,
                          epoch_selection=epoch_selection(spec))
    return {"accuracy": res.accuracy_best, "accuracy_last": res.accuracy_last,
            "best_epoch": res.best_epoch, "train_time_s": res.train_time_s,
            **protocol(spec), "history": res.history}


def epoch_selection(spec: TrialSpec) -> str:
    """The trial's rule for the reported epoch; "metric" where the grid set none (the rule
    before it was a study key, which such trial ids stand for)."""
    return str(spec.param("epoch_selection", "metric"))


def protocol(spec: TrialSpec) -> dict[str, str]:
    """The row's record of how the trial normalised its inputs and picked its epoch."""
    return {"epoch_selection": epoch_selection(spec),
            "normalize": str(spec.param("normalize", "imagenet"))}


def _build_full(spec_dict: dict[str, Any], ctx: TrialContext) -> tuple[Any, Any, Any, Any]:
    """Runs on every Ray Train worker: the sparse model with its new dense classifier."""
    from trainables.checkpoints import backbone_masks, build_backbone_model

    spec = from_dict(spec_dict)
    ckpt = load_backbone(spec)
    model = build_backbone_model(ckpt, num_classes=spec.num_classes)
    masks = backbone_masks(ckpt)
    return (model, masks, _dataset(spec, ctx, "train", True), _dataset(spec, ctx, "test", False))


def _full_in_trial(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    """Full finetuning in the Tune trial's own process (one CPU worker: nothing to spread)."""
    from trainables.full_finetune import STATE_FILE, run_full_finetune_in_trial

    t0 = time.perf_counter()
    res = run_full_finetune_in_trial(
        _full_config(spec, ctx),
        state_file=ctx.full_state_dir(spec.trial_id) / STATE_FILE, report=report)
    return {"accuracy": res.accuracy_best, "accuracy_last": res.accuracy_last,
            "best_epoch": res.best_epoch, "masked_zeros": res.masked_zeros,
            "masked_total": res.masked_total, "train_time_s": time.perf_counter() - t0,
            "trainer": "in_trial", **protocol(spec),
            "history": res.history}


def _full_config(spec: TrialSpec, ctx: TrialContext) -> Any:
    """The picklable ``FullRun`` every full-finetuning path runs from."""
    from search_spaces.trial import to_dict
    from trainables.full_finetune import FullRun

    return FullRun(build=functools.partial(_build_full, to_dict(spec), ctx),
                   arch=spec.arch, num_classes=spec.num_classes, metric=spec.metric,
                   recipe=spec.recipe, seed=spec.seed, epoch_selection=epoch_selection(spec))


def run_full(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    import torch

    from trainables.full_finetune import STATE_FILE, run_full_finetune_trainer

    plan = ctx.full_plan
    if plan.in_trial:  # builds the model here, so a bad input raises here at once
        return _full_in_trial(spec, ctx, report)
    # Fail fast, in the trial, on a bad checkpoint or dataset (clear message, no retries),
    # before Ray Train starts workers that would each hit it.
    load_backbone(spec)
    _dataset(spec, ctx, "test", False)
    storage = ctx.full_state_dir(spec.trial_id).parent
    t0 = time.perf_counter()
    try:
        metrics = run_full_finetune_trainer(
            _full_config(spec, ctx),
            num_workers=plan.num_workers, use_gpu=plan.use_gpu,
            storage_path=storage, name=spec.trial_id,
            cpus_per_worker=plan.cpus_per_worker,
            # No restarts inside Ray Train (they retry a NaN loss too): a dead worker fails
            # the Tune trial, whose retries resume from the last epoch checkpoint (same name).
            max_failures=0,
            start_timeout_s=plan.start_timeout_s,
        )
    except DETERMINISTIC:  # the worker group never got its resources: a failed trial
        raise
    except Exception as e:  # Ray Train wraps the workers' own exceptions in WorkerGroupError
        failures = list(getattr(e, "worker_failures", {}).values())
        # One worker's bad input (a NaN loss on rank 0) decides: the other ranks' errors
        # (a collective that lost its peer) follow from it, and a retry would fail again.
        bad = next((f for f in failures if isinstance(f, DETERMINISTIC)), None)
        if bad is None:
            raise  # a dead worker, out of memory, a bug: Tune retries the trial
        raise bad from None
    history: list[dict[str, Any]] = []
    ckpts = sorted((storage / spec.trial_id).glob(f"checkpoint_*/{STATE_FILE}"))
    if ckpts:
        bundle = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
        history = [dict(r) for r in bundle.get("history", [])]
    last = history[-1] if history else metrics
    return {"accuracy": last.get("accuracy_best", metrics.get("accuracy_best")),
            "accuracy_last": last.get("accuracy_last", metrics.get("accuracy_last")),
            "best_epoch": last.get("best_epoch", metrics.get("best_epoch")),
            "masked_zeros": metrics.get("masked_zeros"),
            "masked_total": metrics.get("masked_total"),
            "train_time_s": time.perf_counter() - t0, "trainer": "ray_train",
            **protocol(spec), "history": history}


def run_checkpoint(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    """One backbone before transfer: per-layer sparsity, fully pruned filters (Appendix E) and
    its upstream validation accuracy (Table 3): ImageNet val (ReaL, each ImageNetV2 variant and
    their mean) from the data root for given checkpoints, the procedural validation split for
    the tiny study's zoo."""
    import torch

    from trainables.checkpoints import build_backbone_model
    from trainables.datasets.transforms import eval_transform
    from trainables.training.upstream_eval import (checkpoint_statistics, evaluate_dataset,
                                                   evaluate_imagenet)

    ckpt = load_backbone(spec)
    stats = checkpoint_statistics(ckpt.state_dict, list(ckpt.masks))
    model = build_backbone_model(ckpt)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.param("images_per_class") is not None:  # the tiny study's procedural upstream
        _, val = _upstream_data(spec, ctx)
        acc = evaluate_dataset(model, val, spec.dataset, device)
    elif ckpt.num_classes != 1000:
        from trainables.training.upstream_eval import UpstreamAccuracy

        acc = UpstreamAccuracy(None, note=f"the checkpoint's classifier has {ckpt.num_classes} "
                               "outputs, not ImageNet's 1000: no upstream accuracy")
    else:
        acc = evaluate_imagenet(model, ctx.data_root,
                                eval_transform(spec.image_size, spec.interpolation), device,
                                workers=min(4, ctx.threads))
    return {**stats, "accuracy": acc.top1, "accuracy_real": acc.real, "accuracy_v2": acc.v2,
            **acc.v2_variants, "upstream_eval": acc.note, "history": []}


STAGES: dict[str, Callable[[TrialSpec, TrialContext, Report], dict[str, Any]]] = {
    "pretrain": run_pretrain, "prune": run_prune, "checkpoint": run_checkpoint,
    "linear": run_linear, "full": run_full,
}


def run_trial(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    """Run one trial; returns its final result (``status`` finished, or failed on bad input).

    Everything but ``BadInput`` propagates: Tune retries the trial (``--max-failures``) and
    the sweep records the last attempt's traceback as ``status="error"``, which a rerun tries
    again. A bug (TypeError, AttributeError...) is no result either: it fails loudly.
    """
    if ctx.rehearsal:  # no torch: a rehearsal trial computes nothing
        from trainables.rehearsal import run_rehearsal as stage
    else:
        _threads(ctx)
        stage = STAGES[spec.stage]
    try:
        out = stage(spec, ctx, report)
    except DETERMINISTIC as e:
        log.warning("trial %s failed: %s", spec.trial_id, e)
        return {"status": "failed", "error": _message(e), "final": True}
    history = out.pop("history", [])
    out.setdefault("node_id", _node_id())
    return {**{k: v for k, v in out.items() if v is not None}, "status": "finished",
            "final": True, "history_json": json.dumps(history, default=float)}


def _node_id() -> str | None:
    """The Ray node the trial ran on (results.parquet's ``node_id``), None outside Ray: on a
    cluster it tells which node type each kind of trial landed on."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - a where-it-ran column is no reason to fail a trial
        return None


def _message(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return (text + where)[:4000]


def tune_entry(config: dict[str, Any]) -> None:
    """The Ray Tune function trainable: one trial per config, per-epoch reports."""
    from ray import tune

    spec = from_dict(config["trial"]["spec"])
    ctx = TrialContext.from_dict(config["ctx"])
    if spec.stage == "full" and not ctx.full_plan.in_trial and not ctx.rehearsal:
        # Ray Train's TuneReportCallback reports every epoch; report only the final result.
        final = run_trial(spec, ctx, report=lambda r: None)
    else:
        final = run_trial(spec, ctx, report=lambda r: tune.report(_numeric(r)))
    tune.report(final)


def _numeric(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# ---------------------------------------------------------------------------------------
# Speed


def speed_spec_from(spec: TrialSpec, ctx: TrialContext) -> Any:
    """The DeepSparse speed trial of a backbone (trained weights) or of random weights.

    The grid copies the study's ``speed`` settings into ``spec.params``; a setting missing
    there (a hand-made spec) falls back to ``SpeedSettings``' default, not to a number of its own.
    A backbone's online runs train on its dataset's training split with ``spec.recipe`` and
    are evaluated on its test split; random weights time synthetic images, with no accuracy.
    """
    from search_spaces.schema import SpeedSettings
    from trainables.speed.trial import SpeedSpec

    study = SpeedSettings()
    weights = spec.param("weights", "trained")
    batch_sizes = spec.param("batch_sizes", study.batch_sizes)
    common = dict(
        arch=spec.arch, method=spec.method, sparsity=spec.sparsity,
        profile=spec.param("profile", study.random_profile),
        image_size=spec.image_size, batch=max(batch_sizes),
        warmup=spec.param("warmup", study.warmup), reps=spec.param("reps", study.reps),
        online_batches=spec.param("online_batches", study.online_batches), seed=spec.seed,
        loader_workers=spec.param("loader_workers", study.loader_workers),
        work_dir=str(ctx.out / "onnx" / spec.trial_id), trial_id=spec.trial_id,
    )
    if weights != "trained":
        return SpeedSpec(**common)
    online = spec.param("online_dataset") or spec.dataset
    task = _online_task(spec, online, ctx.data_root) if online else {}
    dense = (functools.partial(_dense_speed_model, spec.dense_checkpoint, spec.arch)
             if spec.dense_checkpoint else None)
    return SpeedSpec(**common, load_model=functools.partial(_speed_model, spec),
                     dense_model=dense, **task)


def _online_task(spec: TrialSpec, name: str, data_root: str | None) -> dict[str, Any]:
    """What a backbone's online runs learn: the dataset's splits, classes and metric (the
    spec's, else the registry's), the recipe, epoch rule and augmentation of the study."""
    from search_spaces.recipe import PAPER_CROP_SCALE
    from trainables.datasets import dataset_info

    info = dataset_info(name, data_root)
    return dict(
        online_dataset=functools.partial(_raw_dataset, name, data_root, "train"),
        online_test=functools.partial(_raw_dataset, name, data_root, "test"),
        online_dataset_name=name,
        online_classes=spec.num_classes or info.classes,
        online_metric=spec.metric if spec.num_classes else info.metric,
        online_recipe=spec.recipe, online_epoch_selection=epoch_selection(spec),
        interpolation=spec.interpolation,
        online_crop_scale=tuple(spec.param("crop_scale", PAPER_CROP_SCALE)),
        online_hflip=info.hflip,
    )


def _speed_model(spec: TrialSpec) -> Any:
    from trainables.checkpoints import build_backbone_model

    return build_backbone_model(load_backbone(spec))


def _dense_speed_model(path: str, arch: str) -> Any:
    """The study's dense backbone: the speed trial's dense reference and online baseline."""
    from trainables.checkpoints import build_backbone_model, load_checkpoint

    return build_backbone_model(load_checkpoint(path, arch=arch, expect_sparsity=0))


def _raw_dataset(name: str, data_root: str | None, split: str) -> Any:
    from trainables.datasets import build_dataset

    return build_dataset(name, data_root, split, None)
