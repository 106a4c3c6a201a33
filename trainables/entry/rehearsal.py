"""A rehearsal trial: every kind of trial's result, made up from the trial id in microseconds.

Why: before spending GPU hours on a study, a user wants to know that the orchestration holds
at its size on their cluster: the grid, Ray Tune scheduling thousands of trials, the ledger
on the shared mount, MLflow, the results table, the aggregates and the report. A rehearsal
runs the same sweep with these entries in place of the real ones (``--rehearsal``): no
checkpoint, dataset or GPU is touched, and every number it returns is synthetic. Every result
carries ``rehearsal: True``, which the sweep turns into marks on every report page, figure,
CSV and MLflow run, so these numbers can never pass for results.

The numbers have the shape of the paper's (accuracy falls with sparsity, more for linear than
for full finetuning; sparse models run faster), so that every table and figure has something
to show; they are deterministic per trial id (same id, same numbers).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable

from common import columns as C
from search_spaces.trial import TrialSpec

Report = Callable[[dict[str, Any]], None]
EPOCHS = 3  # per-epoch reports of a transfer trial: enough to exercise the reporting path
MARK = {C.REHEARSAL: True}

# How much each method loses at high sparsity, relative to the others (made up, paper-shaped).
_METHOD_LOSS = {"dense": 0.0, "gmp": 1.0, "woodfisher": 0.8, "acdc": 0.7, "str": 1.1,
                "rigl_erk1x": 1.2, "rigl_erk5x": 0.9, "lth_t": 1.3, "lth": 1.3}


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts`` (sha256: the same on every machine and run)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def synthetic_accuracy(spec: TrialSpec, mode: str) -> float:
    """Dataset base accuracy, minus a sparsity and method penalty, plus seed noise (percent);
    ``mode`` is the transfer mode (``C.MODE_LINEAR`` or ``C.MODE_FULL``)."""
    base = 60.0 + 35.0 * _unit("base", spec.arch, spec.dataset)
    if mode == C.MODE_FULL:
        base = min(99.0, base + 3.0 + 4.0 * _unit(C.MODE_FULL, spec.dataset))
    loss = _METHOD_LOSS.get(spec.method, 1.0) * (spec.sparsity / 100) ** 4 * (
        12.0 if mode == C.MODE_LINEAR else 5.0)
    noise = 0.6 * (_unit("seed", spec.trial_id) - 0.5)
    return round(max(1.0, min(99.5, base - loss + noise)), 3)


def _transfer(spec: TrialSpec, mode: str, report: Report) -> dict[str, Any]:
    """A transfer trial's result with per-epoch reports, rising to its final accuracy."""
    final = synthetic_accuracy(spec, mode)
    history = []
    for epoch in range(1, EPOCHS + 1):
        acc = round(final - (EPOCHS - epoch) * 1.5 - 0.2 * (epoch == EPOCHS), 3)
        history.append({"epoch": epoch, "loss": round(2.0 / epoch, 4), "accuracy": acc})
        report({"epoch": epoch, "accuracy": acc})
    out: dict[str, Any] = {"accuracy": final, "accuracy_last": history[-1]["accuracy"],
                           "best_epoch": EPOCHS - 1, "history": history}
    if mode == C.MODE_FULL:
        out["trainer"] = "rehearsal"
    return out


def _upstream(spec: TrialSpec) -> dict[str, Any]:
    """A zoo checkpoint's (or a backbone's) row: accuracy and sparsity as the spec says."""
    share = (spec.sparsity / 100) ** 3 * 0.2 * _METHOD_LOSS.get(spec.method, 1.0)
    return {"accuracy": round(70.0 - (spec.sparsity / 100) ** 4 * 8, 3),
            C.SPARSITY_MEASURED: float(spec.sparsity), C.FILTERS_PRUNED_SHARE: share,
            "history": []}


