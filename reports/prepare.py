"""Checks and normalises a long results table before anything is computed from it.

Every table function calls `prepare` first, so they accept what the sweep writes and what a
person types: sparsity as percent (80) or fraction (0.8), modes in any case, a ``group`` column
or none. `prepare` is idempotent; `prepare_with_notes` also says what it changed, for the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common import columns as C
from common.columns import (
    ACCURACY,
    ARCH,
    DATASET,
    GROUP,
    METHOD,
    MODE,
    REQUIRED,
    SEED,
    SPARSITY,
    STATUS,
    WEIGHTS,
)
from reports.naming import (UNKNOWN, dataset_group, is_random_reference, name_key,
                            normalise_group)

LINEAR = "linear"
FULL = "full"
UPSTREAM = "upstream"
CHECKPOINT = "checkpoint"  # a backbone's statistics and upstream accuracy (the checkpoint stage)
SPEED = "speed"
TRANSFER_MODES = (LINEAR, FULL)
MODE_ORDER = (LINEAR, FULL, UPSTREAM, CHECKPOINT, SPEED)
FAILED = "failed"
ERROR = "error"
FINISHED = "finished"
FINISHED_WORDS = frozenset({"", FINISHED, "ok", "done", "success", "succeeded", "completed",
                            "complete"})
# What names a trial and what it was asked to do; every other column is what it measured,
# which a trial that did not finish (failed, error) never did.
IDENTITY = frozenset({
    METHOD, C.METHOD_LABEL, C.FAMILY, C.LTH_SOURCE, SPARSITY, DATASET, MODE, SEED, ARCH, GROUP,
    STATUS, C.ERROR, C.TRIAL_ID, "stage", "metric", "num_classes", C.EPOCHS, C.LR, WEIGHTS,
    C.SPARSITY_PROFILE, C.REHEARSAL, C.IMAGE_SIZE, C.BATCH, C.NORMALIZE, C.EPOCH_SELECTION,
    "checkpoint_hash"})


def check_columns(df: pd.DataFrame, source: str = "results table") -> None:
    """Raise ValueError naming ``source`` and the required columns it lacks."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns)) or "none"
        raise ValueError(
            f"{source} lacks required column(s): {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED)}; found: {have})"
        )


def _normalise_mode(value: object) -> str:
    key = name_key(value)
    if key.startswith("lin"):
        return LINEAR
    if key.startswith("full"):
        return FULL
    if key.startswith("upstream"):
        return UPSTREAM
    if key.startswith("speed"):
        return SPEED
    if key.startswith("checkpoint"):
        return CHECKPOINT
    return str(value).strip().lower()


def text_of(series: pd.Series) -> pd.Series:
    """Strings without surrounding blanks; missing values become ``""``. Why not
    ``astype(str)``: with pandas' string dtype it keeps a missing value a float NaN, and a
    column of text with one gap then fails to sort or join."""
    return series.astype(object).where(series.notna(), "").astype(str).str.strip()


_text = text_of


def _check_range(values: pd.Series, column: str, lo: float, hi: float, source: str) -> None:
    """Refuse values no trial can produce (an accuracy of 250 or -40 percent): averaged into a
    table they would move a mean without a word. Missing values are left to the caller."""
    bad = values.notna() & ~values.between(lo, hi)
    if not bad.any():
        return
    positions = np.flatnonzero(bad.to_numpy())
    shown = ", ".join(f"{i + 1} ({values.iloc[i]:g})" for i in positions[:5])
    more = f" and {len(positions) - 5} more" if len(positions) > 5 else ""
    raise ValueError(
        f"{source}: column '{column}' must lie in [{lo:g}, {hi:g}] percent; {len(positions)} "
        f"row(s) outside it: row {shown}{more} (rows counted from 1, header excluded)")


_INF = float("inf")
_TIMINGS_MS = (C.DS_MS_B1, C.DS_MS_B64, C.DS_DENSE_MS_B64, C.ORT_DENSE_MS_B64,
               C.TORCH_DENSE_MS_B64)
