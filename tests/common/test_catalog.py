"""The catalog: one entry per name, its tables checked when built, lookups that name the
known keys, and no torch or pandas imported to read it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from common import catalog
from common.catalog import CATALOG, DatasetFacts, MethodFacts
from common.errors import UnknownName


def test_the_papers_methods_families_and_datasets():
    assert catalog.FAMILIES == ("dense", "progressive", "regularization", "lottery",
                                "structured")
    assert CATALOG.upstream_methods() == ("dense", "gmp", "woodfisher", "acdc", "str",
                                          "rigl_erk1x", "rigl_erk5x", "lth_t", "mfac")
    assert [(m.key, m.label) for m in CATALOG.methods if not m.made_here] == [("amc", "AMC")]
    paper = [d for d in CATALOG.datasets if d.paper]
    assert len(paper) == 13  # Table 2's 12, and Caltech-101 with its background class
    assert sum(d.group == "specialized" for d in paper) == 6  # Aircraft, Birds, Cars,
    # Flowers, Food-101, Pets (Section 4.1)
    assert CATALOG.dataset("caltech101").classes == 101  # as the reference code
    assert CATALOG.arch("resnet_tiny").input_size == 32
    assert CATALOG.arch("mobilenet_tiny").input_size == 32


def test_an_unknown_key_names_the_known_ones():
    with pytest.raises(UnknownName, match="unknown method 'gmpp'.*known: dense, gmp"):
        CATALOG.method("gmpp")
    with pytest.raises(KeyError, match="unknown architecture 'vgg16'"):
        CATALOG.arch("vgg16")


@pytest.mark.parametrize("change, words", [
    (lambda c: dataclasses.replace(c, methods=(*c.methods, MethodFacts("gmp", "G", "dense"))),
     "method 'gmp' is listed twice"),
    (lambda c: dataclasses.replace(c, methods=(MethodFacts("x", "X", "Progressive!"),)),
     "family 'Progressive!'"),
    (lambda c: dataclasses.replace(c, datasets=(DatasetFacts("x", "X", 2, "top5", "general"),)),
     "dataset 'x': metric must be one of"),
])
def test_a_bad_table_is_refused_when_built(change, words):
    with pytest.raises(ValueError, match=words):
        change(CATALOG)


def test_reading_it_imports_neither_torch_nor_pandas():
    code = ("import sys, common.catalog; "
            "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
