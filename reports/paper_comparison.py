"""A study next to the paper: every cell both measured, the difference, and whether the seeds'
spread explains it.

A cell is shared when the study and the paper's published results (`reports.published`) have
the same architecture, dataset, method, sparsity and finetuning mode (names matched loosely:
``acdc`` is the paper's "AC/DC", ``sun397`` its "SUN"). A difference is flagged when the
per-seed accuracies make it unlikely under seed noise alone: Welch's t-test, two-sided,
p < FLAG_P; where one side has a single seed, that value against the other side's prediction
interval (t with n - 1 degrees of freedom); with one seed on both sides there is no test.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from common.columns import ACCURACY, ARCH, DATASET, METHOD, MODE, SPARSITY
from reports.figures import save_figure
from reports.markdown import md_table
from reports.naming import canonical_dataset, name_key
from reports.prepare import TRANSFER_MODES, prepare, usable
from reports.published import method_key, paper_results
from reports.tables import alpha_by_dataset

FLAG_P = 0.01
KEY = ("_arch", "_dataset", "_method", SPARSITY, MODE)
COLUMNS = (ARCH, DATASET, METHOD, SPARSITY, MODE, "paper_mean", "paper_std", "paper_n",
           "study_mean", "study_std", "study_n", "difference", "p_value", "test", "flagged")
WELCH = "Welch's t-test"
PREDICTION = "one seed against the other side's prediction interval"
NO_SPREAD = "no seed spread on either side: any difference flagged"
NO_TEST = "one seed on each side: not tested"


def _keyed(results: pd.DataFrame, default_arch: str | None) -> pd.DataFrame:
    """Usable transfer rows with matching keys: arch, dataset and method as the paper's."""
    d = prepare(results)
    d = d[usable(d) & d[MODE].isin(TRANSFER_MODES)]
    arch = d[ARCH] if ARCH in d.columns else pd.Series(default_arch or "", index=d.index)
    arch = arch.where(arch != "", default_arch or "")
    return d.assign(_arch=arch.map(name_key), _dataset=d[DATASET].map(
        lambda n: canonical_dataset(n) or name_key(n)), _method=d[METHOD].map(
        lambda m: name_key(method_key(m))))


def _test(paper: np.ndarray, study: np.ndarray) -> tuple[float, str]:
    """Two-sided p-value that the two seed samples share a mean, and the test used."""
    from scipy import stats

    if len(paper) < 2 and len(study) < 2:
        return np.nan, NO_TEST
    diff = float(study.mean() - paper.mean())
    spread = [np.std(v, ddof=1) for v in (paper, study) if len(v) > 1]
    if max(spread) == 0:
        return (0.0 if abs(diff) > 1e-9 else 1.0), NO_SPREAD
    if len(paper) > 1 and len(study) > 1:
        return float(stats.ttest_ind(study, paper, equal_var=False).pvalue), WELCH
    many, one = (paper, study) if len(paper) > 1 else (study, paper)
    scale = np.std(many, ddof=1) * np.sqrt(1 + 1 / len(many))
    t = (one[0] - many.mean()) / scale
    return float(2 * stats.t.sf(abs(t), df=len(many) - 1)), PREDICTION


def compare(study: pd.DataFrame, paper: pd.DataFrame | None = None,
            default_arch: str | None = None) -> pd.DataFrame:
    """One row per cell the study shares with the paper (columns `COLUMNS`), flagged first.

    ``study`` is a long results table; rows without an arch count as ``default_arch``.
    ``method``, ``dataset`` and ``arch`` are the study's own names; ``difference`` is study
    minus paper, in points; ``flagged`` is True where ``p_value`` < FLAG_P.
    """
    s = _keyed(study, default_arch)
    p = _keyed(paper_results() if paper is None else paper, None)
    key = list(KEY)
    p_groups = {k: g[ACCURACY].to_numpy(float) for k, g in p.groupby(key)}
    rows = []
    for k, g in s.groupby(key):
        if k not in p_groups:
            continue
        ours, theirs = g[ACCURACY].to_numpy(float), p_groups[k]
        p_value, test = _test(theirs, ours)
        first = g.iloc[0]
        rows.append({ARCH: first[ARCH] if ARCH in g.columns else default_arch or "",
                     DATASET: first[DATASET], METHOD: first[METHOD], SPARSITY: k[3],
                     MODE: k[4], "paper_mean": theirs.mean(), "paper_std": _std(theirs),
                     "paper_n": len(theirs), "study_mean": ours.mean(), "study_std": _std(ours),
                     "study_n": len(ours), "difference": ours.mean() - theirs.mean(),
                     "p_value": p_value, "test": test,
                     "flagged": bool(p_value < FLAG_P) if not np.isnan(p_value) else False})
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    if out.empty:
        return out
    out["flagged"] = out["flagged"].astype(bool)
    return out.sort_values(["flagged", MODE, METHOD, SPARSITY, DATASET],
                           ascending=[False, True, True, True, True]).reset_index(drop=True)


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else np.nan