# Measured columns besides accuracy and sparsity (which are refused outright): (lowest,
# highest, whether the lowest itself is allowed, unit). A value outside is no measurement (a
# negative time, a speed-up of 0 or below, a share above 1), so it is left out of every mean
# and the report's notes name it. Missing values stay missing.
RANGES: dict[str, tuple[float, float, bool, str]] = {
    C.ACCURACY_LAST: (0, 100, True, "percent"),
    C.SPARSITY_MEASURED: (0, 100, True, "percent"),
    C.FILTERS_PRUNED_SHARE: (0, 1, True, "a share"),
    C.MACS_SHARE: (0, 1, True, "a share"),
    C.LR: (0, _INF, False, ""),
    C.TRAIN_TIME_S: (0, _INF, True, "seconds"),
    **{c: (0, _INF, True, "seconds") for c in (
        C.EPOCH_TIME_S, C.DENSE_EPOCH_TIME_S, C.ORT_DENSE_EPOCH_TIME_S,
        C.TORCH_DENSE_EPOCH_TIME_S)},
    **{c + suffix: (0, _INF, False, "ms") for c in _TIMINGS_MS
       for suffix in ("", C.P10_SUFFIX, C.P90_SUFFIX)},
    **{c: (0, _INF, False, "a ratio") for c in (
        C.SPEEDUP_INFERENCE, C.SPEEDUP_EPOCH, C.SPEEDUP_VS_ORT, C.SPEEDUP_VS_TORCH,
        C.SPEEDUP_EPOCH_VS_ORT, C.SPEEDUP_EPOCH_VS_TORCH)},
    **{c: (1, _INF, True, "a count") for c in (
        C.EPOCHS, C.BATCH, C.REPS, C.IMAGE_SIZE, C.EPOCH_BATCHES)},
    C.BEST_EPOCH: (0, _INF, True, "an epoch"),
}


def _flag_out_of_range(out: pd.DataFrame, notes: list[str]) -> None:
    """Values of ``RANGES``' columns that no trial can produce become missing, with a note
    naming the column, how many and the first rows (counted from 1 as in the file)."""
    for column, (lo, hi, lo_ok, unit) in RANGES.items():
        if column not in out.columns:
            continue
        values = pd.to_numeric(out[column], errors="coerce")
        if values.dtype == bool:
            continue
        values = values.astype(float)
        given = values.notna()
        inside = np.isfinite(values) & (values >= lo if lo_ok else values > lo) & (values <= hi)
        bad = given & ~inside
        if not bad.any():
            continue
        positions = np.flatnonzero(bad.to_numpy())
        shown = ", ".join(f"{i + 1} ({values.iloc[i]:g})" for i in positions[:5])
        more = f" and {len(positions) - 5} more" if len(positions) > 5 else ""
        span = (f"{'[' if lo_ok else '('}{lo:g}, {hi:g}]" if hi != _INF else
                f"{'>=' if lo_ok else '>'} {lo:g}")
        notes.append(
            f"Column '{column}' must be {span}{' (' + unit + ')' if unit else ''}: "
            f"{len(positions)} value(s) outside it are left out of every table and figure "
            f"(row {shown}{more}; rows counted from 1).")
        out[column] = values.where(~bad)


def _statuses(out: pd.DataFrame, notes: list[str]) -> pd.Series:
    """Each row's status in lower case: ``finished`` (also when absent or a synonym such as
    ``ok``), ``failed``, ``error``; another word counts as not finished, and a note names it."""
    if STATUS not in out.columns:
        return pd.Series(FINISHED, index=out.index)
    status = _text(out[STATUS]).str.lower()
    status = status.where(~status.isin(FINISHED_WORDS), FINISHED)
    other = sorted(set(status) - {FINISHED, FAILED, ERROR})
    if other:
        notes.append(f"Rows with status {', '.join(map(repr, other))} are taken as trials that "
                     "did not finish: they enter no number and are listed with the failed ones.")
    return status


def _blank_unfinished(out: pd.DataFrame) -> None:
    """Rows of trials that did not finish (failed on bad input, or errored) keep their identity
    and error but no measurement: whatever a run left (epochs it reached, a partial row) never
    enters a table, a mean or a sort beside the numbers of finished trials."""
    unfinished = out[STATUS] != FINISHED
    if not unfinished.any():
        return
    for column in out.columns:
        if column not in IDENTITY and column != ACCURACY:
            out[column] = out[column].where(~unfinished)
    out[ACCURACY] = out[ACCURACY].where(~unfinished)


