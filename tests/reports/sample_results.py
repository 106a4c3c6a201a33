"""Results tables for the reports tests: a small hand-made one and a realistic fake one.

A module of its own (not conftest.py) so tests can import the builders by a unique name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Hand-made grid: 2 datasets (cifar10 general, flowers specialized), dense + AC/DC + GMP at
# 80/90 % + LTH-T at 90 %; linear with seeds 1-3, full with seeds 1-2. The per-seed accuracies
# are chosen so that each cell's mean and sample std are round: (m-1, m, m+1) has std 1,
# (m-0.5, m, m+0.5) std 0.5, (m-1, m+1) std sqrt(2), (m-0.5, m+0.5) std sqrt(0.5).
LINEAR_SEEDS = {
    # (method, sparsity, dataset): accuracies of seeds 1, 2, 3
    ("dense", 0, "cifar10"): (89.0, 90.0, 91.0),  # mean 90, err 10
    ("AC/DC", 80, "cifar10"): (87.0, 88.0, 89.0),  # mean 88, err 12
    ("GMP", 80, "cifar10"): (84.5, 85.0, 85.5),  # mean 85, err 15
    ("AC/DC", 90, "cifar10"): (85.0, 86.0, 87.0),  # mean 86, err 14
    ("GMP", 90, "cifar10"): (85.0, 85.5, 86.0),  # mean 85.5, err 14.5
    ("LTH-T", 90, "cifar10"): (94.0, 95.0, 96.0),  # mean 95, err 5
    ("dense", 0, "flowers"): (79.0, 80.0, 81.0),  # mean 80, err 20
    ("AC/DC", 80, "flowers"): (83.0, 84.0, 85.0),  # mean 84, err 16
    ("GMP", 80, "flowers"): (75.0, 76.0, 77.0),  # mean 76, err 24
    ("AC/DC", 90, "flowers"): (81.0, 82.0, 83.0),  # mean 82, err 18
    ("GMP", 90, "flowers"): (74.0, 75.0, 76.0),  # mean 75, err 25
    ("LTH-T", 90, "flowers"): (69.0, 70.0, 71.0),  # mean 70, err 30
}
FULL_SEEDS = {
    # (method, sparsity, dataset): accuracies of seeds 1, 2
    ("dense", 0, "cifar10"): (95.0, 97.0),  # mean 96, std sqrt 2, err 4
    ("AC/DC", 80, "cifar10"): (94.5, 95.5),  # mean 95, std 0.707, err 5
    ("GMP", 80, "cifar10"): (96.5, 97.5),  # mean 97, std 0.707, err 3
    ("AC/DC", 90, "cifar10"): (93.0, 95.0),  # mean 94, err 6
    ("GMP", 90, "cifar10"): (95.0, 97.0),  # mean 96, std 1.414, err 4
    ("LTH-T", 90, "cifar10"): (97.0, 98.0),  # mean 97.5, std 0.707, err 2.5
    ("dense", 0, "flowers"): (89.0, 91.0),  # mean 90, err 10
    ("AC/DC", 80, "flowers"): (87.0, 89.0),  # mean 88, err 12
    ("GMP", 80, "flowers"): (90.0, 92.0),  # mean 91, std 1.414, err 9
    ("AC/DC", 90, "flowers"): (85.0, 87.0),  # mean 86, err 14
    ("GMP", 90, "flowers"): (88.0, 90.0),  # mean 89, std 1.414, err 11
    ("LTH-T", 90, "flowers"): (84.0, 86.0),  # mean 85, err 15
}


def hand_table() -> pd.DataFrame:
    rows = []
    for mode, cells in (("linear", LINEAR_SEEDS), ("full", FULL_SEEDS)):
        for (method, sparsity, dataset), accs in cells.items():
            for seed, acc in enumerate(accs, start=1):
                rows.append(
                    dict(method=method, sparsity=sparsity, dataset=dataset, mode=mode,
                         seed=seed, accuracy=acc)
                )
    return pd.DataFrame(rows)


# Dense accuracies of the paper's Table 1 (linear, full) per dataset, to make the fake realistic.
PAPER_DENSE = {
    "aircraft": (49.2, 83.6), "birdsnap": (57.7, 72.4), "caltech101": (91.9, 93.5),
    "caltech256": (84.8, 86.1), "cars": (53.4, 90.3), "cifar10": (91.2, 97.4),
    "cifar100": (74.6, 85.6), "dtd": (73.5, 76.2), "flowers": (91.6, 95.0),
    "food101": (73.2, 87.3), "pets": (92.6, 93.4), "sun397": (60.1, 64.8),
}
FAKE_METHODS = {
    # name: (sparsities, linear shift per 10 % sparsity, full shift, regulariser?)
    "GMP": ((80, 90, 95, 98), -0.6, -0.4, False),
    "WoodFisher": ((80, 90, 95, 98), -0.4, -0.3, False),
    "AC/DC": ((80, 90, 95, 98), 0.5, -0.8, True),
    "STR": ((80, 90, 95, 98), 0.2, -1.0, True),
    "RigL ERK 1x": ((80, 90, 95), 0.1, -0.9, True),
    "RigL ERK 5x": ((80, 90, 95), 0.4, -0.7, True),
    "LTH-T": ((80, 90, 95, 98), -8.0, -1.5, False),
}


def fake_results(rng_seed: int = 0, arch: str = "resnet50") -> pd.DataFrame:
    """A paper-sized results table: 12 datasets, 7 methods, upstream and speed rows."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for dataset, (lin, full) in PAPER_DENSE.items():
        hard = (full - lin) / 40.0  # 0..1, specialised tasks gain more from full finetuning
        for mode, base, seeds in (("linear", lin, (21, 51, 81, 111, 141)),
                                  ("full", full, (1, 2, 3))):
            cells = [("Dense", 0, 0.0)]
            for method, (sps, lin_shift, full_shift, reg) in FAKE_METHODS.items():
                for s in sps:
                    steps = (s - 70) / 10.0
                    shift = lin_shift if mode == "linear" else full_shift
                    bonus = 3.0 * hard * steps if (reg and mode == "linear") else 0.0
                    cells.append((method, s, shift * steps + bonus))
            for method, s, delta in cells:
                mean = min(99.5, base + delta)
                for seed in seeds:
                    acc = float(mean + rng.normal(0, 0.15 if mode == "linear" else 0.3))
                    rows.append(dict(method=method, sparsity=s, dataset=dataset, mode=mode,
                                     seed=seed, accuracy=round(acc, 3), arch=arch,
                                     status="finished",
                                     accuracy_last=round(acc - abs(rng.normal(0, 0.2)), 3)))
    # A failed trial and a missing one.
    rows.append(dict(method="STR", sparsity=95, dataset="dtd", mode="full", seed=3,
                     accuracy=np.nan, arch=arch, status="failed"))
    rows = [r for r in rows if not (r["method"] == "STR" and r["sparsity"] == 95
                                    and r["dataset"] == "dtd" and r["mode"] == "full"
                                    and r["seed"] == 3 and r["status"] == "finished")]
    rows = [r for r in rows if not (r["method"] == "GMP" and r["sparsity"] == 98
                                    and r["dataset"] == "cars" and r["mode"] == "linear"
                                    and r["seed"] == 141)]
    filters = {"GMP": 0.4, "WoodFisher": 0.5, "AC/DC": 2.0, "STR": 1.0,
               "RigL ERK 1x": 0.3, "RigL ERK 5x": 1.2}
    rows.append(dict(method="Dense", sparsity=0, dataset="imagenet", mode="upstream",
                     seed=0, accuracy=76.1, arch=arch, filters_pruned_share=0.0,
                     sparsity_measured=0.0))
    for method, (sps, *_rest) in FAKE_METHODS.items():
        if method == "LTH-T":
            continue
        for s in sps:
            rows.append(dict(method=method, sparsity=s, dataset="imagenet", mode="upstream",
                             seed=0, accuracy=round(76.1 - (s - 70) / 5, 2), arch=arch,
                             filters_pruned_share=filters[method] * (s - 70) / 1000.0,
                             sparsity_measured=s - 0.1))
    dense_epoch = {"pets": 38.0, "flowers": 21.0, "dtd": 19.0, "caltech101": 31.0}
    for dataset, t_dense in dense_epoch.items():
        for method in ("GMP", "WoodFisher", "AC/DC", "STR", "RigL ERK 1x", "RigL ERK 5x"):
            speedup = 2.0 + rng.uniform(0, 1.0)
            online = round(80.0 - rng.uniform(0, 2.0), 2)  # the dense online run: 80 %
            rows.append(dict(method=method, sparsity=90, dataset=dataset, mode="speed",
                             seed=0, accuracy=np.nan, arch=arch, batch=64,
                             epoch_time_s=round(t_dense / speedup, 2),
                             dense_epoch_time_s=t_dense, speedup_epoch=round(speedup, 3),
                             speedup_inference=round(speedup + 1.0, 3),
                             loader_share=round(0.05 * speedup, 3), dense_loader_share=0.05,
                             online_accuracy=online, dense_online_accuracy=80.0,
                             online_accuracy_gap=round(online - 80.0, 2)))
    return pd.DataFrame(rows)
