"""Getting the data before a study: torchvision's own download code where it has one (it
checks the archive's MD5 and extracts it where the loaders read it), directions elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from trainables.datasets import DATASETS, SPLITS, DatasetError, build_dataset
from trainables.datasets.upstream_sets import UPSTREAM_SETS


def _tv_download(cls_name: str, *calls: dict[str, Any]) -> Callable[[Path], None]:
    """Runs torchvision's ``cls_name(root, download=True, **kwargs)`` once per ``calls``: its
    download checks the archive's MD5 and extracts it where that class (and our loader)
    reads it."""

    def fetch(root: Path) -> None:
        import torchvision.datasets as tv

        cls = getattr(tv, cls_name)
        for kwargs in calls or ({},):
            cls(str(root), download=True, **kwargs)

    fetch.__doc__ = f"torchvision.datasets.{cls_name}(..., download=True)"
    return fetch


#: Datasets torchvision's download code fetches into the layout the loaders read.
DOWNLOADS: dict[str, Callable[[Path], None]] = {
    "aircraft": _tv_download("FGVCAircraft", {"split": "trainval"}),
    "caltech101": _tv_download("Caltech101"),
    "caltech101_background": _tv_download("Caltech101"),
    "caltech256": _tv_download("Caltech256"),
    "cifar10": _tv_download("CIFAR10", {"train": True}, {"train": False}),
    "cifar100": _tv_download("CIFAR100", {"train": True}, {"train": False}),
    "dtd": _tv_download("DTD", {"split": "train", "partition": 1}),
    "flowers": _tv_download("Flowers102"),
    "food101": _tv_download("Food101"),
    "pets": _tv_download("OxfordIIITPet"),
    "sun397": _tv_download("SUN397"),
}

#: Where to get what no download code here can fetch (and, for SUN397, the split files
#: torchvision's archive lacks).
WHERE_TO_GET: dict[str, str] = {
    "birdsnap": "Birdsnap ships a list of image URLs (birdsnap.com, get_birdsnap.py in "
                "birdsnap.tgz); fetch the images, then place them as train/ and test/ class "
                "folders (the test list is test_images.txt of the archive)",
    "cars": "torchvision's download of Stanford Cars no longer works (the original host is "
            "gone); a copy of the original archives (car_devkit.tgz, cars_train.tgz, "
            "cars_test.tgz, cars_test_annos_withlabels.mat) is kept on Kaggle and academic "
            "mirrors",
    "sun397": "the split files are not in torchvision's archive: Partitions.zip from the SUN "
              "database's page (vision.princeton.edu/projects/2010/SUN), extracted into "
              "SUN397/Partitions/",
}


def download(names: Sequence[str], data_root: str | Path,
             say: Callable[[str], None] = print) -> int:
    """Fetch, check and lay out each dataset of ``names`` under ``data_root``.

    A dataset with a torchvision download is fetched by it (MD5 checked), then opened as a
    trial would open it (both splits) to check the layout; every other one gets where to get it
    and the layout to put it in. Returns how many could not be made ready (0: all are).
    """
    root = Path(data_root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    not_ready = 0
    for name in names:
        if name == "imagenet":  # Table 3's sets
            say(f"imagenet: not downloadable here. {UPSTREAM_SETS}")
            not_ready += 1
            continue
        meta = DATASETS.get(name).meta  # an unknown name: KeyError listing the known ones
        if meta.get("builtin"):
            say(f"{name}: built in, nothing to download")
            continue
        fetch = DOWNLOADS.get(name)
        if fetch is None:
            say(f"{name}: no download code can fetch it. Get it: {WHERE_TO_GET[name]}.\n"
                f"    then lay it out as: {meta['layout']}")
            not_ready += 1
            continue
        say(f"{name}: downloading under {root} ({fetch.__doc__})")
        try:
            fetch(root)
        except (RuntimeError, OSError, ValueError) as exc:  # HTTP errors, MD5 mismatch
            say(f"{name}: download failed: {exc}")
            not_ready += 1
            continue
        try:
            sizes = [len(build_dataset(name, root, split, None)) for split in SPLITS]
        except DatasetError as exc:
            extra = f" {WHERE_TO_GET[name]}." if name in WHERE_TO_GET else ""
            say(f"{name}: downloaded, but not ready: {exc}.{extra}")
            not_ready += 1
            continue
        say(f"{name}: ready, {sizes[0]} train / {sizes[1]} test images")
    return not_ready
