"""``--smoke-test``: the same study, shrunk until it runs end to end in about two minutes.

Every stage still runs (upstream, features, linear, full under Ray Train, speed, report), on
fewer methods, one sparsity, two datasets, two linear seeds and one full seed, with short
recipes. Used by CI and as a first check on a new machine.
"""

from __future__ import annotations

import dataclasses

from common import columns as C
from search_spaces.schema import Study


def smoke_study(study: Study) -> Study:
    keep = {"dense", "gmp", "acdc", "lth_t"}
    methods = []
    for m in study.methods:
        if m.name not in keep:
            continue
        sps = m.sparsities if m.family == "dense" else m.sparsities[-1:]
        per_arch = tuple((a, v if m.family == "dense" else v[-1:]) for a, v in m.arch_sparsities)
        methods.append(dataclasses.replace(m, sparsities=sps, arch_sparsities=per_arch))
    modes = []
    for m in study.modes:
        n_seeds = 2 if m.name == C.MODE_LINEAR else 1
        epochs = 6 if m.name == C.MODE_LINEAR else 1
        recipe = dataclasses.replace(m.recipe, epochs=epochs,
                                     milestones=tuple(x for x in (epochs // 2,) if x))
        modes.append(dataclasses.replace(m.first_seeds(n_seeds), recipe=recipe))
    upstream = study.upstream
    if upstream is not None:
        upstream = dataclasses.replace(
            upstream, num_classes=min(upstream.num_classes, 16), images_per_class=60,
            val_images_per_class=10,
            pretrain=dataclasses.replace(upstream.pretrain, epochs=2),
            prune=tuple(sorted({**dict(upstream.prune), "steps": 30, "frequency": 5}.items())),
            prune_overrides=(),
        )
    speed = dataclasses.replace(study.speed, random_arch=None, random_sparsities=(), reps=1,
                                warmup=1, online_batches=1, batch_sizes=(1, 16))
    return dataclasses.replace(
        study, name=study.name, methods=tuple(methods), datasets=study.datasets[:2],
        modes=tuple(modes), upstream=upstream, speed=speed,
    )
