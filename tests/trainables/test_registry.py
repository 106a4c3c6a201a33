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


def test_every_registry_name_is_a_catalog_entry_and_back():
    """The catalog (no torch) names what studies and reports may use; each registry builds
    exactly its entries: every architecture and dataset, and every method the upstream makes
    but the dense baseline (pretraining makes that one)."""
    from common.catalog import CATALOG, DENSE
    from trainables.datasets import DATASETS
    from trainables.models import ARCHITECTURES
    from trainables.pruning import METHODS

    assert ARCHITECTURES.names() == [a.key for a in CATALOG.archs]
    assert DATASETS.names() == [d.key for d in CATALOG.datasets]
    assert METHODS.names() == [m.key for m in CATALOG.methods
                               if m.made_here and m.family != DENSE]


def test_the_schemas_prune_keys_are_every_configs():
    import dataclasses

    from search_spaces import schema
    from trainables.pruning.common import PruneConfig

    common = {f.name for f in dataclasses.fields(PruneConfig)} | {"batch_size"}
    assert set(schema.PRUNE_COMMON) <= common
