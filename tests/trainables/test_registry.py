"""The shared Registry: entries declared elsewhere are collected in order, names are unique."""

from __future__ import annotations

import pytest

from trainables.registry import Entry, Registry


def test_from_entries_keeps_the_declared_order_and_meta():
    reg = Registry.from_entries("thing", [Entry("b", len, {"x": 1}), Entry("a", abs)])
    assert reg.names() == ["b", "a"]
    assert reg.get("b").fn is len and reg.get("b").meta == {"x": 1}
    assert "a" in reg and "c" not in reg


def test_a_name_registers_once_whichever_way():
    reg = Registry.from_entries("thing", [Entry("a", abs)])
    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        reg.add(Entry("a", len))
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(len)


def test_unknown_name_lists_the_known_ones():
    reg = Registry.from_entries("thing", [Entry("b", len), Entry("a", abs)])
    with pytest.raises(KeyError, match="unknown thing 'z'; known: a, b"):
        reg.get("z")


def test_study_schema_knows_the_registered_names():
    """search_spaces must not import torch, so it lists the names a study may use; they must
    be the registries' (an unknown arch or dataset is refused while loading)."""
    import dataclasses

    from search_spaces import schema
    from trainables.datasets import DATASETS, IMAGEFOLDER_PREFIX
    from trainables.models import ARCHITECTURES
    from trainables.pruning.common import PruneConfig

    assert set(schema.KNOWN_ARCHS) == set(ARCHITECTURES.names())
    assert set(schema.KNOWN_DATASETS) == set(DATASETS.names())
    assert schema.IMAGEFOLDER_PREFIX == IMAGEFOLDER_PREFIX
    common = {f.name for f in dataclasses.fields(PruneConfig)} | {"batch_size"}
    assert set(schema.PRUNE_COMMON) <= common
