"""The long results table and the aggregate MLflow runs computed from it."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from common import columns as C
from common.atomic import atomic_path
from orchestrator.ledger import Ledger
from orchestrator.stages import mode_of
from orchestrator.tracking import Tracker

SPEC_COLUMNS = ("stage", "mode", "method", "sparsity", "arch", "dataset", "seed", "group",
                "metric", "num_classes")


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    spec = entry.get("spec", {})
    row: dict[str, Any] = {C.TRIAL_ID: entry.get("trial_id")}
    for k in SPEC_COLUMNS:
        row[k] = spec.get(k)
    row[C.MODE] = mode_of(spec["stage"]) if spec.get("stage") else None
    recipe = spec.get("recipe") or {}
    row[C.EPOCHS] = recipe.get("epochs")
    row[C.LR] = recipe.get("lr")
    row[C.STATUS] = entry.get("status")
    row[C.ERROR] = entry.get("error")
    for k, v in (entry.get("metrics") or {}).items():
        if k not in row or row[k] is None:
            row[k] = v
    row.setdefault(C.ACCURACY, None)
    # Which code and machine recorded it; a speed row's own machine and versions stand.
    for k, v in (entry.get("provenance") or {}).items():
        if k in C.PROVENANCE and row.get(k) is None:
            row[k] = v
    return row


def results_frame(ledger: Ledger,
                  method_labels: Mapping[str, str] | None = None,
                  method_facts: Callable[[str, int, bool], Mapping[str, str]] | None = None,
                  ) -> pd.DataFrame:
    """One row per recorded trial: config columns, status, error and final metrics.

    ``method_labels`` (the study's ``label`` per method key) fill a ``method_label`` column,
    so that a report rebuilt from the table alone names methods as the study does;
    ``method_facts`` (``Study.method_facts``) fill ``family`` and ``lth_source``, so a
    method of the study's own is grouped by its family and LTH-T says where it came from
    (a ticket's weights, or a mask on the dense weights: whether the trial's spec names a
    mask checkpoint, which the grid chose from the ticket's content).
    """
    entries = list(ledger.entries())
    masked = [bool((e.get("spec") or {}).get("mask_checkpoint")) for e in entries]
    df = pd.DataFrame([_row(e) for e in entries])
    if df.empty:
        return pd.DataFrame(columns=[C.TRIAL_ID, *SPEC_COLUMNS, C.STATUS, C.ACCURACY])
    if method_labels:
        df.insert(list(df.columns).index(C.METHOD) + 1, C.METHOD_LABEL,
                  df[C.METHOD].map(dict(method_labels)))
    if method_facts:
        facts = [method_facts(str(m), int(s), mask) if pd.notna(s) else {}
                 for m, s, mask in zip(df[C.METHOD], df[C.SPARSITY], masked)]
        at = list(df.columns).index(C.METHOD_LABEL if method_labels else C.METHOD) + 1
        for i, column in enumerate((C.FAMILY, C.LTH_SOURCE)):
            values = [f.get(column) for f in facts]
            if any(values):
                df.insert(at + i, column, values)
    return df.sort_values([C.MODE, C.METHOD, C.SPARSITY, C.DATASET, C.SEED],
                          na_position="last").reset_index(drop=True)


def write_results(df: pd.DataFrame, path: Path) -> None:
    """Atomic parquet write: readers see the old table or the new one."""
    with atomic_path(path) as tmp:  # a full disk then names the file (pyarrow does not)
        df.to_parquet(tmp, index=False)


def transfer_rows(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    ok = df[C.MODE].isin(C.TRANSFER_MODES) & (df[C.STATUS] == "finished")
    return df[ok]


SUMMARY_KEY = "summary"

# What each tracker last logged per aggregate key, in this process. Why: the sweep writes its
# outputs after the linear stage, after the full stage and at the end; at 10,000 trials the
# aggregates are hundreds of runs, one MLflow request each, and most are unchanged since the
# last call (benchmarks/RESULTS.md). A new process (a rerun) logs them all once.
_LOGGED: "weakref.WeakKeyDictionary[Tracker, dict[str, str]]" = weakref.WeakKeyDictionary()


def _log_aggregate(tracker: Tracker, key: str, params: dict[str, Any],
                   metrics: Mapping[str, Any], step: int,
                   tags: Mapping[str, Any] | None = None) -> None:
    """``tracker.log_aggregate``, skipped when this tracker already logged the same values."""
    seen = _LOGGED.setdefault(tracker, {})
    values = repr((sorted(params.items()), sorted(metrics.items()), step,
                   sorted((tags or {}).items())))
    if seen.get(key) == values:
        return
    tracker.log_aggregate(key, params=params, metrics=dict(metrics), step=step,
                          tags=dict(tags) if tags is not None else None)
    seen[key] = values


def log_findings(df: pd.DataFrame, tracker: Tracker) -> None:
    """The paper's findings, checked (`reports.findings`), on the study's summary run.

    Tags ``finding_<n>`` (holds / does not hold / not testable) and ``finding_<n>_why``, tag
    ``findings_arch``, metrics ``findings_holding`` and ``findings_testable``: so runs of
    several studies can be compared on whether they reproduce the paper, without the report.
    """
    from reports.findings import HOLDS, NOT_TESTABLE, check_findings

    if C.METHOD_LABEL in df.columns:  # the reasons name methods as the report does: by label
        df = df.assign(**{C.METHOD: df[C.METHOD_LABEL].where(df[C.METHOD_LABEL].notna(),
                                                             df[C.METHOD])})
    verdicts = check_findings(df)
    tags: dict[str, str] = {"findings_arch": verdicts[0].arch or ""}
    for v in verdicts:
        tags[f"finding_{v.number}"] = v.verdict
        tags[f"finding_{v.number}_why"] = v.why
    metrics = {
        "findings_holding": sum(v.verdict == HOLDS for v in verdicts),
        "findings_testable": sum(v.verdict != NOT_TESTABLE for v in verdicts),
    }
    _log_aggregate(tracker, SUMMARY_KEY, params={"kind": "summary"}, metrics=metrics,
                          step=len(transfer_rows(df)), tags=tags)


def log_paper_comparison(report: Path, tracker: Tracker) -> None:
    """The report's comparison with the paper (`reports.paper_comparison`), counted on the
    summary run: metrics ``paper_shared_cells`` and ``paper_flagged_cells``, tag
    ``paper_flagged`` naming the flagged cells; the CSV itself is among the report's artifacts.
    """
    frames = [pd.read_csv(p) for p in sorted(Path(report).rglob("paper_comparison.csv"))]
    frames = [f for f in frames if not f.empty]
    both = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    flagged = both[both["flagged"].astype(bool)] if not both.empty else both
    cells = [f"{r.arch} {r.method} {r.sparsity:g} % {r.dataset} {r.mode} ({r.difference:+.2f})"
             for r in flagged.itertuples()]
    text = "; ".join(cells)
    tags = {"paper_flagged": text if len(text) <= 4000 else text[:3990] + " ..."}
    _log_aggregate(tracker, SUMMARY_KEY, params={"kind": "summary"},
                   metrics={"paper_shared_cells": len(both), "paper_flagged_cells": len(flagged)},
                   step=len(both), tags=tags)


def _arch_part(row: dict, several: bool) -> str:
    """``<arch>/`` in an aggregate's key in a study of several architectures (their cells
    must not overwrite each other), else nothing, so a one-architecture study keeps its
    keys."""
    return f"{row['arch']}/" if several and row.get("arch") else ""


def log_aggregates(df: pd.DataFrame, tracker: Tracker) -> None:
    """Per-cell stats over seeds, alpha over datasets and the paper's findings checked, as
    idempotent MLflow runs."""
    from reports.tables import alpha_table, cell_stats

    rows = transfer_rows(df)
    if rows.empty:
        return
    several = C.ARCH in rows.columns and rows[C.ARCH].nunique() > 1
    names = ("arch",) if several else ()
    cells = cell_stats(rows)
    for r in cells.to_dict("records"):
        arch = _arch_part(r, several)
        key = f"cell/{arch}{r['mode']}/{r['method']}/{int(r['sparsity'])}/{r['dataset']}"
        _log_aggregate(
            tracker, key,
            params={k: r[k] for k in (*names, "mode", "method", "sparsity", "dataset")},
            metrics={k: r[k] for k in ("mean", "std", "se", "count")},
            step=int(r["count"]),
        )
    alpha = alpha_table(rows)
    for r in alpha.to_dict("records"):
        arch = _arch_part(r, several)
        key = f"alpha/{arch}{r['mode']}/{r['method']}/{int(r['sparsity'])}/{r['group']}"
        _log_aggregate(
            tracker, key,
            params={k: r[k] for k in (*names, "mode", "method", "sparsity", "group")},
            metrics={"alpha_mean": r["alpha_mean"], "alpha_se": r["alpha_se"],
                     "n_datasets": r["n_datasets"]},
            step=int(r["n_datasets"]),
        )
    log_findings(df, tracker)