def alpha_pairs(study: pd.DataFrame, shared: pd.DataFrame,
                paper: pd.DataFrame | None = None,
                default_arch: str | None = None) -> pd.DataFrame:
    """Mean alpha over the shared datasets per (method, sparsity, mode): the study's and the
    paper's, each against its own dense baseline on those datasets."""
    columns = [METHOD, SPARSITY, MODE, "paper_alpha", "study_alpha", "n_datasets"]
    if shared.empty:
        return pd.DataFrame(columns=columns)
    sides = []
    for name, table in (("study", study), ("paper", paper_results() if paper is None else paper)):
        keyed = _keyed(table, default_arch if name == "study" else None)
        keyed = keyed.assign(**{ARCH: keyed["_arch"], METHOD: keyed["_method"],
                                DATASET: keyed["_dataset"]})
        a = alpha_by_dataset(keyed)
        sides.append(a.set_index([ARCH, METHOD, SPARSITY, DATASET, MODE])["alpha"].rename(name))
    both = pd.concat(sides, axis=1).dropna()
    keep = pd.MultiIndex.from_arrays([
        shared[ARCH].map(name_key), shared[METHOD].map(lambda m: name_key(method_key(m))),
        shared[SPARSITY], shared[DATASET].map(lambda n: canonical_dataset(n) or name_key(n)),
        shared[MODE]])
    both = both[both.index.isin(keep)]
    if both.empty:
        return pd.DataFrame(columns=columns)
    names = dict(zip(keep.get_level_values(1), shared[METHOD]))
    out = both.groupby(level=[METHOD, SPARSITY, MODE]).agg(
        paper_alpha=("paper", "mean"), study_alpha=("study", "mean"),
        n_datasets=("paper", "size")).reset_index()
    out[METHOD] = out[METHOD].map(names)
    return out[columns]


def alpha_figure(pairs: pd.DataFrame, path: Path, colours: Mapping[str, tuple],
                 title: str) -> Path | None:
    """This study's alpha against the paper's, one point per (method, sparsity, mode), with
    the line where both agree."""
    if pairs.empty:
        return None
    fig = Figure(figsize=(5.6, 5.0))
    ax = fig.subplots()
    markers = {"linear": "o", "full": "s"}
    for _, r in pairs.iterrows():
        ax.scatter(r["paper_alpha"], r["study_alpha"], color=colours.get(r[METHOD], "k"),
                   marker=markers.get(r[MODE], "x"), s=36)
        ax.annotate(f"{r[SPARSITY]:g}", (r["paper_alpha"], r["study_alpha"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    low = float(min(pairs["paper_alpha"].min(), pairs["study_alpha"].min()))
    high = float(max(pairs["paper_alpha"].max(), pairs["study_alpha"].max()))
    ax.plot([low, high], [low, high], color="0.45", linestyle="--", linewidth=1)
    ax.set_xlabel("the paper's α (mean over shared datasets)")
    ax.set_ylabel("this study's α (same datasets)")
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colours.get(m, "k"), marker="o", linestyle="", label=m)
               for m in sorted(pairs[METHOD].unique(), key=name_key)]
    handles += [Line2D([], [], color="k", marker=mk, linestyle="", label=f"{mode} finetuning")
                for mode, mk in markers.items() if (pairs[MODE] == mode).any()]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


TITLE = "This study next to the paper"
NOTHING_SHARED = ("No cell of this study is in the paper's published results (the same "
                  "architecture, dataset, method, sparsity and finetuning mode): nothing to "
                  "compare.")


def section(comparison: pd.DataFrame, figure_md: str, max_rows: int = 15) -> str:
    """The report section: counts, how cells are flagged, the flagged (else the most distant)
    cells, and the alpha figure (``figure_md``, empty for none)."""
    if comparison.empty:
        return f"## {TITLE}\n\n{NOTHING_SHARED}"
    flagged = comparison[comparison["flagged"]]
    untested = int((comparison["test"] == NO_TEST).sum())
    lines = [f"## {TITLE}", "", (
        f"{len(comparison)} cells of this study are in the paper's published results (the "
        "reference code's `raw_results/`, shipped in `reports/published/`). "
        f"**{len(flagged)} flagged**: the difference is beyond what the seeds' spread explains "
        f"({WELCH} on the per-seed accuracies, two-sided p < {FLAG_P:g}; where one side has a "
        "single seed, that value against the other side's prediction interval"
        + (f"; {untested} cells with one seed on each side are not tested" if untested else "")
        + "). Every cell is in `paper_comparison.csv` (column `flagged`).")]
    for mode, part in comparison.groupby(MODE, sort=False):
        lines.append(f"- {mode} finetuning: {len(part)} cells, mean difference "
                     f"{part['difference'].mean():+.2f} points (study - paper), largest "
                     f"{part['difference'].abs().max():.2f}, {int(part['flagged'].sum())} "
                     "flagged")
    shown = flagged if not flagged.empty else comparison.reindex(
        comparison["difference"].abs().sort_values(ascending=False).index)
    what = "Flagged cells" if not flagged.empty else "No cell is flagged; the largest differences"
    lines += ["", f"{what}" + (f" (first {max_rows} of {len(shown)})"
                               if len(shown) > max_rows else "") + ":", ""]
    rows = [(r[ARCH], r[DATASET], r[METHOD], f"{r[SPARSITY]:g} %", r[MODE],
             _mean_std(r["paper_mean"], r["paper_std"], r["paper_n"]),
             _mean_std(r["study_mean"], r["study_std"], r["study_n"]),
             f"{r['difference']:+.2f}", _p(r["p_value"]))
            for _, r in shown.head(max_rows).iterrows()]
    lines.append(md_table(["arch", "dataset", "method", "sparsity", "mode", "paper",
                          "this study", "difference", "p"], rows))
    if figure_md:
        lines += ["", figure_md]
    return "\n".join(lines)


def _mean_std(mean: float, std: float, n: int) -> str:
    spread = f" ± {std:.2f}" if not pd.isna(std) else ""
    return f"{mean:.2f}{spread} (n={n})"


def _p(value: float) -> str:
    return "–" if pd.isna(value) else (f"{value:.3g}" if value >= 1e-4 else "< 1e-4")
