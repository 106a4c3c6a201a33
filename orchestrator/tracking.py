"""MLflow tracking: one run per trial (found again by its trial id), plus aggregate runs.

All writes happen in the sweep's driver, so a SQLite store has a single writer. Runs are
looked up by the ``trial_id`` tag before one is created: rerunning a study, or resuming it
after a kill, never makes a second run for a trial. A server that goes away mid-sweep:
``orchestrator.tracking_outage``.

Run structure (argued in docs/design.md): each trial is nested under its stage's parent run
(one per stage of ``orchestrator.stages``); the per-cell and alpha aggregates under the
parent runs ``cells`` and ``alpha``; the study's ``summary`` run (findings, report)
is the one top-level run that is not a parent. Each epoch reaches MLflow as the trial reports
it (``log_epoch``, from the driver's Tune callback); the final values sit at the last step.

Metric names (one scheme, README "Metrics"): a metric is named as its column of
``results.parquet``, and its value at the last step is that column's value; per-epoch points of
the same metric sit at step = epoch (pruning: the SGD step).

A trial's identity (method, sparsity, arch, dataset, mode, seed, ...) is its params only: a
result value of the same name (a speed trial's ``sparsity`` and ``seed``, a pruning run's
achieved ``sparsity`` as a fraction) is not logged as a metric, so that a reader of the store
never sees two values for one identity column. The study's label of the method is the tag
``method_label`` (a tag, not a param, so a renamed label can be set again).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from contextlib import closing, contextmanager
from itertools import zip_longest
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from common import columns as C
from common.masking import redact
from orchestrator.stages import mode_of
from orchestrator.tracking_meta import dataset_source, run_metadata
from search_spaces.trial import TrialSpec

TRIAL_TAG = "trial_id"
AGG_TAG = "aggregate_key"
KIND_TAG = "kind"
LABEL_TAG = "method_label"
PARENT_TAG = "parent_key"
# One tag per trial that selects a sparsity level together with its dense baseline:
# ",90," on a 90 % trial, ",80,90,95," (every level of the study) on a dense one, so that
# ``tags.compare_at LIKE '%,90,%'`` is the whole filter (MLflow search has no IN or OR).
COMPARE_TAG = "compare_at"
EXPERIMENT_KIND = "custom_model_development"  # MLflow 3's kind for classic ML (not GenAI)
# The aggregate keys' prefixes and the parent run each kind of aggregate is nested under;
# every other parent run is a stage's (``orchestrator.stages``).
AGG_PARENTS = {"cell": "cells", "alpha": "alpha"}
# What a trial uses its dataset for (MLflow's dataset input context), by the trial's mode;
# transfer and checkpoint trials: "train+test".
DATA_CONTEXT = {C.MODE_UPSTREAM: "train", C.MODE_SPEED: C.MODE_SPEED}


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable server, unwritable file)."""


@contextmanager
def quick_http() -> Iterator[None]:
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


def check_store(tracking_uri: str) -> None:
    """Open the store and read from it, as ``Tracker`` will: the sweep calls this before it
    creates the output folder, so a store that cannot be used leaves nothing behind."""
    with quick_http():
        try:
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
        except Exception as e:  # noqa: BLE001 - any failure here means "cannot track"
            raise TrackingError(store_error(tracking_uri, e)) from None


