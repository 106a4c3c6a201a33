"""MLflow tracking: one run per trial (found again by its trial id), plus aggregate runs.

All writes happen in the sweep's driver, so a SQLite store has a single writer. Runs are
looked up by the ``trial_id`` tag before one is created: rerunning a study, or resuming it
after a kill, never makes a second run for a trial.

A trial's identity (method, sparsity, arch, dataset, mode, seed, ...) is its params only: a
result value of the same name (a speed trial's ``sparsity`` and ``seed``, a pruning run's
achieved ``sparsity`` as a fraction) is not logged as a metric, so that a reader of the store
never sees two values for one identity column. The study's label of the method is the tag
``method_label`` (a tag, not a param, so a renamed label can be set again).
"""

from __future__ import annotations

import math
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from search_spaces.trial import TrialSpec

TRIAL_TAG = "trial_id"
AGG_TAG = "aggregate_key"
KIND_TAG = "kind"
LABEL_TAG = "method_label"


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable server, unwritable file)."""


def redact(uri: str) -> str:
    """The URI with any user:password@ removed, for messages and logs."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


def default_tracking_uri(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'mlflow.db').resolve()}"


@contextmanager
def _quick_http() -> Iterator[None]:
    """Fail fast on an unreachable server instead of MLflow's minutes of retries."""
    keys = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _flat_params(spec: TrialSpec) -> dict[str, str]:
    p: dict[str, Any] = {
        "stage": spec.stage, "mode": spec.mode, "method": spec.method,
        "sparsity": spec.sparsity, "arch": spec.arch, "dataset": spec.dataset,
        "seed": spec.seed, "metric": spec.metric, "group": spec.group,
        "num_classes": spec.num_classes, "image_size": spec.image_size,
        "checkpoint_hash": spec.checkpoint_hash or "",
    }
    if spec.mask_checkpoint_hash:
        p["mask_checkpoint_hash"] = spec.mask_checkpoint_hash
    if spec.recipe is not None:
        r = spec.recipe
        p.update(epochs=r.epochs, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay,
                 batch_size=r.batch_size, milestones=",".join(map(str, r.milestones)),
                 gamma=r.gamma)
    for k, v in spec.params:
        p[f"param.{k}"] = v
    return {k: str(v)[:500] for k, v in p.items()}


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class Tracker:
    """The study's MLflow experiment."""

    def __init__(self, tracking_uri: str, experiment: str,
                 artifact_location: str | None = None,
                 method_labels: Mapping[str, str] | None = None,
                 run_tags: Mapping[str, str] | None = None) -> None:
        self.uri = tracking_uri
        self.method_labels = dict(method_labels or {})
        # Set on every run this tracker makes, trial or aggregate (a rehearsal: rehearsal=true).
        self.run_tags = dict(run_tags or {})
        with _quick_http():
            try:
                # Inside the try: a database URI whose driver is missing fails right here.
                self.client = MlflowClient(tracking_uri=tracking_uri)
                exp = self.client.get_experiment_by_name(experiment)
                self.experiment_id = (
                    exp.experiment_id if exp
                    else self.client.create_experiment(experiment, artifact_location)
                )
            except Exception as e:  # noqa: BLE001 - any failure here means "cannot track"
                raise TrackingError(
                    f"cannot use the MLflow tracking store at {redact(tracking_uri)}: "
                    f"{type(e).__name__}: {redact(str(e).splitlines()[0])[:300]}. Start the server, "
                    "fix --tracking-uri / MLFLOW_TRACKING_URI, or leave both unset to use the "
                    "SQLite file in the output folder."
                ) from None
        self._runs: dict[str, str] = {}
        self._agg: dict[str, str] = {}
        self._no_params: set[str] = set()
        self._error_tagged: set[str] = set()  # runs with an "error" tag from a failed attempt
        self._load_index()

    def _load_index(self) -> None:
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], max_results=5000, page_token=token
            )
            for run in page:
                tags = run.data.tags
                if TRIAL_TAG in tags:
                    self._runs.setdefault(tags[TRIAL_TAG], run.info.run_id)
                if AGG_TAG in tags:
                    self._agg.setdefault(tags[AGG_TAG], run.info.run_id)
                if not run.data.params:  # killed between create_run and log_batch
                    self._no_params.add(run.info.run_id)
                if "error" in tags:
                    self._error_tagged.add(run.info.run_id)
            token = page.token
            if not token:
                break

    # -- trials ---------------------------------------------------------------------------
    def run_id(self, trial_id: str) -> str | None:
        return self._runs.get(trial_id)

    def _label_tags(self, spec: TrialSpec) -> dict[str, str]:
        label = self.method_labels.get(spec.method)
        return {LABEL_TAG: label} if label else {}

    def ensure_run(self, spec: TrialSpec) -> str:
        """The trial's run, created (RUNNING, with its params) only if it has none."""
        tid = spec.trial_id
        if tid in self._runs:
            rid = self._runs[tid]
            if rid in self._no_params:  # logging the same params again is allowed
                self.client.log_batch(rid, params=[Param(k, v) for k, v in
                                                   _flat_params(spec).items()], synchronous=True)
                self._no_params.discard(rid)
            return rid
        run = self.client.create_run(
            self.experiment_id,
            run_name=tid,
            tags={TRIAL_TAG: tid, KIND_TAG: "trial", "stage": spec.stage, "mode": spec.mode,
                  **self._label_tags(spec), **self.run_tags},
        )
        rid = run.info.run_id
        self.client.log_batch(
            rid, params=[Param(k, v) for k, v in _flat_params(spec).items()], synchronous=True
        )
        self._runs[tid] = rid
        return rid

    def finish(self, spec: TrialSpec, metrics: dict[str, Any],
               history: Iterable[dict[str, Any]] = ()) -> None:
        """Per-epoch metrics (step = epoch) and final metrics; status FINISHED."""
        rid = self.ensure_run(spec)
        identity = _flat_params(spec)  # never a metric too (module docstring)
        now = int(time.time() * 1000)
        batch: list[Metric] = []
        for h in history:
            step = int(h.get("epoch", 0))
            batch += [Metric(k, float(v), now, step) for k, v in h.items()
                      if k != "epoch" and k not in identity and _finite(v)]
        batch += [Metric(f"final_{k}" if k in {"accuracy"} else k, float(v), now, 0)
                  for k, v in metrics.items() if k not in identity and _finite(v)]
        for i in range(0, len(batch), 900):
            self.client.log_batch(rid, metrics=batch[i:i + 900], synchronous=True)
        # Text facts of a result (a speed trial's CPU model, instruction set, versions) are
        # tags, so runs can be filtered and compared by the machine that measured them.
        known = {*identity, TRIAL_TAG, "mode", "status", "stage", LABEL_TAG}
        tags = [RunTag(k, str(v)[:5000]) for k, v in metrics.items()
                if isinstance(v, (str, bool)) and k not in known]
        tags += [RunTag(k, v) for k, v in self._label_tags(spec).items()]
        if tags:
            self.client.log_batch(rid, tags=tags, synchronous=True)
        if rid in self._error_tagged:  # an earlier run of the sweep failed or errored here
            self.client.delete_tag(rid, "error")
            self._error_tagged.discard(rid)
        self.client.set_tag(rid, "status", "finished")
        self.client.set_terminated(rid, "FINISHED")

    def fail(self, spec: TrialSpec, error: str, status: str = "failed") -> None:
        """Status FAILED, tags ``status`` (``failed``: bad input; ``error``: a crash or a bug
        after Tune's retries) and ``error`` (its end, where a traceback names the cause)."""
        rid = self.ensure_run(spec)
        for k, v in self._label_tags(spec).items():
            self.client.set_tag(rid, k, v)
        self.client.set_tag(rid, "status", status)
        self.client.set_tag(rid, "error", error if len(error) <= 4900 else "..." + error[-4897:])
        self._error_tagged.add(rid)
        self.client.set_terminated(rid, "FAILED")

    # -- aggregates -----------------------------------------------------------------------
    def log_aggregate(self, key: str, params: dict[str, Any], metrics: dict[str, float],
                      step: int, tags: dict[str, Any] | None = None) -> str:
        """Create or update the aggregate run named by ``key`` (idempotent).

        Params are set once, when the run is made (MLflow refuses to change them); metrics and
        ``tags`` are updated on every call, so they may change as the study grows.
        """
        rid = self._agg.get(key)
        if rid is not None and rid in self._no_params:
            self.client.log_batch(rid, params=[Param(k, str(v)) for k, v in params.items()],
                                  synchronous=True)
            self.client.set_terminated(rid, "FINISHED")
            self._no_params.discard(rid)
        if rid is None:
            run = self.client.create_run(
                self.experiment_id, run_name=key,
                tags={AGG_TAG: key, KIND_TAG: "aggregate", **self.run_tags}
            )
            rid = run.info.run_id
            self.client.log_batch(
                rid, params=[Param(k, str(v)) for k, v in params.items()], synchronous=True
            )
            self.client.set_terminated(rid, "FINISHED")
            self._agg[key] = rid
        now = int(time.time() * 1000)
        self.client.log_batch(
            rid,
            metrics=[Metric(k, float(v), now, step) for k, v in metrics.items() if _finite(v)],
            tags=[RunTag("n_trials", str(step))]
            + [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()],
            synchronous=True,
        )
        return rid

    def log_artifacts(self, key: str, folder: Path) -> None:
        rid = self._agg.get(key) or self.log_aggregate(key, {"kind": "report"}, {}, 0)
        self.client.log_artifacts(rid, str(folder))
