"""The paper's figures drawn from the tables of `reports.tables`, saved as PNG files.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot, so
drawing leaves no global state behind in the sweep's process. Each function returns the path
it wrote, or None when its input holds nothing to draw.
"""

from __future__ import annotations

import contextlib
import math
from contextvars import ContextVar
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from common.atomic import atomic_path
from common.columns import (
    DATASET,
    GROUP,
    METHOD,
    MODE,
    SPARSITY,
    SPEEDUP_EPOCH,
    SPEEDUP_INFERENCE,
)
from reports.naming import GENERAL, SPECIALIZED, dataset_sort_key, name_key

DPI = 120
DENSE_COLOUR = "0.45"
GROUP_MARKERS = {GENERAL: "o", SPECIALIZED: "^"}
OTHER_MARKER = "X"
SPARSITY_MARKERS = ("o", "s", "D", "v", "P", "*")
MODE_TITLES = {"linear": "linear finetuning", "full": "full finetuning"}


def method_colours(methods: Iterable[str]) -> dict[str, tuple]:
    """One stable colour per method name (sorted by name), from tab10 or tab20 if needed."""
    from matplotlib import colormaps

    names = sorted(set(methods), key=name_key)
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


# Text stamped across every figure saved inside ``stamped(...)`` (a rehearsal's report).
_STAMP: ContextVar[str | None] = ContextVar("figure_stamp", default=None)


