"""Tables and figures of the transfer study from a long results table (see `common.columns`).

`write_report` is what the sweep calls; `cell_stats`, `alpha_table`, `table1` and
`relative_error_increase` are the plain computations behind it. They are loaded on first use so
that ``import reports`` stays cheap.
"""

from __future__ import annotations

_EXPORTS = {
    "write_report": "reports.report",
    "ReportPaths": "reports.report",
    "cell_stats": "reports.tables",
    "alpha_table": "reports.tables",
    "alpha_by_dataset": "reports.tables",
    "table1": "reports.tables",
    "relative_error_increase": "reports.tables",
    "read_results": "reports.load",
    "read_mlflow": "reports.load",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
