"""`write_report`: a study's long results table -> report.md, CSV tables and PNG figures.

The report answers what a reader of the paper looks for (Table 1, the appendix C tables, the
relative increase in error alpha, Figures 2-4, Appendix E, Table 3) and says, section by
section, how many trials each number rests on and which cells of the grid are missing, so that
a partial sweep still gives a truthful report. A section without data says "no data".

`write_report` prepares the table, splits it by architecture, renders every section of
`reports.sections.SECTIONS` in order, writes the tables and figures they return and joins their
Markdown; the contents line is made from the titles of the sections shown. ``report.md`` is
about the study's main architecture (`reports.prepare.pick_main_arch`); each other architecture
gets its own report in ``out_dir/arch-<name>/``. Random-weight speed rows belong to no
architecture: they are the speed section's "Speed reference" part.

Methods are shown by their labels (the caller's ``method_labels``, else a ``method_label``
column, else the paper's labels of known keys); every CSV keeps the key in ``method`` and adds
``method_label``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from common.atomic import atomic_write_text
from common.columns import (ACCURACY_LAST, ARCH, DATASET, METHOD, METHOD_LABEL, MODE, REHEARSAL,
                            SPARSITY)
from reports import figures, tables
from reports.markdown import slug
from reports.naming import LIST_SEPARATOR, arch_label, name_key
from reports.naming import method_labels as _method_labels
from reports.prepare import pick_main_arch, prepare_with_notes, reference_rows
from reports.sections import SECTIONS, Context

DEFAULT_TITLE = "How well do sparse ImageNet models transfer? Study report"
REHEARSAL_STAMP = "REHEARSAL\nsynthetic numbers"
REHEARSAL_BANNER = (
    "> **REHEARSAL — synthetic numbers, not results.** Every trial behind this page ran the "
    "rehearsal stand-in (`trainables/entry/rehearsal.py`, `python -m orchestrator.sweep "
    "--rehearsal`), which makes its numbers up from the trial id: nothing here was measured. "
    "It checks the orchestration at the study's size (grid, Ray Tune, ledger, MLflow, this "
    "report) and says nothing about sparse transfer. Every figure is stamped REHEARSAL and "
    "every CSV starts with a `rehearsal` column."
)

__all__ = ["ALPHA_CSV_COLUMNS", "DEFAULT_TITLE", "REHEARSAL_BANNER", "ReportPaths",
           "TABLE1_CSV_COLUMNS", "is_rehearsal", "pick_main_arch", "resolve_labels",
           "with_keys", "write_report"]


@dataclass(frozen=True)
class ReportPaths:
    """What `write_report` wrote. Figures list only the PNGs that had data to draw."""

    out_dir: Path
    report_md: Path
    table1_csv: Path
    alpha_csv: Path
    cells_csv: Path
    missing_csv: Path
    csvs: tuple[Path, ...]
    figures: tuple[Path, ...]
    arch: str | None = None
    other_archs: tuple["ReportPaths", ...] = field(default_factory=tuple)
    speed_reference_csv: Path | None = None

    @property
    def markdown(self) -> Path:
        """Same as ``report_md``."""
        return self.report_md


@dataclass(frozen=True, eq=False)
class _Study:
    """What every page of one report shares: the prepared table split for the sections."""

    title: str
    source: str
    notes: tuple[str, ...]
    keys: Mapping[str, str]  # label -> method key, for the CSVs
    whole: pd.DataFrame  # every arch (rows without one as the main) and the speed reference
    reference: pd.DataFrame  # the random-weight speed rows
    rehearsal: bool
    compare_paper: bool


def write_report(
    results: pd.DataFrame,
    out_dir: Path,
    title: str = DEFAULT_TITLE,
    source: str = "results table passed by the caller",
    *,
    main_arch: str | None = None,
    method_labels: Mapping[str, str] | None = None,
    rehearsal: bool = False,
    compare_paper: bool = True,
    expected_seeds: Mapping[str, Mapping[str, int]] | None = None,
) -> ReportPaths:
    """Write report.md, the CSV tables and the figures of a study into ``out_dir``.

    Args:
        results: long results table (columns of `common.columns`; at least method, sparsity,
            dataset, mode, seed, accuracy). Sparsity in percent or as fractions.
        out_dir: folder to write into (created); files are replaced atomically.
        title: first heading of report.md.
        source: where the table came from, quoted in the report.
        main_arch: the study's main architecture (the sweep passes its study's ``arch``);
            used when it has finetuning rows, see `pick_main_arch`.
        method_labels: method key -> label shown in tables and figures (the sweep passes its
            study's labels); over a ``method_label`` column and the paper's labels.
        rehearsal: the numbers are a rehearsal's (synthetic); also so when any row of
            ``results`` has a true ``rehearsal`` column. Every page then opens with a
            REHEARSAL banner, every figure is stamped and every CSV starts with a
            ``rehearsal`` column (see `is_rehearsal`).
        compare_paper: add the section comparing each cell shared with the paper's published
            results (`reports.paper_comparison`); False for the paper's own results.
        expected_seeds: arch -> mode -> seeds each cell should have (what was run); without
            it a mode expects the most seeds any of its cells has (see `missing_cells`).

    Returns:
        The paths written: report.md and every CSV and figure the sections returned (see
        `reports.sections`). Other architectures go to ``out_dir/arch-<name>/``.

    Raises:
        ValueError: the table lacks a required column or has an unreadable sparsity.
    """
    rehearsal = rehearsal or is_rehearsal(results)
    stamp = figures.stamped(REHEARSAL_STAMP) if rehearsal else contextlib.nullcontext()
    with stamp:
        data, notes = prepare_with_notes(results, source)
        labels = resolve_labels(data, method_labels)
        is_reference = reference_rows(data)
        # Everything is computed on labels, so tables and figures show them; CSVs map back.
        shown = data.drop(columns=[METHOD_LABEL], errors="ignore")
        shown = shown.assign(**{METHOD: shown[METHOD].map(labels)})
        reference = shown[is_reference].reset_index(drop=True)
        rest = shown[~is_reference].reset_index(drop=True)
        main = pick_main_arch(rest, main_arch)
        if main is not None:
            rest = rest.assign(**{ARCH: rest[ARCH].replace("", main)})
        study = _Study(f"REHEARSAL: {title}" if rehearsal else title, source, tuple(notes),
                       {label: key for key, label in labels.items()},
                       pd.concat([rest, reference], ignore_index=True), reference, rehearsal,
                       compare_paper)
        return _write_archs(study, rest, main, Path(out_dir), expected_seeds or {},
                            main_arch or "")


def _write_archs(study: _Study, rest: pd.DataFrame, main: str | None, out_dir: Path,
                 seeds: Mapping[str, Mapping[str, int]], asked: str) -> ReportPaths:
    """The main architecture's report in ``out_dir``, every other one's in ``arch-<name>/``."""
    if main is None:
        return _write_page(study, rest, None, out_dir, study.title, seeds.get(asked))
    others = sorted((a for a in rest[ARCH].unique() if a != main), key=name_key)
    sub = tuple(
        _write_page(study, _rows_of(rest, a), a, out_dir / f"arch-{slug(a)}",
                    f"{study.title} ({a})", seeds.get(a), parent=out_dir / "report.md")
        for a in others
    )
    return _write_page(study, _rows_of(rest, main), main, out_dir, study.title,
                       seeds.get(main), others=sub)


def _rows_of(rest: pd.DataFrame, arch: str) -> pd.DataFrame:
    return rest[rest[ARCH] == arch].reset_index(drop=True)


def _write_page(
    study: _Study,
    data: pd.DataFrame,
    arch: str | None,
    out_dir: Path,
    title: str,
    expected: Mapping[str, int] | None,
    parent: Path | None = None,
    others: tuple[ReportPaths, ...] = (),
) -> ReportPaths:
    """One architecture's report.md: render every section, write what they return."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = study.reference if parent is None else study.reference.iloc[0:0]
    ctx = _context(study, data, arch, out_dir, reference, expected)
    rendered = [(section.title, section.render(ctx)) for section in SECTIONS]
    csvs: dict[str, Path] = {}
    for _, result in rendered:
        for name, frame in result.tables.items():
            if name in csvs:
                raise ValueError(f"two report sections return the table {name!r}")
            frame = _marked(frame) if study.rehearsal else frame
            csvs[name] = atomic_write_text(out_dir / f"{name}.csv",
                                           with_keys(frame, study.keys).to_csv(index=False))
    shown = [(t, r.markdown.strip()) for t, r in rendered if r.markdown.strip()]
    head = [f"# {title}", REHEARSAL_BANNER if study.rehearsal else "",
            _contents([t for t, _ in shown], arch, others, out_dir, parent, reference)]
    report_md = atomic_write_text(
        out_dir / "report.md", "\n\n".join([*(h for h in head if h), *(md for _, md in shown)])
        + "\n")
    return ReportPaths(
        out_dir=out_dir, report_md=report_md, table1_csv=csvs["table1"],
        alpha_csv=csvs["alpha"], cells_csv=csvs["cells"], missing_csv=csvs["missing"],
        csvs=tuple(csvs.values()), figures=tuple(f for _, r in rendered for f in r.figures),
        arch=arch, other_archs=others, speed_reference_csv=csvs.get("speed_reference"),
    )


def _context(study: _Study, data: pd.DataFrame, arch: str | None, out_dir: Path,
             reference: pd.DataFrame, expected: Mapping[str, int] | None) -> Context:
    """The tables every section reads, computed once per page."""
    methods = [*data.loc[data[SPARSITY] > 0, METHOD].unique(), *reference[METHOD].unique()]
    return Context(
        data=data, whole=study.whole, reference=reference, out_dir=out_dir, arch=arch,
        source=study.source, notes=study.notes, cells=_cells_with_last(data),
        missing=tables.missing_cells(data, expected), alpha=tables.alpha_table(data),
        alpha_by_dataset=tables.alpha_by_dataset(data),
        colours=figures.method_colours(methods), compare_paper=study.compare_paper,
    )


def _cells_with_last(data: pd.DataFrame) -> pd.DataFrame:
    """`reports.tables.cell_stats`, with the last epoch's statistics as ``last_*`` columns
    when the table has ``accuracy_last``."""
    cells = tables.cell_stats(data)
    if ACCURACY_LAST not in data.columns or cells.empty:
        return cells
    last = tables.cell_stats(data, ACCURACY_LAST)
    if last.empty:
        return cells
    keys = ([ARCH] if ARCH in cells.columns else []) + [METHOD, SPARSITY, DATASET, MODE]
    last = last[keys + ["mean", "std", "se", "count"]].rename(
        columns={"mean": "last_mean", "std": "last_std", "se": "last_se", "count": "last_count"}
    )
    merged = cells.merge(last, on=keys, how="left")
    merged["last_count"] = merged["last_count"].astype("Int64")
    return merged


def _contents(
    titles: Sequence[str],
    arch: str | None,
    others: tuple[ReportPaths, ...],
    out_dir: Path,
    parent: Path | None,
    reference: pd.DataFrame,
) -> str:
    """The contents line (the shown sections' titles), then what this page is about and
    links to the other architectures' pages."""
    lines = ["Contents: " + " · ".join(titles) + "."]
    about = []
    if arch is not None and parent is None:
        about.append(f"This report is about the study's main architecture, `{arch}`: the one "
                     "with finetuning results.")
    elif arch is not None:
        about.append(f"This report is about architecture `{arch}`; the study's main report is "
                     f"[report.md]({os.path.relpath(parent, out_dir)}).")
    if others:
        about.append("Other architectures, each in a report of its own: "
                     + ", ".join(f"[{o.arch}]({os.path.relpath(o.report_md, out_dir)})"
                                 for o in others) + ".")
    if not reference.empty:
        names = (sorted({arch_label(a) for a in reference[ARCH]}) if ARCH in reference.columns
                 else ["network"])
        about.append("Random-weight speed timings (" + ", ".join(names) + ") are a reference "
                     "of their own at the end of the speed section, apart from the study's "
                     "results.")
    if about:
        lines += ["", " ".join(about)]
    return "\n".join(lines)


def resolve_labels(data: pd.DataFrame, given: Mapping[str, str] | None = None) -> dict[str, str]:
    """Method key -> label: ``given``, else the table's ``method_label`` column, else the
    paper's label (`reports.naming.method_labels`)."""
    from_column: dict[str, str] = {}
    if METHOD_LABEL in data.columns:
        pairs = data[[METHOD, METHOD_LABEL]].dropna()
        for key, label in zip(pairs[METHOD], pairs[METHOD_LABEL]):
            if str(label).strip():
                from_column.setdefault(str(key), str(label).strip())
    return _method_labels(data[METHOD].unique(), {**from_column, **dict(given or {})})


def with_keys(frame: pd.DataFrame, keys: Mapping[str, str]) -> pd.DataFrame:
    """A table computed on labels, as a CSV keeps it: the key in ``method`` and the label in
    ``method_label`` beside it; Table 1's ``best_methods`` (keys) gets ``best_methods_label``."""
    out = frame.drop(columns=[METHOD_LABEL], errors="ignore")
    if METHOD in out.columns:
        label = out[METHOD]
        out = out.assign(**{METHOD: label.map(lambda v: keys.get(v, v))})
        out.insert(list(out.columns).index(METHOD) + 1, METHOD_LABEL, label)
    if "best_methods" in out.columns:
        label = out["best_methods"]

        def to_keys(text: object) -> object:
            if not isinstance(text, str) or not text:
                return text
            return LIST_SEPARATOR.join(keys.get(v, v) for v in text.split(LIST_SEPARATOR))

        out = out.assign(best_methods=label.map(to_keys))
        out.insert(list(out.columns).index("best_methods") + 1, "best_methods_label", label)
    return out


def _insert_after(columns: Sequence[str], after: str, name: str) -> tuple[str, ...]:
    columns = list(columns)
    columns.insert(columns.index(after) + 1, name)
    return tuple(columns)


TABLE1_CSV_COLUMNS = _insert_after(tables.TABLE1_COLUMNS, "best_methods", "best_methods_label")
ALPHA_CSV_COLUMNS = _insert_after(tables.ALPHA_COLUMNS, METHOD, METHOD_LABEL)


def is_rehearsal(results: pd.DataFrame) -> bool:
    """True when any row is a rehearsal's: a ``rehearsal`` column holding True (a bool from
    results.parquet, the text ``True`` from an MLflow tag)."""
    if REHEARSAL not in results.columns:
        return False
    return bool(results[REHEARSAL].map(
        lambda v: v is True or str(v).strip().lower() in ("true", "1", "1.0")).any())


def _marked(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a first column ``rehearsal`` = True (a rehearsal's CSVs)."""
    rest = frame.drop(columns=[REHEARSAL], errors="ignore")
    return rest.assign(**{REHEARSAL: True})[[REHEARSAL, *rest.columns]]
