"""Reading a long results table from a file (.parquet, .csv) or from an MLflow experiment.

Both give the same table for a sweep's study: `read_mlflow` rebuilds from the sweep's runs the
rows `results.parquet` holds (identity from params, the reported accuracy, the status), so a
report from either source has the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common import columns as C
from common.masking import redact
from reports.prepare import check_columns

# Columns MLflow stores as text params but that the reports treat as numbers.
_NUMERIC = {
    C.SPARSITY, C.ACCURACY, C.ACCURACY_LAST, C.BEST_EPOCH, C.EPOCHS, C.LR, C.TRAIN_TIME_S,
    C.ACCURACY_REAL, C.ACCURACY_V2, *C.ACCURACY_V2_VARIANTS,
    C.SPARSITY_MEASURED, C.FILTERS_PRUNED_SHARE, C.BATCH, C.DS_MS_B1, C.DS_MS_B64,
    C.DS_DENSE_MS_B64, C.ORT_DENSE_MS_B64, C.TORCH_DENSE_MS_B64, C.SPEEDUP_INFERENCE,
    C.EPOCH_TIME_S, C.DENSE_EPOCH_TIME_S, C.SPEEDUP_EPOCH, C.MACS_SHARE, C.IMAGE_SIZE,
    "num_classes",
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


# Tags that say how a run was stored, not what it measured (``mlflow.*`` tags are left out too).
_STORE_TAGS = {"kind", "aggregate_key", "n_trials"}
# The sweep's experiments are named ``sparse-transfer/<study>`` (orchestrator.tracking).
SWEEP_PREFIX = "sparse-transfer/"
# A final value that stores written before the sweep's one metric naming scheme keep under
# another name (their history of ``accuracy`` ended at the last epoch's own accuracy).
_FINAL = {"final_" + C.ACCURACY: C.ACCURACY}


def sweep_experiment(tracking_uri: str) -> str:
    """The one ``sparse-transfer/*`` experiment of a store, the default for ``--experiment``.

    Raises:
        ValueError: the store has none or several; the message lists its experiments.
    """
    from mlflow.tracking import MlflowClient

    names = sorted(e.name for e in MlflowClient(tracking_uri=tracking_uri).search_experiments())
    sweeps = [n for n in names if n.startswith(SWEEP_PREFIX)]
    if len(sweeps) == 1:
        return sweeps[0]
    what = (f"several {SWEEP_PREFIX}* experiments" if sweeps
            else f"no {SWEEP_PREFIX}* experiment")
    raise ValueError(f"{redact(tracking_uri)}: {what}; name one with --experiment "
                     f"(experiments: {', '.join(names) or 'none'})")


def _run_row(run) -> dict[str, object] | None:
    """One run as a table row: params over tags over metrics (module docstring of
    `read_mlflow`); None for an aggregate run or one still running (no result yet)."""
    tags = run.data.tags
    if tags.get("kind", "trial") != "trial" or run.info.status in ("RUNNING", "SCHEDULED"):
        return None
    row: dict[str, object] = {}
    metrics = dict(run.data.metrics)
    for final, name in _FINAL.items():
        if final in metrics:
            metrics[name] = metrics.pop(final)
    run_status = _MLFLOW_STATUS.get(run.info.status, str(run.info.status).lower())
    if "trial_id" in tags and (run_status != "finished"
                               or tags.get(C.STATUS, "finished") != "finished"):
        # A sweep's trial that did not finish has no result, only the epochs it reached
        # (logged live): results.parquet has no metrics for it either.
        metrics = {}
    row.update(metrics)
    row.update({k: v for k, v in tags.items()
                if not k.startswith("mlflow.") and k not in _STORE_TAGS})
    row.update(run.data.params)
    status = str(tags.get(C.STATUS, "")).lower() or run_status
    if run_status == "failed" and status not in ("failed", "error"):
        status = "failed"  # MLflow saw it fail, whatever it logged before
    row[C.STATUS] = status
    row["run_id"] = run.info.run_id
    return row


def read_mlflow(tracking_uri: str, experiment: str | None = None) -> pd.DataFrame:
    """One row per trial run of an MLflow experiment, as the sweep's results table has it.

    Identity columns come from params (``method``, ``sparsity``, ``dataset``, ``mode``,
    ``seed``, ``arch``...), then tags (``status``, ``method_label``, a speed trial's
    ``weights``...), then metrics: a metric never overrides a param or tag of the same name.
    Metrics are the runs' latest values: in the sweep's naming scheme (README "Metrics") a
    metric's value at the last step is its results.parquet column (``accuracy``: the best
    epoch's); a store from before that scheme has it as ``final_accuracy``, read as
    ``accuracy``. A sweep trial that did not finish has no metrics (only the epochs it
    reached), as in results.parquet.
    The status is the run's ``status`` tag, else its MLflow status (FAILED/KILLED -> failed).
    Aggregate runs (tag ``kind``), runs still running and runs without the required params
    are left out (``attrs["skipped_runs"]`` counts them).

    Args:
        tracking_uri: e.g. ``sqlite:////abs/runs/tiny/mlflow.db``.
        experiment: its name; default: the store's one ``sparse-transfer/*`` experiment.

    Raises:
        ValueError: no such experiment (or no default), or no run of it has the required
            params.
    """
    if experiment is None:
        experiment = sweep_experiment(tracking_uri)
    runs = _experiment_runs(tracking_uri, experiment)
    source = f"MLflow experiment '{experiment}' at {redact(tracking_uri)}"
    kept = [row for row in map(_run_row, runs) if row is not None]
    rows = pd.DataFrame(kept)
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
    rows.attrs["skipped_runs"] = len(runs) - len(rows)
    rows.attrs["experiment"] = experiment
    return rows


def _experiment_runs(tracking_uri: str, experiment: str) -> list:
    """Every run of the named experiment, page by page; ValueError naming the experiments
    the store has when there is no such one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ValueError(f"{redact(tracking_uri)}: no MLflow experiment named '{experiment}' "
                         f"(experiments: {', '.join(names) or 'none'})")
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], max_results=5000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs
