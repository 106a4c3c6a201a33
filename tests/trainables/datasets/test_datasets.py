"""The contract of every ``DATASETS`` entry (parametrized over the registry), the paper's
Table 2, and the entry points' errors and cached normalisation statistics."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import ConcatDataset, Dataset

from tests.trainables.datasets import samples as dataset_samples
from tests.trainables.datasets.samples import STUDY_TABLE
from trainables.datasets import DATASETS, SPLITS, DatasetError, build_dataset, dataset_info
from trainables.datasets.transforms import eval_transform


def classes_of(ds: Dataset) -> list:
    """The class list a built dataset carries (torchvision's, inside our wrappers)."""
    while not hasattr(ds, "classes"):
        ds = ds.datasets[0] if isinstance(ds, ConcatDataset) else ds.inner
    return list(ds.classes)


@pytest.mark.parametrize("name", DATASETS.names())  # the registry itself: new entries included
def test_every_dataset_yields_chw_tensors_and_labels_of_its_declared_classes(
    name, tmp_path, monkeypatch
):
    if not DATASETS.get(name).meta.get("builtin", False):
        if name not in dataset_samples.WRITERS:
            pytest.fail(f"dataset {name!r} has no test sample: add a writer of its layout to "
                        "tests/trainables/datasets/samples.py WRITERS")
        dataset_samples.WRITERS[name](tmp_path)
        dataset_samples.skip_archive_checksums(monkeypatch)
    info = dataset_info(name)
    for split in SPLITS:
        ds = build_dataset(name, tmp_path, split, eval_transform(32))
        assert len(ds) > 0, split
        assert len(classes_of(ds)) == info.classes, split
        for index in sorted({0, len(ds) // 2, len(ds) - 1}):
            image, label = ds[index]
            assert isinstance(image, torch.Tensor) and image.dtype == torch.float32
            assert image.shape == (3, 32, 32) and torch.isfinite(image).all()
            assert isinstance(label, int) and 0 <= label < info.classes, (split, index, label)


@pytest.mark.parametrize("name", sorted(STUDY_TABLE))
def test_registry_matches_study_table(name):
    info = dataset_info(name)
    assert (info.classes, info.metric, info.group) == STUDY_TABLE[name]
    assert info.layout and not DATASETS.get(name).meta.get("builtin", False)


def test_no_data_root_for_file_dataset():
    with pytest.raises(DatasetError, match="no data root"):
        build_dataset("cifar10", None, "train", None)


def test_bad_split_and_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="split"):
        build_dataset("cifar10", tmp_path, "val", None)
    with pytest.raises(KeyError, match="cifar10"):
        build_dataset("imagenet", tmp_path, "train", None)


def test_normalization_stats_come_from_the_train_split_once_and_are_cached(tmp_path,
                                                                          monkeypatch):
    import trainables.datasets.transforms as tf
    from trainables.datasets import normalization_stats

    mean, std = normalization_stats("digits", None, 16, "bilinear", tmp_path)
    assert all(0 <= m <= 1 for m in mean) and all(0 < s < 1 for s in std)
    saved = json.loads((tmp_path / "digits-16-bilinear.json").read_text())
    assert saved["images"] == len(build_dataset("digits", None, "train", None))

    def no_recompute(*a, **k):
        raise AssertionError("the cached statistics were recomputed")

    monkeypatch.setattr(tf, "channel_stats", no_recompute)
    assert normalization_stats("digits", None, 16, "bilinear", tmp_path) == (mean, std)


def test_materialized_gives_the_items_tensors_and_leaves_large_splits_alone():
    import torch

    from trainables.datasets import build_dataset, materialized
    from trainables.datasets.transforms import eval_transform

    ds = build_dataset("digits", None, "test", eval_transform(32))
    kept = materialized(ds)
    assert len(kept) == len(ds)
    for i in (0, 7, len(ds) - 1):
        image, label = kept[i]
        want_image, want_label = ds[i]
        assert torch.equal(image, want_image) and int(label) == want_label
    assert materialized(ds, limit_bytes=1000) is ds  # 540 images of 3 x 32 x 32 floats: more
