"""Procedural images: deterministic, many distinct classes, fine-grained variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.datasets.procedural import (
    FINE_GRAINED,
    SHAPES,
    TEXTURES,
    ProceduralImages,
    ProceduralSpec,
    fine_grained_spec,
    generate,
    render_image,
)


def test_same_seed_gives_identical_bytes_and_any_image_can_be_regenerated():
    spec = ProceduralSpec(num_classes=16)
    a, la = generate(spec, 3, seed=7)
    b, lb = generate(spec, 3, seed=7)
    assert a.dtype == np.uint8 and a.shape == (48, 32, 32, 3)
    assert a.tobytes() == b.tobytes() and np.array_equal(la, lb)
    i = 37  # label 37 % 16 = 5, image 37 // 16 = 2 of its class
    assert np.array_equal(a[i], render_image(spec, 5, 2, seed=7))
    assert la[i] == 5


def test_seeds_and_splits_are_different_streams():
    spec = ProceduralSpec(num_classes=8)
    train, _ = generate(spec, 2, seed=0, split="train")
    val, _ = generate(spec, 2, seed=0, split="val")
    other, _ = generate(spec, 2, seed=1, split="train")
    assert not np.array_equal(train, val)
    assert not np.array_equal(train, other)
    assert all(not np.array_equal(t, v) for t, v in zip(train, val))


def test_default_spec_has_64_distinct_shape_texture_classes_balanced():
    spec = ProceduralSpec()
    assert spec.num_classes == 64 == len(SHAPES) * len(TEXTURES)
    names = [spec.class_name(c) for c in range(64)]
    assert len(set(names)) == 64
    _, labels = generate(spec, 2, seed=0)
    assert np.array_equal(np.bincount(labels), np.full(64, 2))
    # The first 8 classes already use 8 different shapes and 8 different textures.
    first = [n.split("/") for n in names[:8]]
    assert len({s for s, _ in first}) == 8 and len({t for _, t in first}) == 8


def test_images_differ_across_classes_beyond_noise():
    spec = ProceduralSpec(num_classes=8, noise=0.0)
    imgs, labels = generate(spec, 6, seed=3)
    flat = imgs.reshape(len(imgs), -1)
    assert len({row.tobytes() for row in flat}) == len(imgs)  # no duplicates anywhere
    # Texture carries the class: horizontal stripes vary along y, vertical ones along x.
    stripes = ProceduralSpec(
        num_classes=2, shapes=("square",), textures=("hstripes", "vstripes"), noise=0.0
    )
    imgs, labels = generate(stripes, 20, seed=0)
    gray = imgs.astype(np.float32).mean(axis=3)
    gx = np.abs(np.diff(gray, axis=2)).mean(axis=(1, 2))
    gy = np.abs(np.diff(gray, axis=1)).mean(axis=(1, 2))
    ratio = gy / gx
    assert ratio[labels == 0].mean() > 1.5 and ratio[labels == 1].mean() < 1 / 1.5
    assert np.mean((ratio > 1) == (labels == 0)) >= 0.95


@pytest.mark.parametrize("variant", sorted(FINE_GRAINED))
def test_fine_grained_variants_generate_their_class_count(variant):
    spec = fine_grained_spec(variant)
    assert spec.fine_grained == variant and spec.num_classes == FINE_GRAINED[variant][0]
    names = [spec.class_name(c) for c in range(spec.num_classes)]
    assert len(set(names)) == spec.num_classes and all(n.startswith(variant) for n in names)
    imgs, labels = generate(spec, 2, seed=0)
    assert imgs.shape == (2 * spec.num_classes, 32, 32, 3)
    assert set(labels.tolist()) == set(range(spec.num_classes))
    other, _ = generate(ProceduralSpec(num_classes=spec.num_classes), 2, seed=0)
    assert not np.array_equal(imgs, other)  # each variant has its own random stream


def test_bad_specs_name_the_field():
    with pytest.raises(ValueError, match="num_classes"):
        ProceduralSpec(num_classes=65)
    with pytest.raises(ValueError, match="shapes"):
        ProceduralSpec(shapes=("blob",))
    with pytest.raises(ValueError, match="variant"):
        fine_grained_spec("nope")
    with pytest.raises(ValueError, match="split"):
        generate(ProceduralSpec(num_classes=4), 1, seed=0, split="dev")


def test_dataset_yields_transformed_images_and_labels(tmp_path):
    spec = ProceduralSpec(num_classes=4)
    to_tensor = lambda im: torch.from_numpy(np.array(im))  # noqa: E731
    ds = ProceduralImages(spec, "val", 3, seed=2, transform=to_tensor)
    assert len(ds) == 12 and ds.num_classes == 4 and len(ds.classes) == 4
    x, y = ds[5]
    assert y == 1 and x.shape == (32, 32, 3)
    raw = ProceduralImages(spec, "val", 3, seed=2)
    assert raw[5][0].mode == "RGB"
    cached = ProceduralImages(spec, "val", 3, seed=2, cache_dir=tmp_path)
    assert np.array_equal(cached.images, raw.images)
    assert len(list(tmp_path.glob("procedural-*.npz"))) == 1
