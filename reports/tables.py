"""The numbers of the paper's tables and figures, as plain functions of a long results table.

Each function takes the long table (see `common.columns`), normalises it with
`reports.prepare.prepare` and returns a new DataFrame. When the input has an ``arch`` column,
every output is also keyed by ``arch`` (first column), so tables of several backbones never mix.
Failed trials (``status == "failed"``) and empty accuracies never enter a number.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from common.columns import (
    ACCURACY,
    ACCURACY_REAL,
    ACCURACY_V2,
    ACCURACY_V2_VARIANTS,
    ARCH,
    DATASET,
    DENSE_EPOCH_TIME_S,
    DENSE_LOADER_SHARE,
    DENSE_ONLINE_ACCURACY,
    EPOCH_EXTRAPOLATED,
    EPOCH_TIME_S,
    FILTERS_PRUNED_SHARE,
    GROUP,
    LAYER_STATS_JSON,
    LOADER_SHARE,
    METHOD,
    MODE,
    ONLINE_ACCURACY,
    ONLINE_ACCURACY_GAP,
    SEED,
    SPARSITY,
    SPARSITY_MEASURED,
    SPEEDUP_EPOCH,
    SPEEDUP_INFERENCE,
    STATUS,
    UPSTREAM_EVAL,
)
from reports.naming import GENERAL, SPECIALIZED, dataset_sort_key, is_lottery_ticket, name_key
from reports.prepare import (
    CHECKPOINT,
    FINISHED,
    FULL,
    LINEAR,
    MODE_ORDER,
    SPEED,
    TRANSFER_MODES,
    UPSTREAM,
    prepare,
    text_of,
    trial_key,
    usable,
)

ALPHA_GROUPS = ("all", GENERAL, SPECIALIZED)
CELL_STATS_COLUMNS = (METHOD, SPARSITY, DATASET, MODE, GROUP, "mean", "std", "se", "count")
ALPHA_COLUMNS = (MODE, METHOD, SPARSITY, GROUP, "alpha_mean", "alpha_se", "n_datasets")
TABLE1_COLUMNS = (DATASET, MODE, SPARSITY, "dense_mean", "dense_std", "best_methods", "best_mean",
                  "best_std", "n_seeds")


def _arch(df: pd.DataFrame) -> list[str]:
    return [ARCH] if ARCH in df.columns else []


def _empty(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=_arch(df) + list(columns))


DEFAULT_ORDER = (ARCH, MODE, SPARSITY, METHOD, DATASET, GROUP)


def sort_rows(df: pd.DataFrame, order: Iterable[str] = DEFAULT_ORDER) -> pd.DataFrame:
    """Rows in reading order of the columns in ``order`` that ``df`` has.

    Modes sort as linear, full, upstream, speed; methods and datasets by their name key; groups
    as all, general, specialized.
    """
    if df.empty:
        return df.reset_index(drop=True)
    rank = {
        ARCH: lambda s: s.astype(str),
        MODE: lambda s: s.map(lambda m: MODE_ORDER.index(m) if m in MODE_ORDER else 99),
        SPARSITY: lambda s: s,
        METHOD: lambda s: s.map(name_key),
        DATASET: lambda s: s.map(lambda d: dataset_sort_key(d)[0]),
        GROUP: lambda s: s.map(
            lambda g: ALPHA_GROUPS.index(g) if g in ALPHA_GROUPS else len(ALPHA_GROUPS)
        ),
    }
    keys = {c: rank[c](df[c]) for c in order if c in df.columns and c in rank}
    if not keys:
        return df.reset_index(drop=True)
    index = pd.DataFrame(keys, index=df.index).sort_values(list(keys), kind="stable").index
    return df.loc[index].reset_index(drop=True)


def relative_error_increase(err_sparse, err_dense):
    """alpha = (err_sparse - err_dense) / err_dense, the paper's relative increase in error.

    Errors are in percent (100 - accuracy). Negative alpha: the sparse model errs less than the
    dense one. Works on scalars and arrays; a zero dense error gives NaN (alpha is undefined).

    >>> round(relative_error_increase(12.0, 10.0), 6)   # dense err 10, sparse err 12
    0.2
    """
    sparse = np.asarray(err_sparse, dtype=float)
    dense = np.asarray(err_dense, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(dense > 0, (sparse - dense) / np.where(dense > 0, dense, 1.0), np.nan)
    return float(alpha) if alpha.ndim == 0 else alpha


def cell_stats(df: pd.DataFrame, value: str = ACCURACY) -> pd.DataFrame:
    """Mean, sample std (ddof=1), standard error and count of ``value`` over seeds per cell.

    A cell is (arch,) method, sparsity, dataset, mode; rows of every mode that carry ``value``
    enter (upstream rows give the upstream accuracy). Failed rows and NaN values are left out.

    Args:
        df: long results table.
        value: the column to summarise, e.g. ``"accuracy"`` or ``"accuracy_last"``.

    Returns:
        Columns (arch,) method, sparsity, dataset, mode, group, mean, std, se, count; std and se
        are NaN for cells with one seed.
    """
    d = prepare(df)
    d = d[usable(d, value)]
    if d.empty:
        return _empty(d, CELL_STATS_COLUMNS)
    keys = trial_key(d)
    grouped = d.groupby(keys, dropna=False, sort=False)
    out = grouped[value].agg(["mean", "std", "count"]).reset_index()
    out[GROUP] = grouped[GROUP].first().to_numpy()
    out["se"] = out["std"] / np.sqrt(out["count"])
    out["count"] = out["count"].astype(int)
    return sort_rows(out[_arch(d) + list(CELL_STATS_COLUMNS)])


def dense_stats(df: pd.DataFrame, value: str = ACCURACY) -> pd.DataFrame:
    """The dense baseline per (arch,) dataset and transfer mode: rows with sparsity 0, pooled.

    Returns:
        Columns (arch,) dataset, mode, dense_mean, dense_std (ddof=1), dense_n.
    """
    d = prepare(df)
    d = d[usable(d, value) & d[MODE].isin(TRANSFER_MODES) & (d[SPARSITY] == 0)]
    columns = [DATASET, MODE, "dense_mean", "dense_std", "dense_n"]
    if d.empty:
        return _empty(d, columns)
    keys = _arch(d) + [DATASET, MODE]
    out = d.groupby(keys, dropna=False, sort=False)[value].agg(["mean", "std", "count"])
    out = out.reset_index().rename(
        columns={"mean": "dense_mean", "std": "dense_std", "count": "dense_n"}
    )
    out["dense_n"] = out["dense_n"].astype(int)
    return sort_rows(out[keys + columns[2:]])


def alpha_by_dataset(df: pd.DataFrame, value: str = ACCURACY) -> pd.DataFrame:
    """alpha(D, S) per (arch,) mode, method, sparsity and dataset, from means over seeds.

    err = 100 - mean accuracy over seeds; the dense error is that of the pooled sparsity-0 rows
    of the same dataset and mode. Cells without a dense baseline are left out.

    Returns:
        Columns (arch,) mode, method, sparsity, dataset, group, accuracy_mean, dense_mean,
        err_sparse, err_dense, alpha.
    """
    columns = [MODE, METHOD, SPARSITY, DATASET, GROUP, "accuracy_mean", "dense_mean"]
    columns += ["err_sparse", "err_dense", "alpha"]
    d = prepare(df)
    cells = cell_stats(d, value)
    cells = cells[cells[MODE].isin(TRANSFER_MODES) & (cells[SPARSITY] > 0)]
    dense = dense_stats(d, value)
    if cells.empty or dense.empty:
        return _empty(d, columns)
    keys = _arch(d) + [DATASET, MODE]
    out = cells.merge(dense[keys + ["dense_mean"]], on=keys, how="inner")
    out = out.rename(columns={"mean": "accuracy_mean"})
    out["err_sparse"] = 100.0 - out["accuracy_mean"]
    out["err_dense"] = 100.0 - out["dense_mean"]
    out["alpha"] = relative_error_increase(
        out["err_sparse"].to_numpy(), out["err_dense"].to_numpy()
    )
    return sort_rows(out[_arch(d) + columns])


def alpha_table(df: pd.DataFrame, value: str = ACCURACY) -> pd.DataFrame:
    """Mean and standard error of alpha over datasets per (arch,) mode, method and sparsity.

    Computed over all datasets (group ``"all"``, unknown datasets included) and separately over
    the general and the specialized ones. Every method is kept, LTH-T in linear mode included
    (the paper leaves it out of its linear plots; the report does the same).

    Returns:
        Columns (arch,) mode, method, sparsity, group, alpha_mean, alpha_se, n_datasets;
        alpha_se = std(ddof=1) / sqrt(n_datasets), NaN for a single dataset.
    """
    per_dataset = alpha_by_dataset(df, value)
    per_dataset = per_dataset[per_dataset["alpha"].notna()]
    arch = [ARCH] if ARCH in per_dataset.columns else []
    if per_dataset.empty:
        return pd.DataFrame(columns=arch + list(ALPHA_COLUMNS))
    keys = arch + [MODE, METHOD, SPARSITY]
    parts = []
    for group in ALPHA_GROUPS:
        subset = per_dataset if group == "all" else per_dataset[per_dataset[GROUP] == group]
        if subset.empty:
            continue
        agg = subset.groupby(keys, dropna=False, sort=False)["alpha"].agg(["mean", "std", "count"])
        agg = agg.reset_index()
        agg[GROUP] = group
        agg["alpha_se"] = agg["std"] / np.sqrt(agg["count"])
        parts.append(agg.rename(columns={"mean": "alpha_mean", "count": "n_datasets"}))
    out = pd.concat(parts, ignore_index=True)
    out["n_datasets"] = out["n_datasets"].astype(int)
    return sort_rows(out[arch + list(ALPHA_COLUMNS)], (ARCH, MODE, METHOD, SPARSITY, GROUP))


def _overlaps(mean: float, std: float, top_mean: float, top_std: float) -> bool:
    """Whether [mean ± std] meets [top_mean ± top_std]; a missing std counts as 0."""
    std = 0.0 if pd.isna(std) else float(std)
    top_std = 0.0 if pd.isna(top_std) else float(top_std)
    return mean + std >= top_mean - top_std - 1e-9 and mean - std <= top_mean + top_std + 1e-9


def table1_detail(df: pd.DataFrame, sparsities: Iterable[int] = (80, 90)) -> pd.DataFrame:
    """`table1` plus group, dense_n and the top method's name alone (``top_method``)."""
    d = prepare(df)
    columns = list(TABLE1_COLUMNS) + [GROUP, "dense_n", "top_method"]
    d = d[d[MODE].isin(TRANSFER_MODES)]
    cells = cell_stats(d)
    dense = dense_stats(d)
    if d.empty:
        return _empty(d, columns)
    arch = _arch(d)
    rows = []
    frames = d.groupby(arch + [DATASET, MODE], dropna=False, sort=False)
    for key, frame in frames:
        key = key if isinstance(key, tuple) else (key,)
        where = dict(zip(arch + [DATASET, MODE], key))
        match_dense = dense
        match_cells = cells
        for column, v in where.items():
            match_dense = match_dense[match_dense[column] == v]
            match_cells = match_cells[match_cells[column] == v]
        for sparsity in sparsities:
            cand = match_cells[match_cells[SPARSITY] == sparsity]
            if where[MODE] == LINEAR:
                cand = cand[~cand[METHOD].map(is_lottery_ticket)]
            if cand.empty and match_dense.empty:
                continue
            rows.append({**where, SPARSITY: sparsity, GROUP: frame[GROUP].iloc[0],
                         **_dense_part(match_dense), **_best_part(cand)})
    if not rows:
        return _empty(d, columns)
    out = pd.DataFrame(rows)
    out["n_seeds"] = out["n_seeds"].astype(int)
    out["dense_n"] = out["dense_n"].astype(int)
    return sort_rows(out[arch + columns], (ARCH, DATASET, MODE, SPARSITY))


