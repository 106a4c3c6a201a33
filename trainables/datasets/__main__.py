"""``python -m trainables.datasets``: where each dataset must be on disk (``--layouts``),
whether the data under a root is ready (``--check``), and getting it (``--download``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from common.errors import BadInput
from trainables.datasets import DATASETS, SPLITS, build_dataset, dataset_info
from trainables.datasets.files import open_rgb
from trainables.datasets.download import download
from trainables.datasets.upstream_sets import UPSTREAM_SETS

MAX_SHOWN = 20  # unreadable images listed per dataset; the rest are counted


def main(argv: Sequence[str] | None = None, prog: str = "python -m trainables.datasets") -> int:
    """``python -m trainables.datasets --layouts`` prints where each dataset is expected;
    ``--check DATA_ROOT [NAME ...]`` opens both splits of each, reads every image and names
    each one it cannot read (exit 2);
    ``--download NAME[,NAME] --data-root DIR`` fetches what torchvision's download code can
    (checked, in the loaders' layout) and says where to get the others."""
    parser = argparse.ArgumentParser(prog=prog, description=main.__doc__)
    parser.add_argument("--layouts", action="store_true", help="print each dataset's layout")
    parser.add_argument("--check", metavar="DATA_ROOT", help="open every dataset under DATA_ROOT")
    parser.add_argument("--download", metavar="NAME[,NAME]",
                        help="datasets to fetch (or 'all'; 'imagenet' for Table 3's sets)")
    parser.add_argument("--data-root", metavar="DIR", help="where --download puts them")
    parser.add_argument("names", nargs="*", help="datasets to show (default: all registered)")
    args = parser.parse_args(argv)
    if args.download:
        if not args.data_root:
            parser.error("--download needs --data-root DIR")
        wanted = [n.strip() for n in args.download.split(",") if n.strip()]
        if wanted == ["all"]:
            wanted = [n for n in DATASETS.names() if not DATASETS.get(n).meta.get("builtin")]
        try:
            return 1 if download(wanted, args.data_root) else 0
        except KeyError as exc:
            parser.error(str(exc))
    if args.check:
        return check(args.check, args.names or DATASETS.names())
    for name in args.names or DATASETS.names() + ["imagenet"]:
        if name == "imagenet":  # Table 3's sets, read by the checkpoint stage only
            print(f"imagenet: {UPSTREAM_SETS}")
            continue
        info = dataset_info(name)
        print(f"{name}: {info.classes} classes, metric {info.metric}, group {info.group}")
        print(f"    layout: {info.layout}")
    return 0


def check(data_root: str, names: Sequence[str]) -> int:
    """Opens both splits of each dataset and reads every image, as a trial would: prints
    sizes, or each unreadable file by name. Exit 0 when all are readable, 2 otherwise (a
    missing root, a malformed dataset or a bad image: bad input, never a traceback)."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        print(f"error: --check: {root} is not a folder; give the data root that holds the "
              "datasets (python -m trainables.datasets --layouts prints each layout)",
              file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        if name == "imagenet":
            continue
        try:
            info = dataset_info(name, root)
            splits = [build_dataset(name, root, s, None) for s in SPLITS]
        except (BadInput, KeyError) as exc:
            failed += 1
            print(f"{name}:\n    ERROR: {exc.args[0] if isinstance(exc, KeyError) else exc}")
            continue
        print(f"{name}: {info.classes} classes, metric {info.metric}, group {info.group}")
        bad = [problem for ds in splits for problem in unreadable(ds)]
        failed += bool(bad)
        for problem in bad[:MAX_SHOWN]:
            print(f"    ERROR: {problem}")
        if len(bad) > MAX_SHOWN:
            print(f"    ... and {len(bad) - MAX_SHOWN} more unreadable image(s)")
        if not bad:
            print(f"    ok: {len(splits[0])} train / {len(splits[1])} test images, all read")
    return 2 if failed else 0


def unreadable(ds: Any) -> list[str]:
    """Why each image of ``ds`` cannot be read (empty when all can): every file is opened
    and decoded, so a 0-byte, truncated or oversized image is found before a trial."""
    files = getattr(ds, "files", None)
    problems = []
    for index in range(len(ds)):
        try:
            open_rgb(files[index]) if files is not None else ds[index]
        except BadInput as exc:
            problems.append(str(exc))
    return problems

if __name__ == "__main__":
    raise SystemExit(main())
