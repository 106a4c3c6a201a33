"""The registry of pruning methods and the shared config/schedule helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from common.catalog import CATALOG
from trainables import pruning
from trainables.pruning import METHODS, PruneConfig
from trainables.pruning.common import cubic_sparsity, lr_at, mask_sparsity, masks_from_scores

PAPER = {
    "gmp": ("GMP", "progressive"),
    "woodfisher": ("WoodFisher", "progressive"),
    "acdc": ("AC/DC", "regularization"),
    "str": ("STR", "regularization"),
    "rigl_erk1x": ("RigL ERK 1x", "regularization"),
    "rigl_erk5x": ("RigL ERK 5x", "regularization"),
    "lth_t": ("LTH-T", "lottery"),
    "mfac": ("M-FAC", "progressive"),  # the paper's MobileNetV1 checkpoints
}


def test_every_paper_method_is_registered_with_its_meta():
    assert sorted(METHODS.names()) == sorted(PAPER)
    for entry in METHODS:
        assert (CATALOG.method(entry.name).label, CATALOG.method(entry.name).family) == PAPER[
            entry.name]
        assert issubclass(entry.meta["config"], PruneConfig)
        assert entry.meta["needs"] == ("mask" if entry.name == "lth_t" else "dense")
    assert METHODS.get("lth_t").meta["mask_from"] == "gmp"
    assert METHODS.get("rigl_erk5x").meta["budget"] == 5 * METHODS.get("rigl_erk1x").meta["budget"]


def test_no_method_module_imports_the_registry_back():
    # The package builds METHODS from each module's ENTRIES; a module reading METHODS (or the
    # package) while the package is still importing it is the cycle this layout removed.
    offenders = []
    for path in sorted(Path(pruning.__file__).parent.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "trainables.pruning":
                offenders.append(f"{path.name}: from trainables.pruning import ...")
            elif isinstance(node, ast.Name) and node.id == "METHODS":
                offenders.append(f"{path.name}: uses METHODS")
    assert not offenders, offenders


@pytest.mark.parametrize(
    "field, value",
    [
        ("steps", 0),
        ("lr", 0.0),
        ("frequency", 0),
        ("finetune_fraction", 1.0),
        ("lr_schedule", "step"),
    ],
)
def test_prune_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        PruneConfig(**{field: value})


def test_cubic_schedule_and_cosine_lr():
    assert cubic_sparsity(0, 100, 0.9) == 0.0
    assert cubic_sparsity(50, 100, 0.9) == pytest.approx(0.9 - 0.9 / 8)
    assert cubic_sparsity(100, 100, 0.9) == pytest.approx(0.9)
    assert cubic_sparsity(150, 100, 0.9) == pytest.approx(0.9)
    cfg = PruneConfig(steps=10, lr=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(5, cfg) == pytest.approx(0.05)
    assert lr_at(10, cfg) == pytest.approx(0.0)


def test_masks_from_scores_prunes_an_exact_global_count_across_layers():
    scores = {"a": torch.tensor([0.1, 0.9, 0.5]), "b": torch.tensor([[0.2, 0.3], [0.8, 0.05]])}
    masks = masks_from_scores(scores, 0.4)  # round(0.4 * 7) = 3 lowest: 0.05, 0.1, 0.2
    assert masks["a"].tolist() == [False, True, True]
    assert masks["b"].tolist() == [[False, True], [True, False]]
    assert mask_sparsity(masks) == pytest.approx(3 / 7)
    with pytest.raises(ValueError, match="target"):
        masks_from_scores(scores, 1.5)
