"""Costs of full finetuning beyond the training itself: keeping the mask, starting Ray Train.

1. Per-step cost of keeping masks fixed (``FixedMask.apply`` after every SGD step) as a ratio
   to the same step without it, on a magnitude-pruned resnet_tiny. Masked and unmasked blocks
   of steps alternate (so machine load drifts hit both alike); the ratio is of the medians of
   per-step times. For reference, the generic ``masks.apply_masks`` is timed the same way.
2. ``--trainer-startup``: wall time of ``TorchTrainer.fit()`` for a trivial loop (one report)
   with one CPU worker, Ray already running: the fixed price of each full-finetuning trial.

    python benchmarks/mask_overhead.py
    python benchmarks/mask_overhead.py --trainer-startup --startup-reps 3

Target: masked/unmasked per-step ratio <= 1.05.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from trainables.training.full import FixedMask
from trainables.models import build_model, replace_classifier
from trainables.models.masks import apply_masks, masks_of, prunable_names

TARGET = 1.05


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet_tiny")
    p.add_argument("--sparsity", type=int, default=90, help="percent of prunable weights zeroed")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--blocks", type=int, default=8, help="alternating blocks per variant")
    p.add_argument("--steps", type=int, default=10, help="steps per block")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--trainer-startup", action="store_true", help="also time TorchTrainer.fit()")
    p.add_argument("--startup-reps", type=int, default=3)
    return p.parse_args(argv)


def pruned_model(arch: str, target: float) -> tuple[torch.nn.Module, dict]:
    """Random weights pruned globally by magnitude to ``target`` (fraction), new 10-way head."""
    torch.manual_seed(0)
    model = build_model(arch, num_classes=1000)
    names = prunable_names(model, exclude=["fc"])
    params = dict(model.named_parameters())
    mags = torch.cat([params[n].detach().abs().flatten() for n in names])
    threshold = mags.kthvalue(max(1, int(target * mags.numel()))).values
    with torch.no_grad():
        for n in names:
            params[n].mul_(params[n].abs() > threshold)
    replace_classifier(model, arch, 10)
    return model, masks_of(model, exclude=["fc"])


def time_masking(args: argparse.Namespace) -> int:
    model, masks = pruned_model(args.arch, args.sparsity / 100)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, generator=g)
    y = torch.randint(0, 10, (args.batch_size,), generator=g)

    variants = {}
    for name in ("unmasked", "FixedMask", "apply_masks"):
        net = copy.deepcopy(model).train()
        opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
        fixed = FixedMask(net, masks)
        after = {"unmasked": lambda: None, "FixedMask": fixed.apply,
                 "apply_masks": lambda net=net: apply_masks(net, masks)}[name]
        variants[name] = (net, opt, after, [])

    def step(net, opt, after) -> None:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        after()

    for net, opt, after, _ in variants.values():  # warm-up
        for _ in range(3):
            step(net, opt, after)
    for _ in range(args.blocks):
        for net, opt, after, times in variants.values():
            for _ in range(args.steps):
                t0 = time.perf_counter()
                step(net, opt, after)
                times.append(time.perf_counter() - t0)

    # the re-masking alone, for scale
    fixed = FixedMask(variants["FixedMask"][0], masks)
    t0 = time.perf_counter()
    for _ in range(200):
        fixed.apply()
    apply_us = (time.perf_counter() - t0) / 200 * 1e6

    med = {k: statistics.median(v[3]) for k, v in variants.items()}
    n_masked = sum(int(m.numel()) for m in masks.values())
    print(f"{args.arch} at {args.sparsity} % ({len(masks)} masked tensors, {n_masked} weights), "
          f"batch {args.batch_size} x {args.image_size} px, torch threads {args.threads}, "
          f"{args.blocks} alternating blocks x {args.steps} steps per variant")
    for k, v in med.items():
        print(f"  median step {k:12s}: {v * 1e3:8.2f} ms  (ratio {v / med['unmasked']:.3f})")
    print(f"  FixedMask.apply alone: {apply_us:.0f} us per call")
    ratio = med["FixedMask"] / med["unmasked"]
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"masked/unmasked per-step ratio: {ratio:.3f} ({verdict} the <= {TARGET} target)")
    return 0


def _trivial_loop(config: dict) -> None:
    import ray.train

    ray.train.report({"done": 1})


def time_trainer_startup(reps: int) -> None:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - t0:.1f} s (paid once per sweep)")
    times = []
    with tempfile.TemporaryDirectory() as storage:
        for i in range(reps):
            trainer = TorchTrainer(
                _trivial_loop,
                scaling_config=ScalingConfig(num_workers=1, use_gpu=False,
                                             resources_per_worker={"CPU": 1}),
                run_config=RunConfig(storage_path=storage, name=f"startup-{i}"),
            )
            t0 = time.perf_counter()
            trainer.fit()
            times.append(time.perf_counter() - t0)
    ray.shutdown()
    print(f"TorchTrainer.fit() of a trivial loop, 1 CPU worker: "
          f"{', '.join(f'{t:.1f}' for t in times)} s (median {statistics.median(times):.1f} s)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    print("Command: " + shlex.join([".venv/bin/python", "benchmarks/mask_overhead.py", *given]))
    torch.set_num_threads(args.threads)
    code = time_masking(args)
    if args.trainer_startup:
        time_trainer_startup(args.startup_reps)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
