"""``python -m reports``: write a study's report from its results table or MLflow experiment."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import pandas as pd

EXAMPLES = """\
examples:
  python -m reports --paper --out runs/paper-published/report
      the paper's own report, from its published per-seed results, Table 3 and speed figures
      (shipped with the project: reports/published/data/SOURCE.md names their source)
  python -m reports runs/paper
      read runs/paper/results.parquet, write runs/paper/report/
  python -m reports --results results.csv --out report/
      read a .csv (or .parquet) table; --out defaults to <file's folder>/report
  python -m reports --mlflow-uri sqlite:///runs/tiny/mlflow.db --out runs/tiny/report-mlflow
      read the trial runs of the store's sparse-transfer/<study> experiment (the sweep's own;
      --experiment NAME picks another): the same table, and report, as from results.parquet.
      Runs of other tools need params method, sparsity, dataset, mode, seed and metric
      accuracy. --out defaults to <database's folder>/report for sqlite URIs

The table needs the columns method, sparsity, dataset, mode, seed, accuracy (see
common/columns.py). The report is report.md, table1.csv, alpha.csv, cells.csv, missing.csv
and PNG figures, about the study's main architecture (the one with finetuning rows; other
architectures in arch-<name>/); random-weight speed rows are a reference apart.
"""


PAPER_OUT = Path("runs/paper-published/report")


def build_parser(prog: str = "python -m reports") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Turn a sparse-transfer study's long results table into report.md, CSV "
        "tables and PNG figures (Table 1, appendix C tables, alpha, Figures 2-4, Appendix E).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "folder", nargs="?", type=Path,
        help="a study's output folder: reads FOLDER/results.parquet, writes FOLDER/report/",
    )
    parser.add_argument("--results", type=Path, metavar="FILE",
                        help="results table, .parquet or .csv")
    parser.add_argument("--mlflow-uri", metavar="URI", help="MLflow tracking URI to read runs from")
    parser.add_argument("--paper", action="store_true",
                        help="read the paper's own published results (shipped with the "
                        f"project); --out defaults to {PAPER_OUT}")
    parser.add_argument("--experiment", metavar="NAME",
                        help="MLflow experiment name (default: the store's one "
                        "sparse-transfer/<study> experiment)")
    parser.add_argument("--main-arch", metavar="ARCH",
                        help="architecture report.md is about (default: ResNet50 if it has "
                        "finetuning rows, else the arch with most of them)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="folder to write the report into")
    parser.add_argument("--title", help="first heading of report.md")
    return parser


def _error(message: str) -> int:
    from common.masking import redact

    print(f"python -m reports: error: {redact(message)}", file=sys.stderr)
    return 2


def _unusable_folder(out: Path) -> str | None:
    """Why ``out`` can never be a folder (``/dev/null``, a file, a path under a file), else
    None: checked before writing, where it was a traceback."""
    path = Path(out).expanduser().resolve()
    if path.exists():
        return None if path.is_dir() else "exists and is not a folder"
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"cannot be made: {parent} is not a folder"
    return None


# Tracking URIs that are a name, not a path.
_NAMED_STORES = ("databricks", "databricks-uc", "uc")


def _first_sentences(text: str, limit: int = 300) -> str:
    """MLflow's message on one line, cut after a sentence (or a word) near ``limit``: its
    file-store and connection messages run to several hundred characters."""
    text = " ".join(text.split())
    refused = re.search(r"\[Errno -?\d+\] [^'\")(]+", text)  # inside urllib3's retry text
    if refused:
        return f"cannot connect: {refused.group(0).strip()}"
    if len(text) <= limit:
        return text
    head = text[:limit]
    end = head.rfind(". ")
    return head[: end + 1] if end > limit // 3 else head.rsplit(" ", 1)[0] + " ..."


def main(argv: Sequence[str] | None = None, prog: str = "python -m reports") -> int:
    """Run the CLI (``prog``: how it was called, for ``--help``); returns the exit status
    (0 ok, 2 bad input)."""
    from common.console import tolerant_streams

    tolerant_streams()
    args = build_parser(prog).parse_args(argv)
    sources = [args.folder is not None, args.results is not None, args.mlflow_uri is not None,
               args.paper]
    if sum(sources) != 1:
        return _error("give exactly one of FOLDER, --results FILE, --mlflow-uri URI or --paper "
                      "(see --help)")
    if args.experiment is not None and args.mlflow_uri is None:
        return _error("--experiment needs --mlflow-uri")

    from reports.load import read_results
    from reports.prepare import prepare
    from reports.report import DEFAULT_TITLE, write_report

    if args.paper:
        return _write_paper(args.out or PAPER_OUT, args.title)
    try:
        if args.folder is not None:
            path = args.folder / "results.parquet"
            if not path.exists() and (args.folder / "results.csv").exists():
                path = args.folder / "results.csv"
            frame, source = read_results(path), str(path)
            out = args.out or args.folder / "report"
        elif args.results is not None:
            frame, source = read_results(args.results), str(args.results)
            out = args.out or args.results.parent / "report"
        else:
            frame, source, out = _read_store(args.mlflow_uri, args.experiment, args.out)
        prepare(frame, source)
    except (FileNotFoundError, ValueError, _Refused) as err:
        return _error(str(err))

    problem = _unusable_folder(out)
    if problem:
        return _error(f"--out {out}: {problem}; expected a folder to write the report into")
    paths = write_report(frame, out, title=args.title or DEFAULT_TITLE, source=source,
                         main_arch=args.main_arch)
    print(f"wrote {paths.report_md} ({len(paths.figures)} figures, {len(paths.csvs)} tables)")
    for other in paths.other_archs:
        print(f"wrote {other.report_md} (architecture {other.arch})")
    return 0


class _Refused(Exception):
    """Why the CLI cannot go on, in a line for the user (exit status 2)."""


def _read_store(uri: str, experiment: str | None,
                out: Path | None) -> tuple[pd.DataFrame, str, Path]:
    """The trial runs of an MLflow store: (table, source quoted in the report, --out folder).

    A local store that does not exist is refused (MLflow would create an empty one there); a
    server that does not answer gets one try of 10 s, not MLflow's minutes of retries (a
    user's own settings win).
    """
    from common.masking import redact
    from reports.load import read_mlflow, sweep_experiment

    if uri.startswith("sqlite:///"):
        database = Path(uri[len("sqlite:///"):])
        if not database.is_file():
            raise FileNotFoundError(f"MLflow store not found: {database} (from "
                                    f"--mlflow-uri {redact(uri)})")
        out = out or database.parent / "report"
    elif uri.startswith("file:") or (":" not in uri and uri not in _NAMED_STORES):
        folder = Path(uri.removeprefix("file://"))
        if not folder.is_dir():
            raise FileNotFoundError(f"MLflow store not found: {folder} (from "
                                    f"--mlflow-uri {redact(uri)})")
    if out is None:
        raise _Refused("--out DIR is needed with a non-sqlite --mlflow-uri")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        experiment = experiment or sweep_experiment(uri)
        source = f"MLflow experiment '{experiment}' at {redact(uri)}"
        return read_mlflow(uri, experiment), source, out
    except ValueError:
        raise
    except Exception as err:  # the tracking store's own errors, e.g. a bad URI
        raise _Refused(f"cannot read the MLflow store at {redact(uri)}: "
                       f"{redact(_first_sentences(str(err)))}") from err


def _write_paper(out: Path, title: str | None) -> int:
    """The paper's own report, from `reports.published` (no comparison with itself)."""
    from reports import published
    from reports.report import write_report

    problem = _unusable_folder(out)
    if problem:
        return _error(f"--out {out}: {problem}; expected a folder to write the report into")
    paths = write_report(published.paper_results(), out, title=title or published.TITLE,
                         source=published.DESCRIPTION, main_arch="resnet50",
                         compare_paper=False, expected_seeds=published.EXPECTED_SEEDS)
    print(f"wrote {paths.report_md} ({len(paths.figures)} figures, {len(paths.csvs)} tables)")
    for other in paths.other_archs:
        print(f"wrote {other.report_md} (architecture {other.arch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
