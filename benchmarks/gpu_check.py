"""Is the CUDA path ready? Full finetuning under Ray Train on CUDA/NCCL and feature extraction
on a GPU, with the sparsity mask checked, and images/s of each.

The machines this project was built on have no GPU, so this path has never run there
(README, "GPU readiness"). Run it on a GPU machine and record the lines it prints in
benchmarks/RESULTS.md:

    PYTHONPATH=. python benchmarks/gpu_check.py                 # every GPU here, up to 2
    PYTHONPATH=. python benchmarks/gpu_check.py --arch resnet18 --images 1024
    PYTHONPATH=. python benchmarks/gpu_check.py --cpu           # the same steps on CPU (gloo)

What it does, on random images (nothing to download): a backbone pruned by global magnitude
to ``--sparsity`` gets a new classifier; (1) its features are extracted on ``cuda:0``
(``trainables.training.features.extract_features``) and (2) it is finetuned for ``--epochs`` under a
``TorchTrainer`` with ``use_gpu=True`` (NCCL; 1 worker, 2 when there are 2 GPUs), through
``run_full_finetune_trainer``, the sweep's own path. It checks that the features are finite,
that every masked weight is still zero after training (``masked_zeros`` = the zeros before)
and that the sparsity is the one asked for. Exit 0: all checks passed, or no CUDA here (it
says so); 1: a check failed.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time

import torch
from torch.utils.data import TensorDataset

from search_spaces.recipe import Recipe
from trainables.models import backbone, build_model, classifier_name, input_size, replace_classifier
from trainables.models.masks import count_zeros, masks_of, prunable_names
from trainables.training.features import extract_features

CLASSES = 10


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", help="default: resnet50 on a GPU, resnet_tiny with --cpu")
    p.add_argument("--sparsity", type=float, default=90.0, help="percent of prunable weights")
    p.add_argument("--images", type=int, default=512, help="random training images")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, help="Ray Train workers (default: GPUs, at most 2)")
    p.add_argument("--cpu", action="store_true", help="run the same steps on CPU (gloo)")
    return p.parse_args(argv)


def sparse_model(arch: str, sparsity: float, seed: int = 0) -> torch.nn.Module:
    """``arch`` pruned by global magnitude to ``sparsity`` percent, with a new classifier."""
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=1000)
    head = classifier_name(arch)
    names = prunable_names(model, exclude=[head])
    params = dict(model.named_parameters())
    magnitudes = torch.cat([params[n].detach().abs().flatten() for n in names])
    k = max(1, int(sparsity / 100 * magnitudes.numel()))
    threshold = magnitudes.kthvalue(k).values
    with torch.no_grad():
        for n in names:
            params[n].mul_(params[n].abs() > threshold)
    return replace_classifier(model, arch, CLASSES)


def random_images(n: int, size: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, size, size, generator=g),
                         torch.arange(n) % CLASSES)


def build(arch: str, sparsity: float, images: int) -> tuple:
    """What ``FullRun.build`` returns: runs on every Ray Train worker."""
    model = sparse_model(arch, sparsity)
    masks = masks_of(model, exclude=[classifier_name(arch)])
    size = input_size(arch)
    return model, masks, random_images(images, size, 1), random_images(images // 4, size, 2)


def zeros_of(model: torch.nn.Module, arch: str) -> tuple[int, int]:
    names = prunable_names(model, exclude=[classifier_name(arch)])
    return count_zeros(dict(model.named_parameters()), names)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cuda = torch.cuda.is_available()
    gpus = torch.cuda.device_count() if cuda else 0
    print(f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}), "
          f"GPUs: {gpus}" + "".join(f"\n  cuda:{i} {torch.cuda.get_device_name(i)}"
                                    for i in range(gpus)))
    if not cuda and not args.cpu:
        print("no CUDA device here: the CUDA path cannot be checked on this machine (run it on "
              "a GPU machine, or with --cpu for the same steps on CPU); nothing failed")
        return 0
    use_gpu = cuda and not args.cpu
    arch = args.arch or ("resnet50" if use_gpu else "resnet_tiny")
    device = torch.device("cuda:0" if use_gpu else "cpu")
    workers = args.workers or (min(gpus, 2) if use_gpu else 1)
    print(f"{'GPU' if use_gpu else 'CPU (--cpu)'}: {arch} at {args.sparsity:g} % sparsity, "
          f"{args.images} random images of {input_size(arch)} px, {workers} Ray Train "
          f"worker(s) ({'NCCL' if use_gpu else 'gloo'})")
    failed: list[str] = []

    # 1. Feature extraction on the device.
    model, masks, train_ds, _ = build(arch, args.sparsity, args.images)
    zeros, total = zeros_of(model, arch)
    got = 100.0 * zeros / total
    if abs(got - args.sparsity) > 0.5:
        failed.append(f"sparsity after pruning {got:.2f} %, asked {args.sparsity:g} %")
    net = backbone(model, arch)
    extract_features(net, random_images(args.batch_size, input_size(arch), 3),
                     batch_size=args.batch_size, device=device)  # warm-up (cuDNN autotune)
    if use_gpu:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    feats, labels = extract_features(net, train_ds, batch_size=args.batch_size, device=device)
    if use_gpu:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    ok = bool(torch.isfinite(torch.from_numpy(feats)).all()) and len(labels) == args.images
    if not ok:
        failed.append("features are not finite or not one per image")
    print(f"feature extraction: {args.images / dt:.0f} images/s on {device} "
          f"(batch {args.batch_size}, {feats.shape[1]} features each) "
          f"{'ok' if ok else 'FAILED'}")

    # 2. Full finetuning under Ray Train, the sweep's path.
    import ray

    from trainables.entry.ray_train import run_full_finetune_trainer
    from trainables.training.full import FullRun

    ray.init(num_cpus=max(2, os.cpu_count() or 2), num_gpus=gpus if use_gpu else 0,
             include_dashboard=False, log_to_driver=False)
    run = FullRun(build=functools.partial(build, arch, args.sparsity, args.images), arch=arch,
                  num_classes=CLASSES, metric="top1", seed=0,
                  recipe=Recipe(epochs=args.epochs, lr=0.01, batch_size=args.batch_size,
                                milestones=()))
    with tempfile.TemporaryDirectory() as storage:
        t0 = time.perf_counter()
        try:
            metrics = run_full_finetune_trainer(
                run, num_workers=workers, use_gpu=use_gpu, storage_path=storage,
                name="gpu-check", tune_callback=False, cpus_per_worker=1,
                start_timeout_s=300)
        except Exception as e:  # noqa: BLE001 - the check reports what broke
            metrics = {}
            failed.append(f"full finetuning raised {type(e).__name__}: {str(e)[:2000]}")
        dt = time.perf_counter() - t0
    ray.shutdown()
    if metrics:
        held = metrics.get("masked_zeros") == zeros and metrics.get("masked_total") == total
        if not held:
            failed.append(f"mask not held: {metrics.get('masked_zeros')} zeros of "
                          f"{metrics.get('masked_total')} after training, {zeros} of {total} "
                          "before")
        seen = args.images * args.epochs
        print(f"full finetuning: {seen / dt:.0f} images/s over {workers} worker(s), "
              f"{dt:.1f} s for {args.epochs} epoch(s) including Ray Train's start-up; "
              f"mask {'held' if held else 'BROKEN'} ({zeros}/{total} zeros, {got:.2f} %); "
              f"accuracy {metrics.get('accuracy_last', float('nan')):.1f} (random labels)")
    for f in failed:
        print(f"FAILED: {f}", file=sys.stderr)
    print("all checks passed" if not failed else f"{len(failed)} check(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
