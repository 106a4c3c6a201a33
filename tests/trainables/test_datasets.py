"""Datasets: the contract of every ``DATASETS`` entry, the study table, image folders and the
readable errors of missing or malformed data."""

import json
import pytest
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset

from tests.trainables import dataset_samples
from trainables.datasets import (
    DATASETS,
    SPLITS,
    DatasetError,
    build_dataset,
    dataset_info,
)
from trainables.transforms import eval_transform

# Paper Table 2, as in docs/protocol.md: name -> (classes, metric, group)
STUDY_TABLE = {
    "sun397": (397, "top1", "general"),
    "aircraft": (100, "mean_per_class", "specialized"),
    "birdsnap": (500, "top1", "specialized"),
    "caltech101": (101, "mean_per_class", "general"),
    "caltech256": (257, "mean_per_class", "general"),
    "cars": (196, "top1", "specialized"),
    "cifar10": (10, "top1", "general"),
    "cifar100": (100, "top1", "general"),
    "dtd": (47, "top1", "general"),
    "flowers": (102, "mean_per_class", "specialized"),
    "food101": (101, "top1", "specialized"),
    "pets": (37, "mean_per_class", "specialized"),
}


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
                        "tests/trainables/dataset_samples.py WRITERS")
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


@pytest.mark.parametrize("name", sorted(STUDY_TABLE))
def test_missing_dataset_is_a_clear_error(name, tmp_path):
    with pytest.raises(DatasetError) as err:
        build_dataset(name, tmp_path, "train", None)
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert str(tmp_path) in message
    assert dataset_info(name).layout in message
    assert "download=True" not in message
    assert list(tmp_path.iterdir()) == []  # nothing created under the data root


def test_torchvision_message_is_rewritten(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()  # present but empty: torchvision says "corrupted"
    with pytest.raises(DatasetError) as err:
        build_dataset("cifar10", tmp_path, "test", None)
    assert "download=True" not in str(err.value)
    assert dataset_info("cifar10").layout in str(err.value)


def test_no_data_root_for_file_dataset():
    with pytest.raises(DatasetError, match="no data root"):
        build_dataset("cifar10", None, "train", None)


def test_bad_split_and_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="split"):
        build_dataset("cifar10", tmp_path, "val", None)
    with pytest.raises(KeyError, match="cifar10"):
        build_dataset("imagenet", tmp_path, "train", None)


def _png(path, mode="RGB", colour=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (6, 5), colour).save(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "toy"
    for split, count in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog", "emu"):
            for i in range(count):
                _png(root / split / cls / f"{i}.png", mode="L" if cls == "emu" else "RGB")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    return root


def test_imagefolder_classes_labels_and_splits(folder):
    name = f"imagefolder:{folder}"
    train = build_dataset(name, None, "train", None)
    test = build_dataset(name, None, "test", None)
    assert (len(train), len(test)) == (9, 6)
    assert train.labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    image, label = train[8]
    assert isinstance(label, int) and label == 2
    assert isinstance(image, Image.Image) and image.mode == "RGB"  # grayscale converted
    x, _ = test[0]
    assert build_dataset(name, None, "test", eval_transform(8))[0][0].shape == (3, 8, 8)
    info = dataset_info(name)
    assert (info.classes, info.metric, info.group) == (3, "top1", "general")


def test_imagefolder_val_folder_and_relative_path(folder, tmp_path):
    (folder / "test").rename(folder / "val")
    assert len(build_dataset("imagefolder:toy", tmp_path, "test", None)) == 6


def test_imagefolder_missing_folder_names_path_and_layout(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as err:
        build_dataset(f"imagefolder:{missing}", None, "train", None)
    assert str(missing) in str(err.value) and "train/" in str(err.value)
    assert isinstance(err.value, FileNotFoundError)


def test_imagefolder_without_train_is_an_error(tmp_path):
    _png(tmp_path / "data" / "cat" / "0.png")
    with pytest.raises(DatasetError, match="train/"):
        build_dataset(f"imagefolder:{tmp_path / 'data'}", None, "train", None)
    with pytest.raises(DatasetError, match="train/"):
        dataset_info(f"imagefolder:{tmp_path / 'data'}")


def test_imagefolder_test_class_unknown_to_train(folder):
    _png(folder / "test" / "yak" / "0.png")
    with pytest.raises(DatasetError, match="yak"):
        build_dataset(f"imagefolder:{folder}", None, "test", None)


def test_corrupt_image_error_names_the_file(folder):
    bad = folder / "train" / "dog" / "9.png"
    bad.write_bytes(b"\x89PNG but not really")
    train = build_dataset(f"imagefolder:{folder}", None, "train", None)
    with pytest.raises(DatasetError, match="9.png") as err:
        for i in range(len(train)):
            train[i]
    assert str(bad) in str(err.value)


def test_caltech101_reference_split(tmp_path):
    # 101 class folders + BACKGROUND_Google, 32 images in the first: first 30 (sorted) train,
    # last 2 test; the background is no class unless caltech101_background keeps it
    base = tmp_path / "caltech101" / "101_ObjectCategories"
    for c in range(101):
        for i in range(32 if c == 0 else 1):
            _png(base / f"class{c:03d}" / f"image_{i + 1:04d}.jpg")
    for i in range(3):
        _png(base / "BACKGROUND_Google" / f"image_{i + 1:04d}.jpg")
    train = build_dataset("caltech101", tmp_path, "train", None)
    test = build_dataset("caltech101", tmp_path, "test", None)
    assert len(train) == 30 + 100 and len(test) == 2
    assert "BACKGROUND_Google" not in train.classes and len(train.classes) == 101
    assert [f.name for f in test.files] == ["image_0031.jpg", "image_0032.jpg"]
    assert test.labels == [0, 0]
    kept = build_dataset("caltech101_background", tmp_path, "train", None)
    assert len(kept.classes) == 102 and kept.classes[0] == "BACKGROUND_Google"
    assert len(kept) == 30 + 100 + 3


def test_cli_prints_layouts_and_checks(tmp_path, capsys):
    from trainables.datasets import main

    assert main(["--layouts"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}:" in out for name in STUDY_TABLE) and "digits:" in out
    # Table 3's upstream sets too: ImageNet val, ReaL and each of ImageNetV2's three variants
    assert "imagenet/val/<wnid>/" in out and "imagenet/real.json" in out
    assert all(f"imagenetv2/imagenetv2-{v}-format-val/<class index 0..999>/" in out
               for v in ("matched-frequency", "threshold0.7", "top-images"))
    assert main(["--check", str(tmp_path), "pets", "lfw_faces"]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "140 train / 60 test" in out


def test_normalization_stats_come_from_the_train_split_once_and_are_cached(tmp_path,
                                                                          monkeypatch):
    import trainables.transforms as tf
    from trainables.datasets import normalization_stats

    mean, std = normalization_stats("digits", None, 16, "bilinear", tmp_path)
    assert all(0 <= m <= 1 for m in mean) and all(0 < s < 1 for s in std)
    saved = json.loads((tmp_path / "digits-16-bilinear.json").read_text())
    assert saved["images"] == len(build_dataset("digits", None, "train", None))

    def no_recompute(*a, **k):
        raise AssertionError("the cached statistics were recomputed")

    monkeypatch.setattr(tf, "channel_stats", no_recompute)
    assert normalization_stats("digits", None, 16, "bilinear", tmp_path) == (mean, std)
