"""What the one training engine costs: ``engine.train_one_epoch`` vs a hand-written SGD loop.

Both run the same epochs on the same data in one process, interleaved, and must end with
bit-identical weights (checked). Two workloads: the linear head on cached features (the
study's most frequent loop, tiny steps where per-step overhead shows most) and a masked
full-finetuning epoch of resnet_tiny (the mask re-applied after every step).

    python benchmarks/engine_overhead.py
    python benchmarks/engine_overhead.py --reps 7 --threads 2
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables.training.full import FixedMask  # noqa: E402
from trainables.models import build_model  # noqa: E402
from trainables.training.engine import Hooks, tensor_batches, train_one_epoch  # noqa: E402


def hand_epoch(model: nn.Module, opt: torch.optim.Optimizer, batches, after: Callable | None):
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64)
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after is not None:
            after()
        loss_sum += loss.detach().double() * y.numel()
    return float(loss_sum)


def engine_epoch(model: nn.Module, opt: torch.optim.Optimizer, batches, after: Callable | None):
    return train_one_epoch(model, opt, batches, "cpu", hooks=Hooks(after_step=after)).loss_sum


def linear_workload(seed: int):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(4000, 256, generator=g), torch.randint(0, 10, (4000,), generator=g)

    def make():
        torch.manual_seed(seed)
        head = nn.Linear(256, 10)
        opt = torch.optim.SGD(head.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        return head, opt, None

    return make, lambda: tensor_batches(x, y, 64, torch.Generator().manual_seed(seed))


def full_workload(seed: int):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(256, 3, 32, 32, generator=g), torch.randint(0, 10, (256,), generator=g)

    def make():
        torch.manual_seed(seed)
        model = build_model("resnet_tiny", 10)
        masks = {n: torch.rand(p.shape, generator=torch.Generator().manual_seed(1)) > 0.9
                 for n, p in model.named_parameters() if n.endswith("weight") and p.ndim == 4}
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        return model, opt, FixedMask(model, masks).apply

    return make, lambda: tensor_batches(x, y, 32, torch.Generator().manual_seed(seed))


def measure(workload, reps: int) -> tuple[float, float, bool]:
    make, batches = workload(0)
    times: dict[str, list[float]] = {"hand": [], "engine": []}
    final: dict[str, list[torch.Tensor]] = {}
    for _ in range(reps):
        for name, epoch in (("hand", hand_epoch), ("engine", engine_epoch)):
            model, opt, after = make()
            start = time.perf_counter()
            epoch(model, opt, batches(), after)
            times[name].append(time.perf_counter() - start)
            final[name] = [p.detach().clone() for p in model.parameters()]
    same = all(torch.equal(a, b) for a, b in zip(final["hand"], final["engine"]))
    return statistics.median(times["hand"]), statistics.median(times["engine"]), same


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("Command: " + shlex.join([".venv/bin/python", "benchmarks/engine_overhead.py",
                                    *(argv if argv is not None else sys.argv[1:])]))
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.reps} epochs")
    print("| workload | hand loop | engine | engine / hand | same weights |")
    print("|---|---|---|---|---|")
    for name, workload in (("linear head, 4000 x 256 features, batch 64", linear_workload),
                           ("full, resnet_tiny masked, 256 images 32 px, batch 32",
                            full_workload)):
        hand, engine, same = measure(workload, args.reps)
        print(f"| {name} | {hand * 1000:.1f} ms | {engine * 1000:.1f} ms | "
              f"{engine / hand:.3f} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
