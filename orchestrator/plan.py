"""What a sweep will do, before it does it: the dry run's tables and compute estimate."""

from __future__ import annotations

from collections import Counter

from orchestrator.grid import Grid
from orchestrator.stages import ORDER, STAGES
from search_spaces.schema import Study


def resources(study: Study) -> dict[str, str]:
    """What each trial kind asks of the cluster, in words (each stage says its own)."""
    return {k: v for stage in STAGES for k, v in stage.resources_text(study).items()}


def estimate_gpu_hours(study: Study, grid: Grid) -> dict[str, float]:
    """GPU-hours from image counts x epochs and the study's assumed throughputs (each stage
    estimates its own trials)."""
    return {k: v for stage in STAGES
            for k, v in stage.estimate(study, grid.stages.get(stage.name, [])).items()}


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = lambda r: "  ".join(str(x).rjust(w) if i else str(x).ljust(w)  # noqa: E731
                              for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def _backbone_lines(grid: Grid) -> list[str]:
    """One line per method: what it is and which files it stands for, LTH-T's source too."""
    lines = []
    for m in grid.study.methods:
        mine = [b for b in grid.backbones if b.method == m.name and b.transfer]
        if not mine:
            continue
        per_arch = []
        for arch in dict.fromkeys(b.arch for b in mine):
            levels = [b.sparsity for b in mine if b.arch == arch]
            sources = sorted({m.lth_source(s) for s in levels} - {""})
            per_arch.append(f"{arch} {', '.join(map(str, levels))}"
                            + (f" ({'; '.join(sources)})" if sources else ""))
        lines.append(f"  {m.name:<14} {m.label}; {m.family}; {' | '.join(per_arch)}")
    return lines


def describe(grid: Grid) -> str:
    """The dry run's printout: trials per method and mode, resources, compute estimate."""
    study = grid.study
    stages = [s for s in ORDER if grid.stages.get(s)]
    per = Counter((t.method, t.stage) for t in grid.all_trials())
    methods = [m.name for m in study.methods] + sorted(
        {t.method for t in grid.all_trials()} - {m.name for m in study.methods}
    )
    rows = []
    for m in methods:
        counts = [per[(m, s)] for s in stages]
        if any(counts):
            rows.append([m, *map(str, counts), str(sum(counts))])
    totals = [sum(per[(m, s)] for m in methods) for s in stages]
    rows.append(["total", *map(str, totals), str(sum(totals))])
    lines = [
        f"Study {study.name!r}: {study.description}".rstrip(": "),
        f"architectures: {', '.join(study.archs)}; datasets ({len(study.datasets)}): "
        + ", ".join(d.name for d in study.datasets),
        "seeds: " + "; ".join(f"{m.name} {list(m.seeds)}" + "".join(
            f", {a} {list(s)}" for a, s in m.arch_seeds) for m in study.modes),
        f"backbones: {sum(b.transfer for b in grid.backbones)}",
        "",
        "Backbones per method (label; family; sparsities per architecture)",
        *_backbone_lines(grid),
        "",
        "Trials per method and stage",
        _table(rows, ["method", *stages, "total"]),
        "",
        "Resources per trial kind",
    ]
    lines += [f"  {k:<18} {v}" for k, v in resources(study).items()]
    est = estimate_gpu_hours(study, grid)
    lines += [
        "",
        "Compute estimate (image counts x epochs at "
        f"{study.estimate.train_images_per_gpu_s:g} train / "
        f"{study.estimate.inference_images_per_gpu_s:g} inference images/s per GPU)",
    ]
    lines += [f"  {k:<18} {v:10.1f} GPU-hours" for k, v in est.items()]
    lines.append(f"  {'total':<18} {sum(est.values()):10.1f} GPU-hours")
    lines.append("  linear heads train on cached features on CPU (minutes per trial)")
    return "\n".join(lines)
