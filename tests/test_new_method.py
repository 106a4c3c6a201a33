"""A new pruning method is its module plus its catalog entry, and nothing else.

The test writes a one-shot magnitude method as a module of ``trainables.pruning`` would be
(its work, ``ENTRIES`` of ``method_entry``), on a folder added to the package's path, and
puts a catalog with its entry in ``common.catalog.CATALOG``'s place (both undone after the
test). Then a study may name it, the pruning registry builds and runs it, the sweep's grid
gives it prune trials, and the reports label it and put it in its family.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import DataLoader, TensorDataset

from common import catalog

MODULE = '''
"""One-shot global magnitude pruning: the smallest weights go at once, nothing is trained."""

from trainables.pruning.common import (
    PruneConfig, global_magnitude_masks, method_entry, registered,
)


def one_shot(model, train_loader, target, cfg, report):
    return model, global_magnitude_masks(model, target, cfg.exclude), {"steps": 0}


ENTRIES = (method_entry("one_shot", registered("one_shot", one_shot), config=PruneConfig),)
'''
ONE_SHOT = catalog.MethodFacts("one_shot", "One-shot", catalog.PROGRESSIVE)
TINY = Path(__file__).resolve().parents[1] / "search_spaces" / "tiny.yaml"


@pytest.fixture
def one_shot(tmp_path, monkeypatch):
    """The method's module on the package's path and its entry in the catalog."""
    from trainables import pruning

    (tmp_path / "one_shot.py").write_text(MODULE)
    monkeypatch.setattr(pruning, "__path__", [*pruning.__path__, str(tmp_path)])
    monkeypatch.setattr(catalog, "CATALOG", dataclasses.replace(
        catalog.CATALOG, methods=(*catalog.CATALOG.methods, ONE_SHOT)))
    yield pruning
    sys.modules.pop("trainables.pruning.one_shot", None)


def test_a_study_names_it_and_the_grid_prunes_with_it(one_shot, tmp_path):
    from orchestrator.grid import expand
    from search_spaces.schema import study_from_dict

    raw = yaml.safe_load(TINY.read_text())
    raw["methods"]["one_shot"] = {"sparsities": [80, 90]}
    study = study_from_dict(raw)
    method = study.method("one_shot")
    assert (method.label, method.family) == ("One-shot", "progressive")
    grid = expand(study, tmp_path / "out", hash_files=False)
    # a method the study names without per-arch levels prunes every architecture of the study
    assert sorted((t.arch, t.sparsity) for t in grid.stages["prune"]
                  if t.method == "one_shot") == [("mobilenet_tiny", 80), ("mobilenet_tiny", 90),
                                                 ("resnet_tiny", 80), ("resnet_tiny", 90)]


def test_the_registry_builds_it_in_the_catalogs_order_and_it_prunes(one_shot):
    from trainables.models import build_model
    from trainables.pruning.common import PruneConfig

    methods = one_shot.collect_methods()
    assert methods.names() == [*one_shot.METHODS.names(), "one_shot"]
    torch.manual_seed(0)
    model = build_model("resnet_tiny", 4)
    loader = DataLoader(TensorDataset(torch.randn(8, 3, 32, 32), torch.arange(8) % 4),
                        batch_size=4)
    result = methods.get("one_shot").fn(model, loader, None, 0.9, PruneConfig(), seed=0)
    assert result.info["method"] == "one_shot" and result.info["steps"] == 0
    assert result.info["sparsity"] == pytest.approx(0.9, abs=1e-3)


def test_the_reports_label_it_and_put_it_in_its_family(one_shot):
    import pandas as pd

    from reports.findings.families import method_families
    from reports.naming import method_labels
    from reports.published import method_key

    assert method_labels(["one_shot", "gmp"]) == {"gmp": "GMP", "one_shot": "One-shot"}
    rows = pd.DataFrame({"method": ["one_shot", "acdc", "dense"]})  # no family column
    assert method_families(rows) == {"one_shot": "progressive", "acdc": "regularization",
                                     "dense": "dense"}
    assert method_key("One-shot") == "one_shot"


def test_without_the_catalog_entry_the_method_is_refused():
    from trainables.pruning.common import PruneConfig, method_entry

    with pytest.raises(KeyError, match="unknown method 'one_shot'.*common.catalog"):
        method_entry("one_shot", lambda *a: None, config=PruneConfig)