def store_error(tracking_uri: str, err: BaseException) -> str:
    """One paragraph on a store that cannot be used: MLflow's reason, cut at a sentence or a
    word (not "See htt."), and advice that fits the kind of store (a server to start only for
    an http URI)."""
    text = redact(" ".join(str(err).split()))
    refused = re.search(r"\[Errno -?\d+\] [^'\")(]+", text)  # buried in urllib3's retry text
    reason = _clip(text, 300)
    if refused:
        errno_text = refused.group(0).strip().rstrip(":")
        reason = f"cannot connect: {errno_text}" if "connect" in text.lower() else errno_text
    scheme = tracking_uri.split(":", 1)[0].lower() if ":" in tracking_uri else ""
    if scheme in ("http", "https"):
        advice = "Start the server (or check its host and port)"
    elif scheme == "sqlite":
        advice = "Check that the database file's folder exists and is writable"
    elif scheme.split("+")[0] in ("postgresql", "mysql", "mssql"):
        advice = ("Check the database server, its Python driver (psycopg2, pymysql, ...) and "
                  "the credentials")
    else:
        advice = "Use a SQLite file (sqlite:////abs/path/mlflow.db) or a tracking server"
    if not reason.endswith("..."):
        reason = reason.removesuffix(".") + "."
    return (f"cannot use the MLflow tracking store at {redact(tracking_uri)}: "
            f"{type(err).__name__}: {reason} {advice}, fix --tracking-uri / "
            "MLFLOW_TRACKING_URI, or leave both unset to use the SQLite file in the output "
            "folder.")


def _clip(text: str, limit: int) -> str:
    """``text`` up to ``limit`` characters, cut after a sentence, else at a word, marked."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    end = head.rfind(". ")
    if end > limit // 3:
        return head[: end + 1]
    return head.rsplit(" ", 1)[0] + " ..."


def _flat_params(spec: TrialSpec) -> dict[str, str]:
    p: dict[str, Any] = {
        "stage": spec.stage, "mode": mode_of(spec.stage), "method": spec.method,
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


def step_of(record: Mapping[str, Any]) -> int | None:
    """A reported record's step: its epoch, else its SGD step (pruning), else None."""
    for key in ("epoch", "step"):
        v = record.get(key)
        if _finite(v):
            return int(v)
    return None


def epoch_metrics(record: Mapping[str, Any], identity: Iterable[str] = ()) -> dict[str, float]:
    """One reported epoch (or step) under the study's metric names (module docstring).

    ``accuracy`` is the result as results.parquet has it: the best epoch's accuracy so far for
    transfer trials (their reported ``accuracy_best``), the validation accuracy for upstream
    ones; ``accuracy_last`` is this epoch's own accuracy. A pruning run's ``sparsity`` (a
    fraction) is ``sparsity_measured`` in percent; an upstream run's elapsed ``seconds`` is
    ``train_time_s``. Identity columns (params) and bookkeeping keys are never metrics.
    """
    r = {k: v for k, v in record.items() if _finite(v)}
    if "accuracy_best" in r:
        r["accuracy_last"] = r.get("accuracy", r.get("accuracy_last"))
        r["accuracy"] = r.pop("accuracy_best")
    if "val_accuracy" in r:
        r.setdefault("accuracy", r["val_accuracy"])
        del r["val_accuracy"]
    if "sparsity" in r and "step" in record:  # pruning's progress: a fraction of weights
        r["sparsity_measured"] = 100.0 * r.pop("sparsity")
    if "seconds" in r:
        r.setdefault("train_time_s", r.pop("seconds"))
    skip = {"epoch", "step", "steps", *identity}
    return {k: float(v) for k, v in r.items() if k not in skip}


def final_metrics(metrics: Mapping[str, Any], identity: Iterable[str] = ()) -> dict[str, float]:
    """A trial's final numbers (results.parquet's columns), identity columns left out."""
    skip = set(identity)
    return {k: float(v) for k, v in metrics.items() if k not in skip and _finite(v)}