def done(df: pd.DataFrame) -> pd.Series:
    """Rows of trials that finished (not failed on bad input, not errored)."""
    return df[STATUS] == FINISHED


def _normalise_sparsity(raw: pd.Series, source: str, notes: list[str]) -> pd.Series:
    text = _text(raw)
    had_percent_sign = bool(text.str.endswith("%").any())
    values = pd.to_numeric(text.str.rstrip("%").str.strip(), errors="coerce")
    bad = values.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in raw[bad].astype(str).unique()[:5])
        raise ValueError(
            f"{source}: column '{SPARSITY}' must be a number (percent such as 80, or a fraction "
            f"such as 0.8) in every row; {int(bad.sum())} row(s) have {examples}"
        )
    values = values.astype(float)
    if len(values) and not had_percent_sign and values.max() <= 1.0 and values.max() > 0:
        values = values * 100.0
        notes.append(
            "Sparsity was given as fractions (all values <= 1) and is shown in percent."
        )
    if ((values < 0) | (values > 100)).any():
        raise ValueError(
            f"{source}: column '{SPARSITY}' must lie in [0, 100] percent; "
            f"found {sorted(values[(values < 0) | (values > 100)].unique())[:5]}"
        )
    values = values.round(6)
    if (values == values.round()).all():
        return values.astype("int64")
    return values


def prepare_with_notes(
    df: pd.DataFrame, source: str = "results table"
) -> tuple[pd.DataFrame, list[str]]:
    """Normalised copy of a results table and plain-English notes on what was changed.

    - ``sparsity``: int percent where possible; fractions (every value <= 1) times 100.
    - ``mode``: ``linear``/``full``/``upstream``/``speed`` whatever the case or suffix.
    - ``status``: lower case; added as ``"finished"`` when absent.
    - ``group``: ``general``/``specialized`` from the column where given, else from the paper's
      12 datasets; ``unknown`` otherwise.
    - ``accuracy``: numeric; unreadable cells become NaN (the trial then counts as missing).
    - ``RANGES``' columns (times, speed-ups, shares, counts): a value outside its range
      becomes NaN, and a note names it.
    - Transfer rows repeated for the same (arch, method, sparsity, dataset, mode, seed): the
      last usable row wins; failed attempts of a seed that later succeeded are dropped.

    Raises:
        ValueError: a required column is missing, sparsity is not a number in [0, 100], or an
            accuracy lies outside [0, 100].
    """
    check_columns(df, source)
    notes: list[str] = []
    out = df.copy()
    out[METHOD] = _text(out[METHOD])
    out[DATASET] = _text(out[DATASET])
    out[MODE] = _text(out[MODE]).map(_normalise_mode)
    out[SPARSITY] = _normalise_sparsity(out[SPARSITY], source, notes)

    accuracy = pd.to_numeric(out[ACCURACY], errors="coerce")
    unreadable = int((accuracy.isna() & out[ACCURACY].notna()).sum())
    if unreadable:
        notes.append(f"{unreadable} accuracy value(s) were not numbers and count as missing.")
    out[ACCURACY] = accuracy.astype(float)
    _check_range(out[ACCURACY], ACCURACY, 0.0, 100.0, source)
    _flag_out_of_range(out, notes)

    out[STATUS] = _statuses(out, notes)
    _blank_unfinished(out)
    if ARCH in out.columns:
        out[ARCH] = _text(out[ARCH])

    out[GROUP] = _groups(out, notes)
    transfer = out[MODE].isin(TRANSFER_MODES)
    other_modes = sorted(set(out[MODE]) - set(MODE_ORDER))
    if other_modes:
        notes.append(f"Rows with unknown mode(s) {', '.join(other_modes)} are ignored.")

    out, dedup_notes = _drop_repeats(out)
    notes.extend(dedup_notes)
    if transfer.any() and out.loc[out[MODE].isin(TRANSFER_MODES), ACCURACY].max() <= 1.0:
        notes.append("All accuracies are <= 1: they look like fractions, the paper uses percent.")
    return out.reset_index(drop=True), notes


