"""The reports' names come from the catalog: every spelling finds one key, labels and
families as the paper writes them, and the random-weight speed rows apart."""

from __future__ import annotations

import pytest

from common.catalog import CATALOG
from reports import naming
from reports.findings.families import method_family
from reports.published import method_key


@pytest.mark.parametrize("spelling, key", [
    ("birds", "birdsnap"), ("SUN", "sun397"), ("stanfordcars", "cars"),
    ("Oxford Flowers 102", "flowers"), ("Caltech-101", "caltech101"),
    ("caltech101_background", "caltech101_background"), ("Describable Textures", "dtd"),
    ("mnist", None), ("imagenet", None),
])
def test_a_dataset_is_found_by_any_of_its_spellings(spelling, key):
    assert naming.canonical_dataset(spelling) == key


def test_no_spelling_names_two_methods_or_two_paper_datasets():
    for table, keep in ((CATALOG.methods, lambda e: True), (CATALOG.datasets, lambda d: d.paper)):
        owner: dict[str, str] = {}
        for entry in filter(keep, table):
            for spelling in (entry.key, entry.label, *entry.aliases):
                key = naming.name_key(spelling)
                assert owner.setdefault(key, entry.key) == entry.key, (spelling, entry.key)


def test_labels_families_and_keys_of_the_papers_methods():
    labels = naming.method_labels([m.key for m in CATALOG.methods])
    assert labels["rigl_erk5x"] == "RigL ERK 5x" and labels["acdc"] == "AC/DC"
    assert [method_family(m.label) for m in CATALOG.methods] == [m.family for m in CATALOG.methods]
    assert [method_key(m.label) for m in CATALOG.methods] == [m.key for m in CATALOG.methods]
    assert method_family("wf") == "progressive" and method_family("lth_t (GMP mask)") == "lottery"
    assert method_family("RigL ERK 1x (label smoothing)") == "regularization"
    assert method_key("STR (label smoothing)") == "STR (label smoothing)"  # not the catalog's


def test_archs_and_the_random_weight_speed_rows():
    assert naming.arch_label("mobilenet_v1") == "MobileNetV1"
    assert naming.arch_label("vgg16") == "vgg16"
    assert naming.default_method_label("random_uniform") == "Random, uniform per layer"
    assert method_family("random_uniform") == "other"
