"""Markdown pieces every report section writes: numbers, percentages, tables, figure links.

One home for the formatting so that every section shows a missing number, a mean ± spread and
a sparsity the same way.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

NO_NUMBER = "—"


def num(value: object, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals; a dash when it is missing."""
    if value is None or pd.isna(value):
        return NO_NUMBER
    return f"{float(value):.{digits}f}"


def pm(mean: object, spread: object, digits: int = 2) -> str:
    """``mean ± spread``; the mean alone without a spread, a dash without a mean."""
    if mean is None or pd.isna(mean):
        return NO_NUMBER
    if spread is None or pd.isna(spread):
        return num(mean, digits)
    return f"{float(mean):.{digits}f} ± {float(spread):.{digits}f}"


def pct(sparsity: object) -> str:
    """A sparsity in percent as the report writes it: ``80 %``, ``62.5 %``."""
    return f"{float(sparsity):g} %"


def md_cell(text: object) -> str:
    """``text`` fit for one cell of a Markdown table (``|`` escaped, one line)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        lines.append("| " + " | ".join(md_cell(c) for c in row) + " |")
    return "\n".join(lines)


def figure_md(path: Path | None, out_dir: Path, caption: str) -> str:
    """An image link relative to ``out_dir`` with its caption in italics; its alt text is the
    caption up to the first colon."""
    if path is None:
        return "_No data to draw this figure._"
    rel = os.path.relpath(path, out_dir)
    return f"![{caption.split(':')[0]}]({rel})\n\n*{caption}*"


def slug(text: str) -> str:
    """``text`` as a file-name part: runs of other characters become ``-``, lower case."""
    return re.sub(r"[^0-9A-Za-z]+", "-", text).strip("-").lower() or "unnamed"