def _dense_part(dense: pd.DataFrame) -> dict[str, object]:
    """A Table 1 row's dense columns from the cell's `dense_stats` row (none: NaN, 0)."""
    if dense.empty:
        return dict(dense_mean=np.nan, dense_std=np.nan, dense_n=0)
    first = dense.iloc[0]
    return dict(dense_mean=first["dense_mean"], dense_std=first["dense_std"],
                dense_n=int(first["dense_n"]))


def _best_part(cand: pd.DataFrame) -> dict[str, object]:
    """A Table 1 row's best-sparse columns: the top method by mean (ties by name key) and every
    method whose mean ± std overlaps it, best first."""
    if cand.empty:
        return dict(best_methods="", top_method="", best_mean=np.nan, best_std=np.nan,
                    n_seeds=0)
    cand = cand.assign(_k=cand[METHOD].map(name_key))
    cand = cand.sort_values(["mean", "_k"], ascending=[False, True], kind="stable")
    top = cand.iloc[0]
    named = [r[METHOD] for _, r in cand.iterrows()
             if _overlaps(r["mean"], r["std"], top["mean"], top["std"])]
    return dict(best_methods="; ".join(named), top_method=top[METHOD], best_mean=top["mean"],
                best_std=top["std"], n_seeds=int(top["count"]))


