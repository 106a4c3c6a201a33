"""The tiny study's upstream trials: pretraining the dense model and pruning it, per method.

Both train on the procedural upstream set (``trainables.datasets.procedural``) and write one checkpoint
of the zoo (``context.zoo_path``, the reference format) that later trials load.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from common.errors import BadInput
from search_spaces.study import TrainingSpec
from search_spaces.trial import TrialSpec
from trainables.entry.context import TrialContext
from trainables.entry.trial import Report, augment, precision

# Params of a prune trial that are not its method's config: the upstream set's size and how
# the training loop feeds the model (the study's ``training`` block).
NOT_PRUNE_CONFIG = ("images_per_class", "val_images_per_class",
                    *(f.name for f in dataclasses.fields(TrainingSpec)))


def _zoo(ctx: TrialContext, spec: TrialSpec) -> str:
    """Where the trial writes its zoo checkpoint."""
    return ctx.zoo_checkpoint(spec.arch, spec.method, spec.sparsity)


def upstream_data(spec: TrialSpec, ctx: TrialContext) -> tuple[Any, Any]:
    """The procedural upstream train/val splits that pretraining and pruning share."""
    from trainables.datasets.procedural import ProceduralSpec
    from trainables.training.upstream import upstream_datasets

    return upstream_datasets(
        ProceduralSpec(num_classes=spec.num_classes, image_size=spec.image_size),
        spec.param("images_per_class"), spec.param("val_images_per_class"), spec.seed,
        cache_dir=ctx.location("data_cache"), augment=augment(spec),
    )


def run_pretrain(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    """Pretrain the dense upstream model from its seed and save it to the zoo."""
    from trainables.checkpoints import filters_pruned_share, save_reference_checkpoint
    from trainables.models import build_model
    from trainables.training.upstream import pretrain

    train, val = upstream_data(spec, ctx)
    import torch

    torch.manual_seed(spec.seed)  # the initial weights: the same trial id, the same model
    model = build_model(spec.arch, spec.num_classes)
    res = pretrain(model, train, val, spec.recipe, spec.seed,
                   report=lambda r: report({**r, "accuracy": r.get("val_accuracy")}),
                   precision=precision(spec))
    save_reference_checkpoint(_zoo(ctx, spec), model, spec.arch, spec.dataset,
                              extra={"trial_id": spec.trial_id})
    return {"accuracy": res["val_accuracy"], "train_time_s": res["seconds"],
            "sparsity_measured": 0.0,
            "filters_pruned_share": filters_pruned_share(model.state_dict()),
            "history": res.get("history", [])}


def run_prune(spec: TrialSpec, ctx: TrialContext, report: Report) -> dict[str, Any]:
    """Prune the dense zoo model with the spec's method to its sparsity and save it."""
    import torch

    from trainables.checkpoints import (build_backbone_model, filters_pruned_share,
                                        load_checkpoint, save_reference_checkpoint)
    from trainables.models.masks import global_sparsity
    from trainables.pruning import METHODS
    from trainables.training.engine import place
    from trainables.training.upstream import make_loader

    dense = load_checkpoint(spec.checkpoint, arch=spec.arch, expect_sparsity=0)
    model = build_backbone_model(dense)
    train, val = upstream_data(spec, ctx)
    params = {k: v for k, v in spec.params if k not in NOT_PRUNE_CONFIG}
    batch_size = int(params.pop("batch_size", 64))
    entry = METHODS.get(spec.method)
    cfg = prune_config(entry.meta["config"], spec.method, params)
    place(model, "cpu", precision(spec))  # the weights' layout; batches keep theirs
    t0 = time.perf_counter()
    result = entry.fn(
        model, make_loader(train, batch_size, True, spec.seed),
        make_loader(val, 256, False, spec.seed), spec.sparsity / 100, cfg, spec.seed,
        report=report,
    )
    pruned = result.model.to(memory_format=torch.contiguous_format)
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
