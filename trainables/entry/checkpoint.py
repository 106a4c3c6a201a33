"""A backbone's own trial before transfer: its statistics and its upstream accuracy."""

from __future__ import annotations

from typing import Any

from search_spaces.trial import TrialSpec
from trainables.entry.context import TrialContext
from trainables.entry.trial import Report, load_backbone
from trainables.entry.upstream import upstream_data


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
        _, val = upstream_data(spec, ctx)
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