def table1(df: pd.DataFrame, sparsities: Iterable[int] = (80, 90)) -> pd.DataFrame:
    """The paper's Table 1: per dataset and mode, dense vs the best sparse method(s).

    For each (arch,) dataset, transfer mode and sparsity in ``sparsities``: the dense mean and
    sample std (ddof=1) over seeds, and the sparse method with the highest mean. Every method
    whose interval mean ± std overlaps the top method's is named too, best first, joined by
    ``"; "``. LTH-T is a candidate in full finetuning only, as in the paper.

    Returns:
        Columns (arch,) dataset, mode, sparsity, dense_mean, dense_std, best_methods,
        best_mean, best_std, n_seeds; best_mean, best_std and n_seeds are the top method's.
    """
    detail = table1_detail(df, sparsities)
    arch = [ARCH] if ARCH in detail.columns else []
    return detail[arch + list(TABLE1_COLUMNS)]


def difficulty(df: pd.DataFrame) -> pd.DataFrame:
    """Task difficulty per dataset: dense full-finetuning minus dense linear-finetuning accuracy.

    Returns:
        Columns (arch,) dataset, group, dense_linear, dense_full, difficulty (NaN where a mode
        lacks a dense baseline).
    """
    d = prepare(df)
    dense = dense_stats(d)
    arch = _arch(d)
    columns = [DATASET, GROUP, "dense_linear", "dense_full", "difficulty"]
    if dense.empty:
        return _empty(d, columns)
    wide = dense.pivot_table(
        index=arch + [DATASET], columns=MODE, values="dense_mean", aggfunc="first"
    )
    wide = wide.reindex(columns=[LINEAR, FULL]).reset_index()
    wide.columns.name = None
    wide = wide.rename(columns={LINEAR: "dense_linear", FULL: "dense_full"})
    wide["difficulty"] = wide["dense_full"] - wide["dense_linear"]
    # From transfer rows: a speed row of the same dataset may carry no group (row order differs
    # between results.parquet and MLflow, so "the first row" would differ too).
    transfer = d[d[MODE].isin(TRANSFER_MODES)]
    groups = transfer.drop_duplicates(DATASET).set_index(DATASET)[GROUP]
    wide[GROUP] = wide[DATASET].map(groups)
    return sort_rows(wide[arch + columns])


