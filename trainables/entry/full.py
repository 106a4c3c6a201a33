"""Full finetuning's trials: every weight trained, the backbone's mask kept fixed.

Two paths run the same ``FullRun`` (``trainables.training.full``): in the Tune trial's own
process when the plan says so (``FullPlan.in_trial``: one CPU worker, nothing to spread), else
under a Ray Train TorchTrainer (``trainables.entry.ray_train``: DDP, one worker per GPU). Both
keep the per-epoch state under the trial's id, so a rerun resumes after the last epoch.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from common.storage import join
from search_spaces.trial import TrialSpec, from_dict, to_dict
from trainables.entry.context import TrialContext
from trainables.entry.trial import (DETERMINISTIC, Report, epoch_selection, load_backbone,
                                    precision, protocol, trial_dataset)


def run_full(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    """Finetune the whole backbone with its new classifier; the best epoch's accuracy."""
    if ctx.full_plan.in_trial:  # builds the model here, so a bad input raises here at once
        return _full_in_trial(spec, ctx, report)
    # Fail fast, in the trial, on a bad checkpoint or dataset (clear message, no retries),
    # before Ray Train starts workers that would each hit it. Ray Train's own callback
    # reports each epoch to Tune, so ``report`` is not called on this path.
    load_backbone(spec)
    trial_dataset(spec, ctx, "test", False)
    t0 = time.perf_counter()
    metrics = _on_ray_train(spec, ctx)
    history = metrics.pop("history", [])  # from the run's Result.checkpoint
    last = history[-1] if history else metrics
    return {"accuracy": last.get("accuracy_best", metrics.get("accuracy_best")),
            "accuracy_last": last.get("accuracy_last", metrics.get("accuracy_last")),
            "best_epoch": last.get("best_epoch", metrics.get("best_epoch")),
            "masked_zeros": metrics.get("masked_zeros"),
            "masked_total": metrics.get("masked_total"),
            "train_time_s": time.perf_counter() - t0, "trainer": "ray_train",
            **protocol(spec), "history": history}


def _build_full(spec_dict: dict[str, Any], ctx: TrialContext) -> tuple[Any, Any, Any, Any]:
    """Runs on every Ray Train worker: the sparse model with its new dense classifier."""
    from trainables.checkpoints import backbone_masks, build_backbone_model

    spec = from_dict(spec_dict)
    ckpt = load_backbone(spec)
    model = build_backbone_model(ckpt, num_classes=spec.num_classes)
    masks = backbone_masks(ckpt)
    return (model, masks, trial_dataset(spec, ctx, "train", True),
            trial_dataset(spec, ctx, "test", False))


def _full_config(spec: TrialSpec, ctx: TrialContext) -> Any:
    """The picklable ``FullRun`` every full-finetuning path runs from."""
    from trainables.training.full import FullRun

    return FullRun(build=functools.partial(_build_full, to_dict(spec), ctx),
                   arch=spec.arch, num_classes=spec.num_classes, metric=spec.metric,
                   recipe=spec.recipe, seed=spec.seed, epoch_selection=epoch_selection(spec),
                   precision=precision(spec))


def _full_in_trial(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    """Full finetuning in the Tune trial's own process (one CPU worker: nothing to spread)."""
    from trainables.training.full import STATE_FILE, run_full_finetune_in_trial

    t0 = time.perf_counter()
    res = run_full_finetune_in_trial(
        _full_config(spec, ctx),
        state_file=join(ctx.full_state_dir(spec.trial_id), STATE_FILE), report=report)
    return {"accuracy": res.accuracy_best, "accuracy_last": res.accuracy_last,
            "best_epoch": res.best_epoch, "masked_zeros": res.masked_zeros,
            "masked_total": res.masked_total, "train_time_s": time.perf_counter() - t0,
            "trainer": "in_trial", **protocol(spec),
            "history": res.history}


def _on_ray_train(spec: TrialSpec, ctx: TrialContext) -> dict[str, Any]:
    """The TorchTrainer's final metrics; a worker's bad input raised as itself (a failed
    trial), anything else as Ray Train wrapped it (Tune retries the trial)."""
    from trainables.entry.ray_train import run_full_finetune_trainer

    plan = ctx.full_plan
    try:
        return run_full_finetune_trainer(
            _full_config(spec, ctx),
            num_workers=plan.num_workers, use_gpu=plan.use_gpu,
            storage_path=ctx.location("ray", "train"), name=spec.trial_id,
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