@contextlib.contextmanager
def stamped(text: str | None) -> Iterator[None]:
    """Every figure saved in this block carries ``text`` across it (None: no stamp).

    Why a context and not an argument of each figure: the mark belongs to the whole report
    (a rehearsal's synthetic numbers), not to what any one figure draws.
    """
    token = _STAMP.set(text)
    try:
        yield
    finally:
        _STAMP.reset(token)


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG atomically (``common.atomic``): a reader never sees half an image."""
    path = Path(path)
    stamp = _STAMP.get()
    if stamp:
        fig.text(0.5, 0.5, stamp, ha="center", va="center", rotation=25, fontsize=28,
                 color="red", alpha=0.35, weight="bold", zorder=100)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _modes(frame: pd.DataFrame) -> list[str]:
    return [m for m in MODE_TITLES if (frame[MODE] == m).any()]


def _percent(sparsity: float) -> str:
    return f"{sparsity:g} %"


def _legend_right(fig: Figure, handles, labels, title: str | None = None) -> None:
    fig.legend(
        handles,
        labels,
        title=title,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )


def accuracy_bars(
    cells: pd.DataFrame,
    sparsity: float,
    path: Path,
    colours: Mapping[str, tuple],
    title: str,
) -> Path | None:
    """Grouped bars: accuracy of the dense baseline and each method at ``sparsity`` per dataset.

    Args:
        cells: `reports.tables.cell_stats` rows (transfer modes); dense rows have sparsity 0.
        sparsity: the sparsity drawn (percent).
        path: where the PNG goes.
        colours: method name -> colour.
        title: figure title.
    """
    cells = cells[(cells[SPARSITY] == sparsity) | (cells[SPARSITY] == 0)]
    if cells.empty or not (cells[SPARSITY] == sparsity).any():
        return None
    modes = _modes(cells)
    datasets = sorted(cells[DATASET].unique(), key=dataset_sort_key)
    width_in = max(8.0, 0.85 * len(datasets) + 2.5)
    fig = Figure(figsize=(width_in, 3.6 * len(modes) + 0.6))
    axes = fig.subplots(len(modes), 1, squeeze=False)[:, 0]
    legend: dict[str, object] = {}
    dense_labels = {_dense_label(m) for m in cells.loc[cells[SPARSITY] == 0, METHOD]}
    for ax, mode in zip(axes, modes):
        _accuracy_panel(ax, cells[cells[MODE] == mode], datasets, sparsity, colours, legend)
        ax.set_title(f"{MODE_TITLES[mode]}: dense vs {_percent(sparsity)} sparse", fontsize=10)
    fig.suptitle(title)
    order = sorted(legend, key=lambda k: (k not in dense_labels, name_key(k)))
    _legend_right(fig, [legend[k] for k in order], order, title="method")
    fig.tight_layout()
    return save_figure(fig, path)


def _accuracy_panel(ax, frame: pd.DataFrame, datasets: list[str], sparsity: float,
                    colours: Mapping[str, tuple], legend: dict[str, object]) -> None:
    """One mode's bars: dense (grey) then each method at ``sparsity``, a group per dataset;
    the y axis starts a little below the lowest bar. Adds each bar series to ``legend``."""
    dense = sorted(frame.loc[frame[SPARSITY] == 0, METHOD].unique(), key=name_key)
    sparse = sorted(frame.loc[frame[SPARSITY] == sparsity, METHOD].unique(), key=name_key)
    series = [(m, 0) for m in dense] + [(m, sparsity) for m in sparse]
    bar_w = 0.8 / max(len(series), 1)
    x = np.arange(len(datasets))
    lows = []
    for i, (method, s) in enumerate(series):
        part = frame[(frame[METHOD] == method) & (frame[SPARSITY] == s)]
        part = part.set_index(DATASET).reindex(datasets)
        colour = DENSE_COLOUR if s == 0 else colours.get(method, "k")
        label = _dense_label(method) if s == 0 else method
        bars = ax.bar(x - 0.4 + bar_w * (i + 0.5), part["mean"], bar_w,
                      yerr=part["se"].fillna(0), color=colour, edgecolor="white",
                      linewidth=0.3, error_kw={"elinewidth": 0.7, "capsize": 0}, label=label)
        legend.setdefault(label, bars)
        lows.extend((part["mean"] - part["se"].fillna(0)).dropna())
    low = max(0.0, math.floor(min(lows) - 5.0)) if lows else 0.0
    high = min(100.0, float(np.nanmax(frame["mean"])) + 3.0)
    ax.set_ylim(low, max(high, low + 1.0))
    ax.set_xticks(x, datasets, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(datasets) - 0.4)
    ax.set_ylabel("accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _dense_label(method: str) -> str:
    return method if "dense" in name_key(method) else f"{method} (dense)"


def alpha_vs_sparsity(
    alpha: pd.DataFrame, path: Path, colours: Mapping[str, tuple], title: str
) -> Path | None:
    """Lines of mean alpha over datasets vs sparsity, one per method, SE bars, a panel per mode.

    Args:
        alpha: `reports.tables.alpha_table` rows of group ``"all"``.
    """
    if alpha.empty:
        return None
    modes = _modes(alpha)
    fig = Figure(figsize=(5.2 * len(modes) + 0.5, 4.2))
    axes = fig.subplots(1, len(modes), squeeze=False)[0]
    handles: dict[str, object] = {}
    sparsities = sorted(alpha[SPARSITY].unique())
    gaps = np.diff(sparsities)
    spread = 0.06 * float(gaps.min()) if len(gaps) else 0.0
    spread = spread / max(1, alpha[METHOD].nunique() / 4)
    for ax, mode in zip(axes, modes):
        frame = alpha[alpha[MODE] == mode]
        ax.axhline(0.0, color=DENSE_COLOUR, linestyle="--", linewidth=1)
        methods = sorted(frame[METHOD].unique(), key=name_key)
        for i, method in enumerate(methods):
            part = frame[frame[METHOD] == method].sort_values(SPARSITY)
            # A small horizontal shift per method keeps overlapping error bars apart.
            shift = (i - (len(methods) - 1) / 2) * spread
            line = ax.errorbar(
                part[SPARSITY] + shift,
                part["alpha_mean"],
                yerr=part["alpha_se"].fillna(0),
                marker="o",
                markersize=4,
                capsize=3,
                linewidth=1.4,
                color=colours.get(method, "k"),
                label=method,
            )
            handles.setdefault(method, line)
        ax.set_xticks(sparsities, [f"{s:g}" for s in sparsities])
        ax.set_xlabel("sparsity (%)")
        ax.set_ylabel("relative increase in error α")
        ax.set_title(f"{MODE_TITLES[mode]} (mean ± SE over datasets)", fontsize=10)
        ax.grid(alpha=0.3)
    handles = {k: handles[k] for k in sorted(handles, key=name_key)}
    handles["dense baseline (α = 0)"] = Line2D([], [], color=DENSE_COLOUR, linestyle="--")
    fig.suptitle(title)
    _legend_right(fig, list(handles.values()), list(handles), title="method")
    fig.tight_layout()
    return save_figure(fig, path)


def alpha_vs_difficulty(
    per_dataset: pd.DataFrame,
    difficulty: pd.DataFrame,
    sparsities: Iterable[float],
    path: Path,
    colours: Mapping[str, tuple],
    title: str,
) -> Path | None:
    """Scatter of alpha(D, S) vs task difficulty of D; rows = modes, columns = sparsities.

    Marker shape = dataset group, colour = method; a thin dashed least-squares line per method
    (three datasets or more) shows the trend.

    Args:
        per_dataset: `reports.tables.alpha_by_dataset` rows.
        difficulty: `reports.tables.difficulty` rows (datasets without difficulty are dropped).
    """
    diff = difficulty.dropna(subset=["difficulty"]).set_index(DATASET)["difficulty"]
    data = per_dataset[per_dataset[DATASET].isin(diff.index) & per_dataset["alpha"].notna()]
    sparsities = [s for s in sparsities if (data[SPARSITY] == s).any()]
    data = data[data[SPARSITY].isin(sparsities)]
    if data.empty:
        return None
    data = data.assign(difficulty=data[DATASET].map(diff))
    modes = _modes(data)
    fig = Figure(figsize=(5.0 * len(sparsities) + 0.5, 4.3 * len(modes) + 0.4))
    axes = fig.subplots(len(modes), len(sparsities), squeeze=False)
    method_handles: dict[str, object] = {}
    group_handles: dict[str, object] = {}
    for r, mode in enumerate(modes):
        for c, sparsity in enumerate(sparsities):
            ax = axes[r][c]
            frame = data[(data[MODE] == mode) & (data[SPARSITY] == sparsity)]
            _difficulty_panel(ax, frame, colours, method_handles, group_handles)
            ax.set_title(f"{MODE_TITLES[mode]}, {_percent(sparsity)} sparsity", fontsize=10)
            ax.set_xlabel("task difficulty: dense full − dense linear accuracy (pp)")
            ax.set_ylabel("relative increase in error α")
            ax.grid(alpha=0.3)
    methods = sorted(method_handles, key=name_key)
    handles = [method_handles[m] for m in methods] + [Line2D([], [], linestyle="")]
    handles += list(group_handles.values())
    labels = methods + [""] + [h.get_label() for h in group_handles.values()]
    fig.suptitle(title)
    _legend_right(fig, handles, labels, title="method / group")
    fig.tight_layout()
    return save_figure(fig, path)


def _difficulty_panel(ax, frame: pd.DataFrame, colours: Mapping[str, tuple],
                      method_handles: dict[str, object], group_handles: dict[str, object]) -> None:
    """One (mode, sparsity) panel: alpha vs difficulty per method, a marker per dataset group,
    a least-squares line per method over three datasets or more; records legend handles."""
    ax.axhline(0.0, color=DENSE_COLOUR, linestyle="--", linewidth=1)
    for method in sorted(frame[METHOD].unique(), key=name_key):
        part = frame[frame[METHOD] == method]
        colour = colours.get(method, "k")
        for group, g in part.groupby(GROUP):
            marker = GROUP_MARKERS.get(group, OTHER_MARKER)
            ax.scatter(g["difficulty"], g["alpha"], color=colour, marker=marker,
                       s=34, edgecolor="black", linewidth=0.3, zorder=3)
            group_handles.setdefault(group, Line2D([], [], color="0.3", marker=marker,
                                                   linestyle="", label=f"{group} datasets"))
        method_handles.setdefault(
            method, Line2D([], [], color=colour, marker="s", linestyle="", label=method)
        )
        if part["difficulty"].nunique() >= 3:
            slope, intercept = np.polyfit(part["difficulty"], part["alpha"], 1)
            xs = np.array([part["difficulty"].min(), part["difficulty"].max()])
            ax.plot(xs, slope * xs + intercept, color=colour, linewidth=0.9,
                    linestyle="--", alpha=0.8)


def speed_vs_gap(
    speed: pd.DataFrame, path: Path, colours: Mapping[str, tuple], title: str
) -> Path | None:
    """Figure 4: training speed-up vs the online accuracy gap to dense, a panel per dataset.

    Args:
        speed: `reports.tables.speed_vs_accuracy` rows; those without a gap are left out.
    """
    speed = speed[speed["gap"].notna()]
    y_col = SPEEDUP_EPOCH if speed[SPEEDUP_EPOCH].notna().any() else SPEEDUP_INFERENCE
    speed = speed[speed[y_col].notna()]
    if speed.empty:
        return None
    y_label = {SPEEDUP_EPOCH: "training speed-up over dense (×, epoch time)",
               SPEEDUP_INFERENCE: "inference speed-up over dense (×)"}[y_col]
    panels = sorted(speed[DATASET].astype(str).unique(), key=dataset_sort_key)
    cols = math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.4 * cols + 0.5, 3.8 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    sparsities = sorted(speed[SPARSITY].unique())
    markers = {s: SPARSITY_MARKERS[i % len(SPARSITY_MARKERS)] for i, s in enumerate(sparsities)}
    handles: dict[str, object] = {}
    for ax, panel in zip(axes, panels):
        for _, row in speed[speed[DATASET].astype(str) == panel].iterrows():
            colour = colours.get(row[METHOD], "k")
            se = row["gap_se"]
            ax.errorbar(row["gap"], row[y_col], xerr=se if se > 0 else None,
                        marker=markers[row[SPARSITY]], color=colour, markersize=7,
                        markeredgecolor="black", markeredgewidth=0.3, capsize=2, linestyle="")
            handles.setdefault(
                row[METHOD],
                Line2D([], [], color=colour, marker="s", linestyle="", label=row[METHOD]),
            )
        ax.scatter([0.0], [1.0], marker="*", s=160, color=DENSE_COLOUR, edgecolor="black",
                   linewidth=0.4, zorder=4)
        handles.setdefault("dense", Line2D([], [], color=DENSE_COLOUR, marker="*",
                                           markersize=11, linestyle="", label="dense"))
        ax.axhline(1.0, color=DENSE_COLOUR, linestyle="--", linewidth=1)
        ax.axvline(0.0, color=DENSE_COLOUR, linestyle=":", linewidth=1)
        ax.set_title(panel or "all rows", fontsize=10)
        ax.set_xlabel("online accuracy gap to dense (pp, sparse − dense)")
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if len(sparsities) > 1:
        handles[""] = Line2D([], [], linestyle="")
        for s in sparsities:
            handles[f"{_percent(s)} sparse"] = Line2D([], [], color="0.3", marker=markers[s],
                                                       linestyle="")
    fig.suptitle(title)
    _legend_right(fig, list(handles.values()), list(handles), title="method")
    fig.tight_layout()
    return save_figure(fig, path)


def speedup_vs_sparsity(
    speed: pd.DataFrame, path: Path, colours: Mapping[str, tuple], title: str
) -> Path | None:
    """Speed-up over dense vs sparsity, one line per method; a panel per kind of speed-up.

    Args:
        speed: `reports.tables.speed_table` rows (averaged over datasets here).
    """
    kinds = [
        (c, label)
        for c, label in ((SPEEDUP_EPOCH, "linear-finetuning epoch speed-up (×)"),
                         (SPEEDUP_INFERENCE, "inference speed-up (×)"))
        if c in speed.columns and speed[c].notna().any()
    ]
    if not kinds:
        return None
    fig = Figure(figsize=(5.0 * len(kinds) + 0.5, 4.0))
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    handles: dict[str, object] = {}
    for ax, (column, label) in zip(axes, kinds):
        mean = speed.groupby([METHOD, SPARSITY])[column].mean().dropna().reset_index()
        for method in sorted(mean[METHOD].unique(), key=name_key):
            part = mean[mean[METHOD] == method].sort_values(SPARSITY)
            (line,) = ax.plot(part[SPARSITY], part[column], marker="o",
                              color=colours.get(method, "k"), label=method)
            handles.setdefault(method, line)
        ax.axhline(1.0, color=DENSE_COLOUR, linestyle="--", linewidth=1)
        ticks = sorted(mean[SPARSITY].unique())
        ax.set_xticks(ticks, [f"{s:g}" for s in ticks])
        ax.set_xlabel("sparsity (%)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _legend_right(fig, list(handles.values()), list(handles), title="method")
    fig.tight_layout()
    return save_figure(fig, path)


def filters_bars(
    filters: pd.DataFrame, path: Path, colours: Mapping[str, tuple], title: str
) -> Path | None:
    """Grouped bars of the share of fully pruned convolution filters, per sparsity and method.

    Only sparse models are drawn (the dense one prunes nothing); each sparsity group holds the
    methods that have that level, and every bar carries its value.

    Args:
        filters: `reports.tables.filters_table` rows.
    """
    filters = filters[filters["filters_pruned_pct"].notna() & (filters[SPARSITY] > 0)]
    if filters.empty:
        return None
    sparsities = sorted(filters[SPARSITY].unique())
    methods = sorted(filters[METHOD].unique(), key=name_key)
    widest = max(int((filters[SPARSITY] == s).sum()) for s in sparsities)
    bar_w = 0.8 / widest
    fig = Figure(figsize=(max(6.5, 0.45 * len(filters) + 3.0), 4.4))
    ax = fig.subplots()
    handles: dict[str, object] = {}
    for x, sparsity in enumerate(sparsities):
        group = filters[filters[SPARSITY] == sparsity]
        group = group.assign(_k=group[METHOD].map(name_key)).sort_values("_k")
        for i, (_, row) in enumerate(group.iterrows()):
            pos = x + (i - (len(group) - 1) / 2) * bar_w
            bars = ax.bar(pos, row["filters_pruned_pct"], bar_w * 0.95,
                          color=colours.get(row[METHOD], "k"), label=row[METHOD])
            ax.text(pos, row["filters_pruned_pct"], f"{row['filters_pruned_pct']:.1f}",
                    ha="center", va="bottom", fontsize=7)
            handles.setdefault(row[METHOD], bars)
    ax.set_xticks(range(len(sparsities)), [f"{s:g}" for s in sparsities])
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel("fully pruned convolution filters (%)")
    ax.margins(y=0.12)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.suptitle(title)
    _legend_right(fig, [handles[m] for m in methods], methods, title="method")
    fig.tight_layout()
    return save_figure(fig, path)


def layer_sparsity_lines(
    layers: pd.DataFrame, path: Path, colours: Mapping[str, tuple], title: str
) -> Path | None:
    """Sparsity of every prunable layer, in the network's order, one line per method and one
    panel per sparsity level (the dense backbone is left out: every layer is at 0).

    Args:
        layers: `reports.tables.layer_table` rows.
    """
    layers = layers[layers[SPARSITY] > 0]
    if layers.empty:
        return None
    sparsities = sorted(layers[SPARSITY].unique())
    cols = min(2, len(sparsities))
    rows = math.ceil(len(sparsities) / cols)
    fig = Figure(figsize=(6.0 * cols + 1.8, 3.4 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    handles: dict[str, object] = {}
    for ax, sparsity in zip(axes, sparsities):
        level = layers[layers[SPARSITY] == sparsity]
        for method in sorted(level[METHOD].unique(), key=name_key):
            one = level[level[METHOD] == method].sort_values("layer_index")
            (line,) = ax.plot(one["layer_index"], one["layer_sparsity"], marker=".", lw=1,
                              color=colours.get(method, "k"), label=method)
            handles.setdefault(method, line)
        ax.set_title(f"{sparsity:g} % global sparsity", fontsize=9)
        ax.set_xlabel("prunable layer (network order)")
        ax.set_ylabel("layer sparsity (%)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    for ax in axes[len(sparsities):]:
        ax.set_visible(False)
    fig.suptitle(title)
    methods = sorted(handles, key=name_key)
    _legend_right(fig, [handles[m] for m in methods], methods, title="method")
    fig.tight_layout()
    return save_figure(fig, path)