def _groups(out: pd.DataFrame, notes: list[str]) -> pd.Series:
    """Each row's dataset group: the ``group`` column where it names one, else the paper's
    group of the dataset, else ``unknown`` (a note names such transfer datasets)."""
    from_map = out[DATASET].map(dataset_group)
    groups = from_map
    if GROUP in out.columns:
        given = out[GROUP].map(normalise_group)
        groups = given.where(given.notna(), from_map).astype(str)
    transfer = out[MODE].isin(TRANSFER_MODES)
    unknown = sorted(set(out.loc[transfer & (groups == UNKNOWN), DATASET]))
    if unknown:
        notes.append(
            "Dataset(s) not among the paper's 12 and without a group: "
            + ", ".join(unknown)
            + "; they count in 'all' but in neither 'general' nor 'specialized'."
        )
    return groups


def prepare(df: pd.DataFrame, source: str = "results table") -> pd.DataFrame:
    """`prepare_with_notes` without the notes."""
    return prepare_with_notes(df, source)[0]


def usable(df: pd.DataFrame, value: str = ACCURACY) -> pd.Series:
    """Rows whose ``value`` may enter a number: finished, value present."""
    ok = df[value].notna() if value in df.columns else pd.Series(False, index=df.index)
    return ok & done(df)


def trial_key(df: pd.DataFrame) -> list[str]:
    """Columns naming one trial's cell: (arch), method, sparsity, dataset, mode."""
    return ([ARCH] if ARCH in df.columns else []) + [METHOD, SPARSITY, DATASET, MODE]


def _drop_repeats(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    transfer = df[MODE].isin(TRANSFER_MODES)
    if not transfer.any():
        return df, []
    key = trial_key(df) + [SEED]
    t = df[transfer].copy()
    t["_usable"] = usable(t)
    t["_order"] = np.arange(len(t))
    # Usable rows first, then the latest row: the kept row of each key is the first after sorting.
    t = t.sort_values(["_usable", "_order"], ascending=[False, False], kind="stable")
    dup = t.duplicated(subset=key, keep="first")
    key_has_usable = t.groupby(key, dropna=False, sort=False)["_usable"].transform("first")
    notes = []
    repeated = int((dup & t["_usable"]).sum())
    superseded = int((dup & ~t["_usable"] & key_has_usable).sum())
    retried = int((dup & ~key_has_usable).sum())
    if repeated:
        notes.append(
            f"{repeated} transfer row(s) repeat a (method, sparsity, dataset, mode, seed) "
            "already present; the last one is used."
        )
    if superseded:
        notes.append(
            f"{superseded} failed or empty attempt(s) of a seed that also has a usable row "
            "are not counted as missing."
        )
    if retried:
        notes.append(f"{retried} repeated failed attempt(s) of the same seed are counted once.")
    kept = t[~dup].sort_values("_order").drop(columns=["_usable", "_order"])
    return pd.concat([df[~transfer], kept]).sort_index(), notes


def pick_main_arch(data: pd.DataFrame, preferred: str | None = None) -> str | None:
    """The study's main architecture: the one ``report.md`` and findings 1-6 are about.

    Among the archs with linear/full rows (all archs when none has any): ``preferred`` (the
    study's own, passed by the sweep), else ResNet50, else the one with most such rows (the
    first seen on a tie); names match ignoring case and punctuation. None when the table names
    no arch. Random-weight speed rows should be left out by the caller: they are a reference,
    never the study's architecture.
    """
    if ARCH not in data.columns:
        return None
    named = data[data[ARCH].astype(str) != ""]
    if named.empty:
        return None
    transfer = named[named[MODE].isin(TRANSFER_MODES)]
    pool = transfer if not transfer.empty else named
    counts = pool.groupby(ARCH, sort=False).size()
    for wanted in ([preferred] if preferred else []) + ["resnet50"]:
        for arch in counts.index:
            if name_key(arch) == name_key(wanted):
                return str(arch)
    return str(counts.idxmax())


def reference_rows(data: pd.DataFrame) -> pd.Series:
    """Rows of the random-weight speed reference: ``weights == "random"`` (or, in tables
    without that column, speed rows of a ``random_*`` method). Read on method keys."""
    if WEIGHTS in data.columns:
        weights = data[WEIGHTS].astype(object).where(data[WEIGHTS].notna(), "")
        return weights.astype(str).str.strip().str.lower() == "random"
    return (data[MODE] == SPEED) & data[METHOD].map(is_random_reference)
