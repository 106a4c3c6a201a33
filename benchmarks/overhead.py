"""Per-trial orchestration overhead of the sweep, for a grid of trivial trials.

Overhead per trial = (sweep wall time - the trials' own compute time / concurrency) / trials,
where the trials' own compute is what each trial reports as ``train_time_s`` (a one-epoch
linear head on cached features: milliseconds). Ray is started once before timing, and the
upstream model and its features are made in an untimed warm-up run, so the timed run is
Ray Tune scheduling, trial processes, per-epoch reports, the ledger, MLflow runs and
aggregates: what each trial costs beyond its own work. Target: at most 1 s per trial.

    .venv/bin/python benchmarks/overhead.py --trials 40
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")


def trivial_study(seeds: tuple[int, ...]):
    from orchestrator.smoke import smoke_study
    from search_spaces.loader import load_study, narrow

    s = narrow(smoke_study(load_study("tiny")), methods="dense", datasets="digits",
               modes="linear")
    modes = tuple(dataclasses.replace(m, seeds=seeds,
                                      recipe=dataclasses.replace(m.recipe, epochs=1,
                                                                 milestones=()))
                  for m in s.modes)
    return dataclasses.replace(s, modes=modes,
                               speed=dataclasses.replace(s.speed, enabled=False))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--cpus", type=int, default=2)
    args = p.parse_args()
    import pandas as pd
    import ray

    from orchestrator.runner import run_sweep
    from orchestrator.sweep import SweepOptions

    print(f"command: .venv/bin/python benchmarks/overhead.py --trials {args.trials} "
          f"--cpus {args.cpus}")
    out = Path(tempfile.mkdtemp(prefix="overhead-"))
    options = SweepOptions(out_dir=out, num_cpus=args.cpus, speed=False, report=False,
                           verbose=0)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    t0 = time.perf_counter()
    run_sweep(trivial_study((1,)), options)  # warm-up: pretrain, features, one trial
    warm = time.perf_counter() - t0
    seeds = tuple(range(100, 100 + args.trials))
    study = trivial_study(seeds)
    t0 = time.perf_counter()
    code = run_sweep(study, options)
    wall = time.perf_counter() - t0
    df = pd.read_parquet(out / "results.parquet")
    df = df[(df["mode"] == "linear") & df["seed"].isin(seeds)]
    compute = float(df["train_time_s"].sum())
    conc = max(1, int(args.cpus / study.mode("linear").cpus))
    per = (wall - compute / conc) / len(df)
    print(f"exit code {code}; warm-up run {warm:.1f} s (Ray start excluded)")
    print("| trials | wall s | trials' own compute s | concurrency | overhead s/trial | "
          "target |")
    print("|---|---|---|---|---|---|")
    print(f"| {len(df)} | {wall:.1f} | {compute:.2f} | {conc} | {per:.2f} | <= 1.0 |")
    ray.shutdown()


if __name__ == "__main__":
    main()