def rebase_artifacts(tracking_uri: str, exp: Any, location: str) -> None:
    """Point a SQLite store's experiment, and its runs, at ``location`` when the store lies
    in the folder that holds ``location`` (the default store of an output folder that was
    copied or moved): MLflow keeps absolute artifact paths, so the copy would otherwise write
    its report artifacts into the original folder. Another store is left as it is."""
    import sqlite3
    from urllib.parse import unquote, urlparse

    if not tracking_uri.startswith("sqlite:///"):
        return
    database = Path(tracking_uri[len("sqlite:///"):].split("?", 1)[0]).absolute()
    if database.parent != Path(unquote(urlparse(location).path)).parent:
        return
    old = exp.artifact_location
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                   (location, exp.experiment_id))
        db.execute("UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) WHERE "
                   "experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                   (location, len(old) + 1, exp.experiment_id, len(old), old))


class Tracker:
    """The study's MLflow experiment."""

    def __init__(self, tracking_uri: str, experiment: str,
                 artifact_location: str | None = None,
                 method_labels: Mapping[str, str] | None = None,
                 method_facts: Callable[[str, int, bool], Mapping[str, str]] | None = None,
                 description: str = "", data_root: str | None = None,
                 sparsity_levels: Iterable[int] = (),
                 metadata: Mapping[str, str] | None = None,
                 run_tags: Mapping[str, str] | None = None,
                 provenance: Mapping[str, str] | None = None) -> None:
        self.uri = tracking_uri
        self.method_labels = dict(method_labels or {})
        # (method, sparsity, mask on dense) -> family, lth_source (Study.method_facts)
        self.method_facts = method_facts or (lambda method, sparsity, masked: {})
        self.data_root = data_root
        self.levels = sorted({int(s) for s in sparsity_levels if s})
        self.meta = dict(run_metadata() if metadata is None else metadata)
        # Set on every run this tracker makes, trial or aggregate (a rehearsal: rehearsal=true).
        self.run_tags = dict(run_tags or {})
        # Which code and machine this sweep run is (orchestrator.provenance): tags of the parent
        # runs and the summary, set again by each run of the sweep that uses them.
        self.provenance = dict(provenance or {})
        self._stamped: set[str] = set()
        with quick_http():
            try:
                # Inside the try: a database URI whose driver is missing fails right here.
                self.client = MlflowClient(tracking_uri=tracking_uri)
                exp = self.client.get_experiment_by_name(experiment)
                if exp and artifact_location and exp.artifact_location != artifact_location:
                    rebase_artifacts(tracking_uri, exp, artifact_location)
                self.experiment_id = (
                    exp.experiment_id if exp
                    else self.client.create_experiment(experiment, artifact_location)
                )
                self._describe_experiment(exp, description)
            except Exception as e:  # noqa: BLE001 - any failure here means "cannot track"
                raise TrackingError(store_error(tracking_uri, e)) from None
        self._runs: dict[str, str] = {}
        self._agg: dict[str, str] = {}
        self._parents: dict[str, str] = {}
        self._no_params: set[str] = set()
        self._error_tagged: set[str] = set()  # runs with an "error" tag from a failed attempt
        self._compare: dict[str, str] = {}  # run id -> its compare_at tag as stored
        self._old: set[str] = set()  # trial runs made before this driver (steps not known)
        self._points: dict[str, dict[tuple[str, int], float]] = {}  # logged by this driver
        self._datasets: dict[str, tuple[str, str]] = {}
        self._load_index()

    def _describe_experiment(self, exp: Any, description: str) -> None:
        """MLflow 3 opens an experiment without a kind in its GenAI view ("Evaluations"):
        set the classic-ML kind, and the study's description as the experiment's note."""
        want = {"mlflow.experimentKind": EXPERIMENT_KIND}
        if description:
            want["mlflow.note.content"] = description
        have = dict(exp.tags) if exp is not None else {}
        for k, v in want.items():
            if have.get(k) != v:
                self.client.set_experiment_tag(self.experiment_id, k, v)

    def _load_index(self) -> None:
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], max_results=5000, page_token=token
            )
            for run in page:
                tags = run.data.tags
                rid = run.info.run_id
                if TRIAL_TAG in tags:
                    self._runs.setdefault(tags[TRIAL_TAG], rid)
                    self._old.add(rid)
                if AGG_TAG in tags:
                    self._agg.setdefault(tags[AGG_TAG], rid)
                if PARENT_TAG in tags:
                    self._parents.setdefault(tags[PARENT_TAG], rid)
                if COMPARE_TAG in tags:
                    self._compare[rid] = tags[COMPARE_TAG]
                if not run.data.params and PARENT_TAG not in tags:
                    self._no_params.add(rid)  # killed between create_run and log_batch
                if "error" in tags:
                    self._error_tagged.add(rid)
            token = page.token
            if not token:
                break

    # -- parents --------------------------------------------------------------------------
    def parent(self, key: str, status: str | None = None) -> str:
        """The parent run named ``key`` (a stage, ``cells``, ``alpha``), made once; it has
        no params, so a ``params.*`` filter selects trials only."""
        rid = self._parents.get(key)
        if rid is None:
            kind = "group" if key in AGG_PARENTS.values() else "stage"
            run = self.client.create_run(
                self.experiment_id, run_name=key,
                tags={PARENT_TAG: key, KIND_TAG: kind, **self.meta, **self.run_tags,
                      **({"stage": key} if kind == "stage" else {})})
            rid = run.info.run_id
            self._parents[key] = rid
            if status is None:
                self.client.set_terminated(rid, "FINISHED")
        stamp = self._stamp(rid)
        if stamp:
            self.client.log_batch(rid, tags=stamp, synchronous=True)
        if status is not None:
            self.client.update_run(rid, status=status)
        return rid

    def _stamp(self, rid: str) -> list[RunTag]:
        """The provenance tags for run ``rid``, once per run in this process."""
        if rid in self._stamped or not self.provenance:
            return []
        self._stamped.add(rid)
        return [RunTag(k, str(v)[:5000]) for k, v in self.provenance.items()]

    def start_stage(self, stage: str, total: int) -> None:
        """The stage's parent run is RUNNING while the stage runs."""
        rid = self.parent(stage, status="RUNNING")
        self.client.log_batch(rid, params=[], tags=[RunTag("n_trials", str(total))],
                              synchronous=True)

    def end_stage(self, stage: str, counts: Mapping[str, int]) -> None:
        """The stage's counts (finished, failed, error) on its parent run, now FINISHED."""
        rid = self.parent(stage)
        now = int(time.time() * 1000)
        done = sum(counts.values())
        self.client.log_batch(rid, metrics=[Metric(f"trials_{k}", float(v), now, done)
                                            for k, v in counts.items()], synchronous=True)
        self.client.set_terminated(rid, "FINISHED")

    # -- trials ---------------------------------------------------------------------------
    def run_id(self, trial_id: str) -> str | None:
        return self._runs.get(trial_id)

    def _label_tags(self, spec: TrialSpec) -> dict[str, str]:
        label = self.method_labels.get(spec.method)
        facts = self.method_facts(spec.method, spec.sparsity, spec.mask_checkpoint is not None)
        return {**({LABEL_TAG: label} if label else {}), **facts}

    def compare_at(self, spec: TrialSpec) -> str:
        """The ``compare_at`` tag (``COMPARE_TAG``): a dense trial belongs to every level."""
        levels = self.levels if not spec.sparsity else [spec.sparsity]
        return "," + ",".join(str(int(s)) for s in levels) + "," if levels else ","

    def _dataset_input(self, spec: TrialSpec) -> DatasetInput:
        if spec.dataset not in self._datasets:
            self._datasets[spec.dataset] = dataset_source(spec.dataset, self.data_root)
        source, digest = self._datasets[spec.dataset]
        profile = json.dumps({"num_classes": spec.num_classes, "metric": spec.metric,
                              "group": spec.group})
        ds = Dataset(name=spec.dataset, digest=digest,
                     source_type="local" if source.startswith("/") else "code",
                     source=json.dumps({"uri": source}), profile=profile)
        context = DATA_CONTEXT.get(mode_of(spec.stage), "train+test")
        return DatasetInput(ds, tags=[InputTag("mlflow.data.context", context)])

    def ensure_run(self, spec: TrialSpec) -> str:
        """The trial's run, created (RUNNING, with its params, nested under its stage's
        parent run, with its dataset as an input) only if it has none."""
        tid = spec.trial_id
        if tid in self._runs:
            rid = self._runs[tid]
            if rid in self._no_params:  # logging the same params again is allowed
                self.client.log_batch(rid, params=[Param(k, v) for k, v in
                                                   _flat_params(spec).items()], synchronous=True)
                self._no_params.discard(rid)
            compare = self.compare_at(spec)
            if self._compare.get(rid) != compare:  # the study grew a sparsity level
                self.client.set_tag(rid, COMPARE_TAG, compare)
                self._compare[rid] = compare
            return rid
        compare = self.compare_at(spec)
        run = self.client.create_run(
            self.experiment_id,
            run_name=tid,
            tags={TRIAL_TAG: tid, KIND_TAG: "trial", "stage": spec.stage,
                  "mode": mode_of(spec.stage),
                  COMPARE_TAG: compare, "mlflow.parentRunId": self.parent(spec.stage),
                  **self.meta, **self._label_tags(spec), **self.run_tags},
        )
        rid = run.info.run_id
        self._compare[rid] = compare
        self.client.log_batch(
            rid, params=[Param(k, v) for k, v in _flat_params(spec).items()], synchronous=True
        )
        self._runs[tid] = rid
        try:
            self.client.log_inputs(rid, datasets=[self._dataset_input(spec)])
        except Exception as e:  # noqa: BLE001 - a dataset's description is no reason to stop
            self.client.set_tag(rid, "dataset_input_error", f"{type(e).__name__}: {e}"[:500])
        return rid

    def _logged(self, rid: str) -> dict[tuple[str, int], float]:
        """What this run already holds: (metric, step) -> value. A run made before this
        driver started (a resumed study) is read from the store once, for its steps."""
        points = self._points.get(rid)
        if points is None:
            points = self._points[rid] = {}
            if rid in self._old:
                for key in self.client.get_run(rid).data.metrics:
                    for m in self.client.get_metric_history(rid, key):
                        points[(m.key, m.step)] = m.value
        return points

    def _log_points(self, rid: str, points: list[Metric], tags: Sequence[RunTag] = ()) -> None:
        """Points and tags in as few requests as MLflow takes (1,000 entities, 100 tags each):
        a finished trial is one of them, then its end."""
        metric_chunks = [points[i:i + 900] for i in range(0, len(points), 900)]
        tag_chunks = [list(tags[i:i + 100]) for i in range(0, len(tags), 100)]
        for metrics, tag_chunk in zip_longest(metric_chunks, tag_chunks, fillvalue=[]):
            self.client.log_batch(rid, metrics=metrics, tags=tag_chunk, synchronous=True)
        logged = self._logged(rid)
        for m in points:
            logged[(m.key, m.step)] = m.value

    def log_epoch(self, spec: TrialSpec, record: Mapping[str, Any],
                  timestamp_ms: int | None = None) -> None:
        """One epoch (or pruning step) of a running trial, as it is reported, at its step.

        A step already in the run (a retried attempt reporting it again, or a resumed full
        finetuning) is not logged twice: the first attempt's point stays.
        """
        step = step_of(record)
        if step is None:
            return
        rid = self.ensure_run(spec)
        logged = self._logged(rid)
        now = timestamp_ms or int(time.time() * 1000)
        points = [Metric(k, v, now, step)
                  for k, v in epoch_metrics(record, _flat_params(spec)).items()
                  if (k, step) not in logged]
        if points:
            self._log_points(rid, points)

    def finish(self, spec: TrialSpec, metrics: dict[str, Any],
               history: Iterable[dict[str, Any]] = ()) -> None:
        """Per-epoch points the live callback did not log (step = epoch), then the final
        values at the last step (results.parquet's columns, module docstring); FINISHED."""
        rid = self.ensure_run(spec)
        identity = _flat_params(spec)  # never a metric too (module docstring)
        logged = self._logged(rid)
        now = int(time.time() * 1000)
        batch: list[Metric] = []
        seen: dict[tuple[str, int], float] = dict(logged)
        for h in history:
            step = step_of(h)
            if step is None:
                continue
            for k, v in epoch_metrics(h, identity).items():
                if (k, step) not in seen:
                    batch.append(Metric(k, v, now, step))
                    seen[(k, step)] = v
        last = max((s for _, s in seen), default=0)
        for k, v in final_metrics(metrics, identity).items():
            if seen.get((k, last)) != v:  # the last epoch's point may already say it
                # 1 ms later than any epoch point: MLflow's latest value is the one at the
                # highest step, then the latest time, so the result wins a tie at that step.
                batch.append(Metric(k, v, now + 1, last))
                seen[(k, last)] = v
        # Text facts of a result (a speed trial's CPU model, instruction set, versions) are
        # tags, so runs can be filtered and compared by the machine that measured them.
        known = {*identity, TRIAL_TAG, "mode", "status", "stage", LABEL_TAG}
        tags = [RunTag(k, str(v)[:5000]) for k, v in metrics.items()
                if isinstance(v, (str, bool)) and k not in known]
        tags += [RunTag(k, v) for k, v in self._label_tags(spec).items()]
        tags.append(RunTag("status", "finished"))
        if rid in self._error_tagged:  # an earlier run of the sweep failed or errored here
            self.client.delete_tag(rid, "error")
            self._error_tagged.discard(rid)
        # Two requests a trial (the points, tags and status together, then the end): the
        # driver's MLflow share of the per-trial overhead (benchmarks/RESULTS.md).
        self._log_points(rid, batch, tags)
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

        ``cell/...`` and ``alpha/...`` runs are nested under the parent runs ``cells`` and
        ``alpha`` (``AGG_PARENTS``), so they do not bury the trials; others (``summary``) are
        top-level. Params are set once, when the run is made (MLflow refuses to change them);
        metrics and ``tags`` are updated on every call, so they may change as the study grows.
        """
        rid = self._agg.get(key)
        if rid is not None and rid in self._no_params:
            self.client.log_batch(rid, params=[Param(k, str(v)) for k, v in params.items()],
                                  synchronous=True)
            self.client.set_terminated(rid, "FINISHED")
            self._no_params.discard(rid)
        if rid is None:
            nest = AGG_PARENTS.get(key.split("/", 1)[0])
            extra = {"mlflow.parentRunId": self.parent(nest)} if nest else {}
            run = self.client.create_run(
                self.experiment_id, run_name=key,
                tags={AGG_TAG: key, KIND_TAG: "aggregate", **self.meta, **extra, **self.run_tags}
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
            + [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()]
            + (self._stamp(rid) if "/" not in key else []),  # the summary, not a cell
            synchronous=True,
        )
        return rid

    def log_report(self, key: str, folder: Path) -> str:
        """The report on the run ``key`` (the study's summary run), every figure and table
        at the artifact root (the report's ``figures/`` flattened into it); a report of
        another architecture (``arch-<name>/``) keeps its folder, flattened the same way."""
        rid = self._summary(key)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder).parts
            where = [part for part in rel[:-1] if part != "figures"]
            self.client.log_artifact(rid, str(path), "/".join(where) or None)
        return rid

    def attach(self, key: str, paths: Iterable[Path], folder: str | None = None,
               tags: Mapping[str, str] | None = None) -> str:
        """Files (the effective study, the sweep's log files) as artifacts of the run ``key``
        (the summary run, made if need be) under ``folder``, and ``tags`` on it."""
        rid = self._summary(key)
        for path in paths:
            self.client.log_artifact(rid, str(path), folder)
        if tags:
            self.client.log_batch(rid, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()],
                                  synchronous=True)
        return rid

    def _summary(self, key: str) -> str:
        return self._agg.get(key) or self.log_aggregate(key, {"kind": key}, {}, 0)