def _speed(spec: TrialSpec) -> dict[str, Any]:
    """A speed row: the sparse backbone's times scale with the share of weights kept."""
    kept = 1.0 - 0.9 * spec.sparsity / 100
    dense_ms = 40.0 + 10.0 * _unit("ms", spec.arch)
    sparse_ms = dense_ms * kept * (1.0 + 0.05 * _unit("jitter", spec.trial_id))
    dense_epoch = 30.0 + 5.0 * _unit("epoch", spec.arch)
    sparse_epoch = dense_epoch * (0.35 + 0.65 * kept)
    weights = spec.param("weights", "trained")
    return {
        C.WEIGHTS: weights,
        C.SPARSITY_PROFILE: spec.param("profile", "trained") if weights == "random" else "trained",
        C.BATCH: max(spec.param("batch_sizes", (64,)) or (64,)),
        C.MACS_SHARE: round(1.0 - spec.sparsity / 100, 4),
        C.DS_MS_B1: round(sparse_ms / 20, 3), C.DS_MS_B64: round(sparse_ms, 3),
        C.DS_DENSE_MS_B64: round(dense_ms, 3), C.ORT_DENSE_MS_B64: round(dense_ms * 1.3, 3),
        C.TORCH_DENSE_MS_B64: round(dense_ms * 2.0, 3),
        C.SPEEDUP_INFERENCE: round(dense_ms / sparse_ms, 3),
        C.SPEEDUP_VS_ORT: round(dense_ms * 1.3 / sparse_ms, 3),
        C.SPEEDUP_VS_TORCH: round(dense_ms * 2.0 / sparse_ms, 3),
        C.EPOCH_TIME_S: round(sparse_epoch, 3), C.DENSE_EPOCH_TIME_S: round(dense_epoch, 3),
        C.SPEEDUP_EPOCH: round(dense_epoch / sparse_epoch, 3),
        C.LOADER_WORKERS: spec.param("loader_workers", 4),
        # the same wait on the loader in a shorter epoch
        C.LOADER_SHARE: round(0.1 * dense_epoch / sparse_epoch, 3), C.DENSE_LOADER_SHARE: 0.1,
        **_online_accuracy(spec, weights),
        "accuracy": float("nan"), "history": [],
    }


def _online_accuracy(spec: TrialSpec, weights: str) -> dict[str, Any]:
    """The online runs' test accuracy: the dense one's per dataset, the sparse one lower as
    the sparsity grows; none for random weights (synthetic images, no test split)."""
    dense = 60.0 + 20.0 * _unit("online", spec.dataset)
    sparse = dense - (spec.sparsity / 100) ** 4 * 6 * _METHOD_LOSS.get(spec.method, 1.0)
    if weights == "random":
        dense = sparse = float("nan")
    return {C.ONLINE_EPOCHS: spec.recipe.epochs if spec.recipe else 1,
            C.ONLINE_ACCURACY: round(sparse, 3), C.DENSE_ONLINE_ACCURACY: round(dense, 3),
            C.ONLINE_ACCURACY_GAP: round(sparse - dense, 3)}


def _marked(out: dict[str, Any], t0: float) -> dict[str, Any]:
    """The result with its rehearsal mark and the microseconds it took."""
    return {**out, **MARK, C.TRAIN_TIME_S: time.perf_counter() - t0}


# The entries, one per kind of trial, with the real entries' contract (``trial.run_trial``).

def rehearse_upstream(spec: TrialSpec, ctx: Any, report: Report) -> dict[str, Any]:
    """Stands in for pretraining, pruning and a backbone's checkpoint trial."""
    t0 = time.perf_counter()
    return _marked(_upstream(spec), t0)


def rehearse_linear(spec: TrialSpec, ctx: Any, report: Report) -> dict[str, Any]:
    """Stands in for a linear finetuning trial."""
    t0 = time.perf_counter()
    return _marked(_transfer(spec, C.MODE_LINEAR, report), t0)


def rehearse_full(spec: TrialSpec, ctx: Any, report: Report) -> dict[str, Any]:
    """Stands in for a full finetuning trial."""
    t0 = time.perf_counter()
    return _marked(_transfer(spec, C.MODE_FULL, report), t0)


def rehearse_speed(spec: TrialSpec, ctx: Any, report: Report) -> dict[str, Any]:
    """Stands in for a DeepSparse speed trial (run in Ray Tune, not on the actor pool)."""
    t0 = time.perf_counter()
    return _marked(_speed(spec), t0)
