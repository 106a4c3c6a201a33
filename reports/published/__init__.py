"""The paper's published results, shipped as package data, read into the long results table.

The per-seed transfer results are the reference repository's own ``raw_results/`` files,
read by `read_reference_results` in their own format; Table 1, Table 3 and the speed figures
are typed in from the paper's text. ``data/SOURCE.md`` names the source and licence of each.
`paper_results` gives one table a report, the findings and a study's comparison all read.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from common import columns as C
from reports.naming import canonical_dataset, catalog_method, default_method_label

DATA = resources.files(__package__) / "data"
RAW = "raw_results"
REPOSITORY = "IST-DASLab/sparse-imagenet-transfer"
# (arch, mode) -> file of the reference's raw_results/
REFERENCE_FILES: dict[tuple[str, str], str] = {
    ("resnet50", "linear"): "linear_transfer_results.txt",
    ("resnet50", "full"): "full_transfer_results.txt",
    ("mobilenet_v1", "linear"): "linear_mobilenet_transfer_results.txt",
    ("mobilenet_v1", "full"): "full_mobilenet_transfer_results.txt",
}
REFERENCE_COLUMNS = ("dset", "model", "sparsity", "seed", "val_acc")
# Seeds per cell the reference ran (its run_*.sh: MobileNetV1 full finetuning with seed 21 only).
EXPECTED_SEEDS = {"resnet50": {"linear": 5, "full": 3}, "mobilenet_v1": {"linear": 5, "full": 1}}
SOURCE = "source"  # column: the file (or the paper's table) a row comes from


def method_key(label: object) -> str:
    """This project's key of a method the reference labels ``label`` (``"AC/DC"``: ``acdc``,
    by the catalog's labels and aliases); a method the catalog does not know keeps its label."""
    return catalog_method(label) or str(label).strip()


def read_reference_results(path: Path, *, arch: str, mode: str) -> pd.DataFrame:
    """One ``raw_results/`` file of the reference code as rows of the long results table.

    The format: a CSV with header ``dset,model,sparsity,seed,val_acc`` (a trailing empty column
    allowed), sparsity and accuracy as fractions, seeds as ``seed_<n>``. Rows get this
    project's keys (``acdc``, ``birdsnap``) with the reference's label in ``method_label``,
    percent values, and ``arch``/``mode`` as given.

    Raises:
        ValueError: a column is missing or a value unreadable; the message names the file,
            the column and the first bad line.
    """
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = frame.loc[:, [c for c in frame.columns if not c.startswith("Unnamed")]]
    missing = [c for c in REFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a reference raw_results file: lacks column(s) "
                         f"{', '.join(missing)} (expected {','.join(REFERENCE_COLUMNS)})")
    seed = _numbers(frame["seed"].str.removeprefix("seed_"), path, "seed")
    sparsity = _numbers(frame["sparsity"], path, "sparsity")
    accuracy = _numbers(frame["val_acc"], path, "val_acc")
    return pd.DataFrame({
        C.ARCH: arch,
        C.MODE: mode,
        C.METHOD: frame["model"].map(method_key),
        C.METHOD_LABEL: frame["model"].str.strip(),
        C.SPARSITY: np.round(sparsity * 100, 6).astype(int),
        C.DATASET: frame["dset"].map(lambda d: canonical_dataset(d) or d.strip()),
        C.SEED: seed.astype(int),
        C.ACCURACY: accuracy * 100,
        SOURCE: f"{REPOSITORY} raw_results/{Path(path).name}",
    })


def _numbers(values: pd.Series, path: Path, column: str) -> pd.Series:
    out = pd.to_numeric(values, errors="coerce")
    if out.isna().any():
        line = int(np.flatnonzero(out.isna().to_numpy())[0]) + 2  # header is line 1
        raise ValueError(f"{path}: column '{column}' must be a number on every line; line "
                         f"{line} has {values.iloc[line - 2]!r}")
    return out


def transfer_results() -> pd.DataFrame:
    """Every per-seed transfer result the reference published (ResNet50 and MobileNetV1,
    linear and full), in the order of `REFERENCE_FILES`."""
    frames = []
    for (arch, mode), name in REFERENCE_FILES.items():
        with resources.as_file(DATA / RAW / name) as path:
            frames.append(read_reference_results(path, arch=arch, mode=mode))
    return pd.concat(frames, ignore_index=True)


def _csv(name: str) -> pd.DataFrame:
    with resources.as_file(DATA / name) as path:
        return pd.read_csv(path)


def paper_table1() -> pd.DataFrame:
    """Table 1 as printed: dataset, mode, sparsity (0 = dense), mean, std."""
    return _csv("paper_table1.csv")


def paper_table3() -> pd.DataFrame:
    """Table 3 as printed: method, sparsity, top1, real, v2 (ImageNet accuracy, percent)."""
    return _csv("paper_table3.csv")


def upstream_rows() -> pd.DataFrame:
    """Table 3 as ``checkpoint`` rows of the long table (one per ResNet50 backbone)."""
    t = paper_table3()
    return pd.DataFrame({
        C.ARCH: "resnet50", C.MODE: "checkpoint", C.METHOD: t["method"],
        C.METHOD_LABEL: t["method"].map(default_method_label), C.SPARSITY: t["sparsity"],
        C.DATASET: "imagenet", C.SEED: 0, C.ACCURACY: t["top1"], C.ACCURACY_REAL: t["real"],
        C.ACCURACY_V2: t["v2"], C.UPSTREAM_EVAL: "as printed in the paper's Table 3",
        SOURCE: "the paper's Table 3",
    })


SPEED_METHOD = "figure4"  # the speed rows stand for the paper's 90 % ResNet50 backbones


def speed_rows() -> pd.DataFrame:
    """The paper's speed figures as ``speed`` rows: the lower bounds its sentences state."""
    s = _csv("paper_speed.csv")
    return pd.DataFrame({
        C.ARCH: "resnet50", C.MODE: "speed", C.METHOD: SPEED_METHOD,
        C.METHOD_LABEL: "Figure 4 backbones (90 %)", C.SPARSITY: 90,
        C.DATASET: s["dataset"].fillna(""), C.SEED: 0, C.ACCURACY: np.nan,
        C.SPEEDUP_EPOCH: s["speedup_epoch"], C.SPEEDUP_INFERENCE: s["speedup_inference"],
        SOURCE: s["source"],
    })


def paper_results() -> pd.DataFrame:
    """The paper's published results as one long results table: the reference's per-seed
    transfer results, Table 3's upstream accuracies and the stated speed-ups."""
    return pd.concat([transfer_results(), upstream_rows(), speed_rows()], ignore_index=True)


TITLE = "The paper's published results"
DESCRIPTION = (f"the reference repository {REPOSITORY} (raw_results/, Apache-2.0), Table 3 "
               "and the speed figures of the paper's text (reports/published/data/SOURCE.md)")
