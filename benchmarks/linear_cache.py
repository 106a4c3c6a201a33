"""Wall time of a 5-seed linear-finetuning sweep: feature cache vs re-extraction per seed.

The reference code extracts the backbone's features again for every linear run; here they are
computed once per (backbone, dataset) in a ``FeatureCache`` and every seed reads them. Both
ways run in the same process on the same data (a built-in task through the study's feature
transform, or random images if the task is unavailable), one after the other, and must give
identical accuracies (same features, same seeds).

    python benchmarks/linear_cache.py                      # digits, resnet_tiny, 5 seeds
    python benchmarks/linear_cache.py --dataset textures --threads 2

Target: the cached sweep takes >= 3.5x less wall time than the naive one.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from search_spaces.recipe import Recipe
from trainables.models import backbone, build_model, input_size
from trainables.training.features import FeatureCache, extract_features
from trainables.training.linear import linear_finetune

TARGET = 3.5
SEEDS = (21, 51, 81, 111, 141)  # the paper's linear seeds
# The tiny study's linear recipe (search_spaces/tiny.yaml): 150 epochs scaled to 30.
TINY_LINEAR = Recipe(epochs=30, lr=0.05, batch_size=64, milestones=(10, 20), gamma=0.1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet_tiny")
    p.add_argument("--dataset", default="digits", help="a built-in task of trainables.datasets")
    p.add_argument("--seeds", type=int, default=len(SEEDS), help="number of linear seeds")
    p.add_argument("--epochs", type=int, default=TINY_LINEAR.epochs)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the trial's CPUs)")
    p.add_argument("--batch-size", type=int, default=256, help="feature extraction batch")
    return p.parse_args(argv)


def load_task(name: str, image_size: int) -> tuple[Dataset, Dataset, int, str, str]:
    """(train, test, classes, metric, source) of a built-in task, or random images."""
    try:
        from trainables.datasets import build_dataset, dataset_info, transforms

        info = dataset_info(name)
        tf = transforms.feature_transform(image_size)
        return (build_dataset(name, None, "train", tf), build_dataset(name, None, "test", tf),
                info.classes, info.metric, f"built-in task {name!r}")
    except Exception as exc:  # the task's package is missing: fall back, and say so
        g = torch.Generator().manual_seed(0)

        def split(n: int) -> TensorDataset:
            return TensorDataset(torch.randn(n, 3, image_size, image_size, generator=g),
                                 torch.arange(n) % 10)

        return split(1257), split(540), 10, "top1", f"random images ({exc})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    print("Command: " + shlex.join([".venv/bin/python", "benchmarks/linear_cache.py", *given]))
    torch.set_num_threads(args.threads)
    recipe = Recipe(epochs=args.epochs, lr=TINY_LINEAR.lr, batch_size=TINY_LINEAR.batch_size,
                    milestones=tuple(m for m in TINY_LINEAR.milestones if m < args.epochs))
    seeds = (SEEDS * (args.seeds // len(SEEDS) + 1))[: args.seeds]

    torch.manual_seed(0)
    net = backbone(build_model(args.arch, num_classes=1000), args.arch)
    size = input_size(args.arch)
    train_ds, test_ds, classes, metric, source = load_task(args.dataset, size)
    print(f"arch {args.arch}, {source}: {len(train_ds)} train / {len(test_ds)} test images, "
          f"{classes} classes, metric {metric}; recipe {recipe}; seeds {list(seeds)}; "
          f"torch threads {args.threads}")

    def extract(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
        return extract_features(net, ds, batch_size=args.batch_size)

    def sweep(get) -> tuple[float, list[float], float]:
        t0 = time.perf_counter()
        accs, train_s = [], 0.0
        for seed in seeds:
            res = linear_finetune(get("train"), get("test"), num_classes=classes, metric=metric,
                                  recipe=recipe, seed=seed)
            accs.append(res.accuracy_best)
            train_s += res.train_time_s
        return time.perf_counter() - t0, accs, train_s

    splits = {"train": train_ds, "test": test_ds}
    with tempfile.TemporaryDirectory() as root:
        cache = FeatureCache(Path(root))
        key = {"checkpoint_sha": "random-init-seed0", "arch": args.arch, "dataset": args.dataset,
               "transform": "feature", "image_size": size}
        cached_s, cached_acc, cached_train = sweep(
            lambda split: cache.get_or_compute({**key, "split": split},
                                               lambda: extract(splits[split])))
        stats = cache.stats
    naive_s, naive_acc, naive_train = sweep(lambda split: extract(splits[split]))

    if cached_acc != naive_acc:
        print(f"MISMATCH: cached accuracies {cached_acc} != naive {naive_acc}")
        return 1
    ratio = naive_s / cached_s
    print(f"cache stats: {stats.misses} misses, {stats.hits} hits, {stats.rebuilds} rebuilds")
    print(f"naive  (extract per seed): {naive_s:8.2f} s  (linear training {naive_train:.2f} s)")
    print(f"cached (extract once):     {cached_s:8.2f} s  (linear training {cached_train:.2f} s)")
    print(f"accuracy_best per seed (identical both ways): {[round(a, 2) for a in cached_acc]}")
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"ratio naive/cached: {ratio:.2f}x ({verdict} the >= {TARGET}x target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
