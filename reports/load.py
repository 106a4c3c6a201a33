"""Reading a long results table from a file (.parquet, .csv) or from an MLflow experiment."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common import columns as C
from reports.prepare import check_columns

# Columns MLflow stores as text params but that the reports treat as numbers.
_NUMERIC = {
    C.SPARSITY, C.ACCURACY, C.ACCURACY_LAST, C.BEST_EPOCH, C.EPOCHS, C.LR, C.TRAIN_TIME_S,
    C.SPARSITY_MEASURED, C.FILTERS_PRUNED_SHARE, C.BATCH, C.DS_MS_B1, C.DS_MS_B64,
    C.DS_DENSE_MS_B64, C.ORT_DENSE_MS_B64, C.TORCH_DENSE_MS_B64, C.SPEEDUP_INFERENCE,
    C.EPOCH_TIME_S, C.DENSE_EPOCH_TIME_S, C.SPEEDUP_EPOCH,
}
_MLFLOW_STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "failed"}


def read_results(path: Path) -> pd.DataFrame:
    """The results table in ``path`` (.parquet or .csv), its required columns checked.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown suffix, unreadable file, or required columns missing (the message
            names the file and the columns).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            raise ValueError(f"{path}: expected a .parquet or .csv results file, got '{suffix}'")
    except (OSError, ValueError, pd.errors.ParserError) as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path}: cannot read results table: {err}") from err
    check_columns(frame, str(path))
    return frame


def read_mlflow(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """One row per MLflow run of ``experiment`` that carries the required params and metric.

    Params ``method``, ``sparsity``, ``dataset``, ``mode``, ``seed`` and metric ``accuracy``
    (other params and metrics named as in `common.columns` are kept too). The run status maps
    to ``status`` (FAILED/KILLED -> ``failed``; a failed run needs no accuracy). Runs without
    the required params, such as aggregate or parent runs, are left out.

    Raises:
        ValueError: no such experiment, or no run of it has the required params.
    """
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        if mlflow.get_experiment_by_name(experiment) is None:
            raise ValueError(f"{tracking_uri}: no MLflow experiment named '{experiment}'")
        runs = mlflow.search_runs(experiment_names=[experiment], output_format="pandas")
    finally:
        mlflow.set_tracking_uri(previous)
    source = f"MLflow experiment '{experiment}' at {tracking_uri}"
    rows = pd.DataFrame(index=runs.index)
    for column in runs.columns:
        for prefix in ("params.", "metrics."):
            if column.startswith(prefix):
                name = column[len(prefix):]
                # A metric wins over a param of the same name (metrics are numbers already).
                if prefix == "metrics." or name not in rows.columns:
                    rows[name] = runs[column]
    if "status" in runs.columns:
        run_status = runs["status"].map(lambda s: _MLFLOW_STATUS.get(str(s), str(s).lower()))
        if C.STATUS in rows.columns:
            # A run MLflow saw fail is failed whatever status it logged before failing.
            rows[C.STATUS] = rows[C.STATUS].where(run_status != "failed", "failed")
        else:
            rows[C.STATUS] = run_status
    if "run_id" in runs.columns:
        rows["run_id"] = runs["run_id"]
    params = [c for c in C.REQUIRED if c != C.ACCURACY]
    missing = [c for c in C.REQUIRED if c not in rows.columns]
    if missing or rows.empty:
        raise ValueError(
            f"{source}: no run has the required params/metric "
            f"({', '.join(missing) if missing else 'the experiment has no runs'}); expected "
            f"params {', '.join(params)} and metric {C.ACCURACY}"
        )
    complete = rows[params].notna().all(axis=1)
    rows = rows[complete].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"{source}: no run has all of the params {', '.join(params)}")
    for column in _NUMERIC & set(rows.columns):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    seeds = pd.to_numeric(rows[C.SEED], errors="coerce")
    if seeds.notna().all():
        rows[C.SEED] = seeds.astype("int64")
    rows.attrs["skipped_runs"] = int((~complete).sum())
    return rows
