"""Linear finetuning's trials: a classifier on the backbone's cached features.

Features are extracted once per (backbone, dataset) and cached on disk (``FeatureCache``,
keyed by ``feature_key``); ``ensure_features`` is the Ray task that fills the cache before the
linear trials run, each of which then reads it.
"""

from __future__ import annotations

from typing import Any

from search_spaces.trial import TrialSpec, from_dict
from trainables.entry.context import TrialContext
from trainables.entry.trial import (Report, epoch_selection, load_backbone, protocol,
                                    set_threads, trial_dataset)


def feature_key(spec: TrialSpec, split: str) -> dict[str, Any]:
    """What the features of one split depend on: the backbone's content, its eval transform
    and the dataset (not the trial's seed or recipe)."""
    key = {
        "checkpoint": spec.checkpoint_hash, "mask": spec.mask_checkpoint_hash,
        "arch": spec.arch, "method": spec.method, "sparsity": spec.sparsity,
        "dataset": spec.dataset, "split": split, "transform": "eval",
        "image_size": spec.image_size, "interpolation": spec.interpolation,
    }
    if spec.param("normalize", "imagenet") != "imagenet":  # ImageNet's keeps the old keys
        key["normalize"] = spec.param("normalize")
    return key


def features(spec: TrialSpec, ctx: TrialContext) -> dict[str, tuple[Any, Any]]:
    """Train and test features of the trial's backbone, from the cache or computed once."""
    from trainables.training.features import FeatureCache, extract_features
    from trainables.models import backbone

    cache = FeatureCache(ctx.location("features"))
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
            lambda split=split: extract_features(net(), trial_dataset(spec, ctx, split, False)),
        )
    return out


def ensure_features(spec_dict: dict[str, Any], ctx: TrialContext | dict[str, Any]) -> None:
    """A Ray task: fill the feature cache for one (backbone, dataset) pair."""
    ctx = TrialContext.from_dict(ctx)
    set_threads(ctx)
    features(from_dict(spec_dict), ctx)


def run_linear(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    """Train the linear classifier on the cached features; the best epoch's accuracy."""
    from trainables.training.linear import linear_finetune

    feats = features(spec, ctx)
    res = linear_finetune(feats["train"], feats["test"], num_classes=spec.num_classes,
                          metric=spec.metric, recipe=spec.recipe, seed=spec.seed, report=report,
                          epoch_selection=epoch_selection(spec))
    return {"accuracy": res.accuracy_best, "accuracy_last": res.accuracy_last,
            "best_epoch": res.best_epoch, "train_time_s": res.train_time_s,
            **protocol(spec), "history": res.history}
