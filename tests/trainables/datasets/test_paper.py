"""The paper's datasets: missing or malformed data is a clear error naming the layout, and
Caltech's reference split."""

from __future__ import annotations

import pytest

from tests.trainables.datasets.samples import STUDY_TABLE, png
from trainables.datasets import DatasetError, build_dataset, dataset_info


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


def test_caltech101_reference_split(tmp_path):
    # 101 class folders + BACKGROUND_Google, 32 images in the first: first 30 (sorted) train,
    # last 2 test; the background is no class unless caltech101_background keeps it
    base = tmp_path / "caltech101" / "101_ObjectCategories"
    for c in range(101):
        for i in range(32 if c == 0 else 1):
            png(base / f"class{c:03d}" / f"image_{i + 1:04d}.jpg")
    for i in range(3):
        png(base / "BACKGROUND_Google" / f"image_{i + 1:04d}.jpg")
    train = build_dataset("caltech101", tmp_path, "train", None)
    test = build_dataset("caltech101", tmp_path, "test", None)
    assert len(train) == 30 + 100 and len(test) == 2
    assert "BACKGROUND_Google" not in train.classes and len(train.classes) == 101
    assert [f.name for f in test.files] == ["image_0031.jpg", "image_0032.jpg"]
    assert test.labels == [0, 0]
    kept = build_dataset("caltech101_background", tmp_path, "train", None)
    assert len(kept.classes) == 102 and kept.classes[0] == "BACKGROUND_Google"
    assert len(kept) == 30 + 100 + 3
