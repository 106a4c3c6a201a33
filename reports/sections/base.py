"""What a report section is: a title and a `render` from the shared `Context` to a `Rendered`.

Every section reads the same frozen `Context` (one architecture's prepared rows and the tables
computed once for all) and returns its Markdown, the tables it names (each written as
``<name>.csv``) and the figures it drew. It writes nothing itself: `reports.report` writes what
the sections return, so every file is written the same way (labels mapped back to keys, the
rehearsal mark). Also here: the coverage line each section opens with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import pandas as pd

from common.columns import DATASET, METHOD, MODE, SPARSITY, STATUS
from reports.markdown import pct
from reports.naming import is_lottery_ticket
from reports.prepare import FINISHED, LINEAR, TRANSFER_MODES, usable

MAX_LISTED = 15


@dataclass(frozen=True, eq=False)
class Context:
    """What every section reads. Methods are shown by label in every frame."""

    data: pd.DataFrame  # prepared rows of this report's architecture
    whole: pd.DataFrame  # every architecture's rows and the speed reference (findings 7, 8)
    reference: pd.DataFrame  # random-weight speed rows (the main report's; else empty)
    out_dir: Path
    arch: str | None
    source: str  # where the table came from, quoted in the Data section
    notes: tuple[str, ...]  # what preparing the table changed
    cells: pd.DataFrame  # cell statistics, with last_* columns when the table has them
    missing: pd.DataFrame  # cells with fewer seeds than expected
    alpha: pd.DataFrame  # alpha_table
    alpha_by_dataset: pd.DataFrame
    colours: Mapping[str, tuple]
    compare_paper: bool = True


@dataclass(frozen=True, eq=False)
class Rendered:
    """A section's result: Markdown (empty: the section is left out), tables by CSV name, and
    the figures it drew (PNG paths)."""

    markdown: str
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    figures: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Section:
    """One part of report.md: its name in the contents line and how it renders."""

    title: str
    render: Callable[[Context], Rendered]


def select(
    frame: pd.DataFrame,
    modes: Iterable[str] = TRANSFER_MODES,
    sparsities: Iterable[float] | None = None,
    drop_lth_linear: bool = False,
) -> pd.DataFrame:
    """Rows of ``frame`` (prepared table or missing cells) in a section's part of the grid."""
    keep = frame[MODE].isin(list(modes))
    if sparsities is not None:
        keep &= frame[SPARSITY].isin(list(sparsities))
    if drop_lth_linear:
        keep &= ~((frame[MODE] == LINEAR) & frame[METHOD].map(is_lottery_ticket))
    return frame[keep]


def without_linear_lth(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without LTH-T's linear-finetuning rows: the paper leaves them out of its
    linear figures (LTH-T is made for full finetuning)."""
    return frame[~((frame[MODE] == LINEAR) & frame[METHOD].map(is_lottery_ticket))]


def _missing_line(row: pd.Series) -> str:
    text = (
        f"{row[MODE]} · {row[METHOD]} · {pct(row[SPARSITY])} · {row[DATASET]}: "
        f"{row['n_seeds']} of {row['n_expected']} seeds"
    )
    details = []
    if row["failed_seeds"]:
        details.append(f"failed: {row['failed_seeds']}")
    if row["missing_seeds"]:
        details.append(f"not run: {row['missing_seeds']}")
    return text + (f" ({'; '.join(details)})" if details else "")


def coverage_md(rows: pd.DataFrame, missing: pd.DataFrame, what: str = "trials") -> str:
    """How many usable trials a section rests on, how many failed, which cells lack seeds."""
    ok = usable(rows)
    per_mode = [
        f"{m}: {int((ok & (rows[MODE] == m)).sum())}"
        for m in TRANSFER_MODES
        if (rows[MODE] == m).any()
    ]
    failed = int((rows[STATUS] != FINISHED).sum())
    empty = int((~ok & (rows[STATUS] == FINISHED)).sum())
    text = f"**Coverage.** Rests on {int(ok.sum())} usable {what}"
    text += f" ({', '.join(per_mode)})." if per_mode else "."
    if failed:
        text += f" {failed} failed trial(s) excluded."
    if empty:
        text += f" {empty} trial(s) without an accuracy excluded."
    if missing.empty:
        return text + " No cell of this part of the grid is missing seeds."
    text += f" {len(missing)} cell(s) have fewer seeds than expected:\n"
    lines = [f"- {_missing_line(r)}" for _, r in missing.head(MAX_LISTED).iterrows()]
    if len(missing) > MAX_LISTED:
        lines.append(f"- … and {len(missing) - MAX_LISTED} more (see `missing.csv`).")
    return text + "\n".join(lines)
