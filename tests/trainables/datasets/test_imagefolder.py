"""``imagefolder:<path>``: classes, labels and splits from class folders, and the errors that
name the path."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.trainables.datasets.samples import png
from trainables.datasets import DatasetError, build_dataset, dataset_info
from trainables.datasets.transforms import eval_transform


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "toy"
    for split, count in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog", "emu"):
            for i in range(count):
                png(root / split / cls / f"{i}.png", mode="L" if cls == "emu" else "RGB")
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
    png(tmp_path / "data" / "cat" / "0.png")
    with pytest.raises(DatasetError, match="train/"):
        build_dataset(f"imagefolder:{tmp_path / 'data'}", None, "train", None)
    with pytest.raises(DatasetError, match="train/"):
        dataset_info(f"imagefolder:{tmp_path / 'data'}")


def test_imagefolder_test_class_unknown_to_train(folder):
    png(folder / "test" / "yak" / "0.png")
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