def missing_cells(df: pd.DataFrame, expected: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Cells of the transfer grid with fewer usable seeds than expected.

    The grid is every (method, sparsity) seen in a transfer mode times every dataset seen in a
    transfer mode, for each transfer mode present (per arch). A mode expects ``expected[mode]``
    seeds when given (what the study or paper ran), else the largest number of seeds attempted
    in any of its cells. Failed rows and empty accuracies are not usable.

    Returns:
        Columns (arch,) mode, method, sparsity, dataset, n_seeds, n_expected, failed_seeds,
        missing_seeds (seeds as text, ``", "``-joined; missing seeds are named only when every
        cell of the mode used the same seeds).
    """
    d = prepare(df)
    d = d[d[MODE].isin(TRANSFER_MODES)]
    columns = [MODE, METHOD, SPARSITY, DATASET, "n_seeds", "n_expected", "failed_seeds"]
    columns += ["missing_seeds"]
    if d.empty:
        return _empty(d, columns)
    arch = _arch(d)
    d = d.assign(_ok=usable(d), _seed=text_of(d[SEED]))
    rows = []
    for arch_key, part in d.groupby(arch, dropna=False, sort=False) if arch else [((), d)]:
        arch_key = arch_key if isinstance(arch_key, tuple) else (arch_key,)
        pairs = part[[METHOD, SPARSITY]].drop_duplicates().itertuples(index=False)
        pairs = list(pairs)
        datasets = sorted(part[DATASET].unique(), key=dataset_sort_key)
        for mode in [m for m in TRANSFER_MODES if (part[MODE] == m).any()]:
            in_mode = part[part[MODE] == mode]
            per_cell = in_mode.groupby([METHOD, SPARSITY, DATASET], sort=False)
            attempted = per_cell["_seed"].nunique()
            wanted = int((expected or {}).get(mode, attempted.max()))
            all_seeds = set(in_mode["_seed"])
            ok_seeds = {k: set(g.loc[g["_ok"], "_seed"]) for k, g in per_cell}
            bad_seeds = {k: set(g.loc[~g["_ok"], "_seed"]) for k, g in per_cell}
            for method, sparsity in pairs:
                for dataset in datasets:
                    k = (method, sparsity, dataset)
                    ok = ok_seeds.get(k, set())
                    if len(ok) >= wanted:
                        continue
                    failed = bad_seeds.get(k, set()) - ok
                    missing = all_seeds - ok - failed if len(all_seeds) == wanted else set()
                    row = dict(zip(arch, arch_key))
                    row.update(
                        {
                            MODE: mode,
                            METHOD: method,
                            SPARSITY: sparsity,
                            DATASET: dataset,
                            "n_seeds": len(ok),
                            "n_expected": wanted,
                            "failed_seeds": ", ".join(_seed_order(failed)),
                            "missing_seeds": ", ".join(_seed_order(missing)),
                        }
                    )
                    rows.append(row)
    if not rows:
        return _empty(d, columns)
    return sort_rows(pd.DataFrame(rows)[arch + columns])


def _seed_order(seeds: set[str]) -> list[str]:
    def key(s: str):
        try:
            return (0, float(s), s)
        except ValueError:
            return (1, 0.0, s)

    return sorted(seeds, key=key)


def filters_table(df: pd.DataFrame) -> pd.DataFrame:
    """Appendix E: share of convolution filters fully pruned, per (arch,) method and sparsity.

    From the checkpoint stage's rows (``mode == "checkpoint"``, one per backbone of any study)
    where there are any, else from the tiny study's ``mode == "upstream"`` rows, with
    ``filters_pruned_share`` (a fraction; values above 1 are taken as percent). Returns columns
    (arch,) method, sparsity, filters_pruned_pct, sparsity_measured, upstream_accuracy, n (mean
    over rows; NaN where a column is absent).
    """
    d = prepare(df)
    columns = [METHOD, SPARSITY, "filters_pruned_pct", SPARSITY_MEASURED, "upstream_accuracy", "n"]
    if FILTERS_PRUNED_SHARE not in d.columns:
        return _empty(d, columns)
    d = d[(d[MODE] == statistics_mode(d)) & usable(d, FILTERS_PRUNED_SHARE)].copy()
    if d.empty:
        return _empty(d, columns)
    share = pd.to_numeric(d[FILTERS_PRUNED_SHARE], errors="coerce")
    d["filters_pruned_pct"] = share * 100.0 if share.max() <= 1.0 else share
    d["upstream_accuracy"] = d[ACCURACY]
    if SPARSITY_MEASURED not in d.columns:
        d[SPARSITY_MEASURED] = np.nan
    d[SPARSITY_MEASURED] = pd.to_numeric(d[SPARSITY_MEASURED], errors="coerce")
    if d[SPARSITY_MEASURED].max() <= 1.0:
        d[SPARSITY_MEASURED] = d[SPARSITY_MEASURED] * 100.0
    keys = _arch(d) + [METHOD, SPARSITY]
    grouped = d.groupby(keys, dropna=False, sort=False)
    out = grouped[["filters_pruned_pct", SPARSITY_MEASURED, "upstream_accuracy"]].mean()
    out["n"] = grouped.size()
    return sort_rows(out.reset_index()[keys + columns[2:]])


def statistics_mode(d: pd.DataFrame) -> str:
    """Where a backbone's statistics come from: the checkpoint stage's rows when the table has
    usable ones, else the upstream (pretrain/prune) rows of older tiny-study tables."""
    if FILTERS_PRUNED_SHARE in d.columns and (
            (d[MODE] == CHECKPOINT) & usable(d, FILTERS_PRUNED_SHARE)).any():
        return CHECKPOINT
    return UPSTREAM


TABLE3_VALUES = {ACCURACY: "top1", ACCURACY_REAL: "real", ACCURACY_V2: "v2",
                 **{c: c.removeprefix("accuracy_") for c in ACCURACY_V2_VARIANTS}}
TABLE3_COLUMNS = (METHOD, SPARSITY, *TABLE3_VALUES.values(), "n", UPSTREAM_EVAL)


def upstream_table(df: pd.DataFrame) -> pd.DataFrame:
    """Table 3: upstream top-1 of each backbone, with ReaL labels and ImageNetV2 (``v2``: the
    mean of its three variants, as the paper's; then each), per (arch,) method and sparsity,
    from the checkpoint stage's rows and their one-line ``upstream_eval``. NaN where not
    measured; in a table that records the variants, ``v2`` also where a row lacks one (a
    one-variant V2 never passes for the mean). A table without variant columns (the paper's
    printed Table 3) is taken at its word."""
    d = prepare(df)
    d = d[(d[MODE] == CHECKPOINT) & (d[STATUS] == FINISHED)].copy()
    if d.empty:
        return _empty(d, TABLE3_COLUMNS)
    for src, col in TABLE3_VALUES.items():
        d[col] = pd.to_numeric(d[src], errors="coerce") if src in d.columns else np.nan
    if any(c in df.columns for c in ACCURACY_V2_VARIANTS):
        variants = [TABLE3_VALUES[c] for c in ACCURACY_V2_VARIANTS]
        d["v2"] = d["v2"].where(d[variants].notna().all(1))
    d[UPSTREAM_EVAL] = d.get(UPSTREAM_EVAL, "")
    keys = _arch(d) + [METHOD, SPARSITY]
    grouped = d.groupby(keys, dropna=False, sort=False)
    out = grouped[list(TABLE3_VALUES.values())].mean().assign(
        n=grouped.size(), **{UPSTREAM_EVAL: grouped[UPSTREAM_EVAL].first()})
    return sort_rows(out.reset_index()[keys + list(TABLE3_COLUMNS[2:])])


LAYER_COLUMNS = (METHOD, SPARSITY, "layer_index", "layer", "layer_sparsity",
                 "layer_filters_pruned")


def layer_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per-layer sparsity and fully pruned filters (percent) of every backbone, in the
    checkpoint's layer order, from the checkpoint stage's ``layer_stats_json``."""
    import json

    d = prepare(df)
    if LAYER_STATS_JSON not in d.columns:
        return _empty(d, LAYER_COLUMNS)
    d = d[(d[MODE] == CHECKPOINT) & (d[STATUS] == FINISHED) & d[LAYER_STATS_JSON].notna()]
    rows = []
    for _, r in d.iterrows():
        try:
            layers = json.loads(str(r[LAYER_STATS_JSON]))
        except ValueError:
            continue
        for i, (name, (sparsity, filters)) in enumerate(layers.items()):
            rows.append({**({ARCH: r[ARCH]} if ARCH in d.columns else {}), METHOD: r[METHOD],
                         SPARSITY: r[SPARSITY], "layer_index": i, "layer": name,
                         "layer_sparsity": sparsity,
                         "layer_filters_pruned": np.nan if filters is None else filters})
    if not rows:
        return _empty(d, LAYER_COLUMNS)
    out = pd.DataFrame(rows)
    keys = _arch(out) + [METHOD, SPARSITY, "layer_index", "layer"]
    return out.groupby(keys, sort=False, as_index=False)[
        ["layer_sparsity", "layer_filters_pruned"]].mean()


SPEED_VALUES = (EPOCH_TIME_S, DENSE_EPOCH_TIME_S, SPEEDUP_EPOCH, SPEEDUP_INFERENCE)
# The online runs' loader share and test accuracy (empty without them), averaged beside.
ONLINE_VALUES = (LOADER_SHARE, DENSE_LOADER_SHARE, ONLINE_ACCURACY, DENSE_ONLINE_ACCURACY,
                 ONLINE_ACCURACY_GAP)


def _speed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Finished speed rows with some timing, every value column numeric (NaN where absent);
    speed-up and gap derived from their two sides where a row lacks them."""
    d = prepare(df)
    d = d[(d[MODE] == SPEED) & (d[STATUS] == FINISHED)].copy()
    for column in (*SPEED_VALUES, *ONLINE_VALUES):
        d[column] = pd.to_numeric(d[column], errors="coerce") if column in d else np.nan
    for column, derived in ((SPEEDUP_EPOCH, d[DENSE_EPOCH_TIME_S] / d[EPOCH_TIME_S]),
                            (ONLINE_ACCURACY_GAP, d[ONLINE_ACCURACY] - d[DENSE_ONLINE_ACCURACY])):
        d[column] = d[column].where(d[column].notna(), derived)
    return d[d[list(SPEED_VALUES)].notna().any(axis=1)]


def speed_table(df: pd.DataFrame) -> pd.DataFrame:
    """Speed rows (``mode == "speed"``) averaged per (arch,) method, sparsity and dataset.

    Returns columns (arch,) method, sparsity, dataset, the means of ``SPEED_VALUES`` and
    ``ONLINE_VALUES`` (NaN where the input lacks a column), n and ``epoch_extrapolated``: True
    where an epoch time was extrapolated from its first batches (any row of the group), False
    where every epoch was timed whole, NaN where rows say nothing.
    """
    d = _speed_rows(df)
    values = [*SPEED_VALUES, *ONLINE_VALUES]
    columns = [METHOD, SPARSITY, DATASET, *values, "n", EPOCH_EXTRAPOLATED]
    if d.empty:
        return _empty(d, columns)
    keys = _arch(d) + [METHOD, SPARSITY, DATASET]
    grouped = d.groupby(keys, dropna=False, sort=False)
    out = grouped[values].mean()
    out["n"] = grouped.size()
    if EPOCH_EXTRAPOLATED in d.columns:
        flags = d[EPOCH_EXTRAPOLATED].map(_flag)
        out[EPOCH_EXTRAPOLATED] = flags.groupby([d[k] for k in keys], dropna=False,
                                                sort=False).agg(_any_flag)
    else:
        out[EPOCH_EXTRAPOLATED] = np.nan
    return sort_rows(out.reset_index()[keys + columns[3:]])


def _flag(value: object) -> float:
    """A row's True/False (or "true"/"false", 1/0) as 1.0/0.0; NaN when it says nothing."""
    if isinstance(value, str):
        return {"true": 1.0, "false": 0.0}.get(value.strip().lower(), np.nan)
    try:
        return np.nan if pd.isna(value) else float(bool(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan


def _any_flag(values: pd.Series) -> object:
    known = values.dropna()
    return np.nan if known.empty else bool(known.max())


def speed_vs_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Speed rows with the accuracy gap of their own online runs: Figure 4's two axes.

    gap = the sparse online run's test accuracy - the dense one's (``online_accuracy_gap``),
    both trained in the speed trial on the same augmented batches, in percentage points; the
    mean over a cell's rows, gap_se its standard error where it has several. NaN where the rows
    have no online accuracy (synthetic images have no test split).

    Returns:
        `speed_table` columns plus gap and gap_se.
    """
    speed = speed_table(df)
    if speed.empty:
        return speed.assign(gap=[], gap_se=[])
    d = _speed_rows(df)
    keys = _arch(d) + [METHOD, SPARSITY, DATASET]
    gaps = d.groupby(keys, dropna=False, sort=False)[ONLINE_ACCURACY_GAP].agg(["std", "count"])
    se = (gaps["std"] / np.sqrt(gaps["count"])).where(gaps["count"] > 1).rename("gap_se")
    out = speed.merge(se.reset_index(), on=keys, how="left")
    return out.assign(gap=out[ONLINE_ACCURACY_GAP])[[*speed.columns, "gap", "gap_se"]]
