"""``python -m trainables.checkpoints FILE [--arch ARCH] [--expect-sparsity 90] [--json]``:
what a checkpoint file holds, read as a trial would read it.

``python -m trainables.checkpoints --fetch resnet50|mobilenet_v1 --checkpoint-dir DIR``: the
paper's checkpoints from the public share the reference code links, each checked by content
and laid out as the study's ``checkpoint_pattern`` expects (``trainables.checkpoints.fetch``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trainables import models
from trainables.checkpoints.formats import FORMATS
from trainables.checkpoints.loading import SPARSITY_TOLERANCE, LoadedCheckpoint, load_checkpoint
from trainables.checkpoints.mask_sources import MASKS_ONLY, load_mask_source, ticket_holds_weights
from trainables.checkpoints.stats import file_sha256, filters_pruned_share, per_layer_filters_pruned


def describe(ckpt: LoadedCheckpoint) -> dict[str, Any]:
    """A JSON-ready summary of a loaded checkpoint (what the command line prints)."""
    filters = per_layer_filters_pruned(ckpt.state_dict)
    layers = []
    for name in ckpt.masks:
        w = ckpt.state_dict[name]
        row: dict[str, Any] = {
            "name": name,
            "shape": list(w.shape),
            "params": w.numel(),
            "sparsity": round(ckpt.layer_sparsity[name], 4),
        }
        if name in filters:
            row["filters_pruned"], row["filters"] = filters[name]
        layers.append(row)
    return {
        "path": ckpt.path,
        "sha256": file_sha256(ckpt.path),
        "format": ckpt.format,
        "arch": ckpt.arch,
        "upstream_dataset": ckpt.upstream_dataset,
        "num_classes": ckpt.num_classes,
        "global_sparsity": round(ckpt.sparsity, 4),
        "filters_fully_pruned": round(100.0 * filters_pruned_share(ckpt.state_dict), 4),
        "carries_weights": ckpt.format != MASKS_ONLY,
        # what LTH-T takes from the file when a study gives it as a ticket (``tickets:``)
        "as_lth_ticket": "its masks on the study's dense weights (it holds no weights)"
        if ckpt.format == MASKS_ONLY else "the file as it is: its own weights under its own "
        "masks, BatchNorm, biases and every other tensor from it",
        "layers": layers,
    }


def _table(info: Mapping[str, Any]) -> str:
    lines = [
        f"file:                 {info['path']}",
        f"sha256:               {info['sha256']}",
        f"format:               {info['format']}",
        f"architecture:         {info['arch'] or 'unknown (pass --arch)'}",
        f"upstream dataset:     {info['upstream_dataset'] or 'not stated'}",
        f"classes:              {info['num_classes']}",
        f"global sparsity:      {info['global_sparsity']:.2f} % (over the layers below)",
        f"filters fully pruned: {info['filters_fully_pruned']:.2f} %",
        f"carries weights:      {'yes' if info['carries_weights'] else 'no, masks only'}",
        f"as LTH-T's ticket:    {info['as_lth_ticket']}",
        "",
    ]
    rows = [
        (
            r["name"],
            "x".join(map(str, r["shape"])),
            str(r["params"]),
            f"{r['sparsity']:.2f}",
            f"{r['filters_pruned']}/{r['filters']}" if "filters" in r else "-",
        )
        for r in info["layers"]
    ]
    header = ("layer", "shape", "params", "sparsity %", "zero filters")
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    for i, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainables.checkpoints",
        description="Recognise a checkpoint's format (safely: weights-only unpickling),\n"
        "normalise it and report architecture, upstream dataset, global and per-layer\n"
        "sparsity and the share of fully pruned convolution filters.\n"
        f"Formats, tried in order: {', '.join(FORMATS.names())}.",
        epilog="example:\n  python -m trainables.checkpoints runs/paper/zoo/gmp-90.pt "
        "--expect-sparsity 90\n  python -m trainables.checkpoints resnet50.pth --arch resnet50 "
        "--json\n  python -m trainables.checkpoints --fetch resnet50 --checkpoint-dir "
        "checkpoints",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", nargs="?", help="checkpoint file to inspect")
    parser.add_argument(
        "--arch",
        help="architecture, when the file does not name it "
        f"({', '.join(models.ARCHITECTURES.names())})",
    )
    parser.add_argument(
        "--expect-sparsity",
        type=float,
        metavar="PERCENT",
        help=f"fail unless measured global sparsity is within {SPARSITY_TOLERANCE:g} point",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    fetch = parser.add_argument_group("fetch the paper's checkpoints")
    fetch.add_argument("--fetch", metavar="ARCH", help="download the paper's checkpoints of "
                       "ARCH (resnet50 or mobilenet_v1) from the public share the reference "
                       "code's README links, check each by content and lay them out as the "
                       "study's checkpoint_pattern expects; a cut-off download resumes")
    fetch.add_argument("--checkpoint-dir", type=Path, help="where to lay them out (the "
                       "sweep's --checkpoint-dir)")
    fetch.add_argument("--share", help="another Seafile folder share link to read instead")
    fetch.add_argument("--study", default="paper", help="the study whose methods, sparsities "
                       "and checkpoint_pattern decide what is fetched (default: paper)")
    return parser


def _fetch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``--fetch``: see ``trainables.checkpoints.fetch.run``."""
    from trainables.checkpoints.fetch import run

    if args.file or args.checkpoint_dir is None:
        parser.error("--fetch takes --checkpoint-dir DIR and no FILE")
    try:
        return run(args.fetch, args.checkpoint_dir, args.share, args.study)
    except (ValueError, OSError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2


def main(argv: Iterable[str] | None = None) -> int:
    """Print what a checkpoint holds. Returns the exit code (2 on any error, with the message
    on stderr)."""
    parser = _parser()
    args = parser.parse_args(None if argv is None else list(argv))
    if args.fetch:
        return _fetch(args, parser)
    if not args.file:
        parser.error("give a checkpoint FILE to inspect, or --fetch ARCH")
    try:
        # A ticket of masks alone is shown as load_mask_source reads it (its masks as the
        # weights, sparsity over its layers); any other file as load_checkpoint does.
        load = load_checkpoint if ticket_holds_weights(args.file) else load_mask_source
        ckpt = load(args.file, arch=args.arch, expect_sparsity=args.expect_sparsity)
        info = describe(ckpt)
    except (ValueError, OSError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(json.dumps(info) if args.json else _table(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
