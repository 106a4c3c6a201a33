"""How firmly each finding's verdict stands on a study's seeds: verdicts of seed resamples.

A finding checked on a handful of seeds per cell can turn on noise. Each resample draws, in
every finetuning cell (mode, arch, method, sparsity, dataset), as many rows as the cell has,
with replacement, from its own seeds, and checks the eight findings on that table with the
report's own rules (``reports.findings.check_findings``). The share of resamples in which a
finding holds says whether the study's own verdict is firm (near 0 or 100 %) or within seed
noise (in between). Several results tables are compared side by side, e.g. two runs of the
default study made with different random streams:

    python benchmarks/findings_stability.py runs/tiny/results.parquet other/results.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import columns as C  # noqa: E402
from reports.findings.check import check_findings  # noqa: E402
from reports.findings.verdicts import HOLDS  # noqa: E402

CELL = [C.MODE, C.ARCH, C.METHOD, C.SPARSITY, C.DATASET]
MODES = ("linear", "full")


def resample(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The table with every finetuning cell's rows drawn again from its own, with replacement."""
    tuned = df[df[C.MODE].isin(MODES)]
    picks = [rows.iloc[rng.integers(0, len(rows), len(rows))]
             for _, rows in tuned.groupby(CELL, dropna=False)]
    return pd.concat([df[~df[C.MODE].isin(MODES)], *picks], ignore_index=True)


def stability(path: Path, resamples: int, seed: int) -> tuple[list[str], list[float]]:
    """The study's own verdicts and, per finding, the share of resamples that hold."""
    df = pd.read_parquet(path)
    own = [v.verdict for v in check_findings(df)]
    rng = np.random.default_rng(seed)
    holds = np.zeros(len(own))
    for _ in range(resamples):
        holds += [v.verdict == HOLDS for v in check_findings(resample(df, rng))]
    return own, list(holds / resamples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="+", type=Path, help="results.parquet files")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = [stability(p, args.resamples, args.seed) for p in args.tables]
    print(f"{args.resamples} seed resamples per table; cell: verdict on the table's own seeds "
          "(share of resamples in which the finding holds)\n")
    print("| finding | " + " | ".join(str(p) for p in args.tables) + " |")
    print("|---|" + "---|" * len(args.tables))
    for i in range(len(results[0][0])):
        cells = [f"{own[i]} ({share[i]:.0%})" for own, share in results]
        print(f"| {i + 1} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
