"""``python -m trainables.datasets``: where each dataset must be on disk (``--layouts``),
whether the data under a root is ready (``--check``), and getting it (``--download``)."""

from __future__ import annotations

import argparse
from typing import Sequence

from trainables.datasets import DATASETS, SPLITS, DatasetError, build_dataset, dataset_info
from trainables.datasets.download import download
from trainables.datasets.upstream_sets import UPSTREAM_SETS


def main(argv: Sequence[str] | None = None, prog: str = "python -m trainables.datasets") -> int:
    """``python -m trainables.datasets --layouts`` prints where each dataset is expected;
    ``--check DATA_ROOT [NAME ...]`` opens both splits of each and reports sizes or errors;
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
    names = args.names or DATASETS.names() + ([] if args.check else ["imagenet"])
    failed = 0
    for name in names:
        if name == "imagenet":  # Table 3's sets, read by the checkpoint stage only
            print(f"imagenet: {UPSTREAM_SETS}")
            continue
        info = dataset_info(name, args.check)
        print(f"{name}: {info.classes} classes, metric {info.metric}, group {info.group}")
        if args.layouts or not args.check:
            print(f"    layout: {info.layout}")
        if args.check:
            try:
                sizes = [len(build_dataset(name, args.check, s, None)) for s in SPLITS]
                print(f"    ok: {sizes[0]} train / {sizes[1]} test images")
            except (DatasetError, KeyError) as exc:
                failed += 1
                print(f"    ERROR: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
