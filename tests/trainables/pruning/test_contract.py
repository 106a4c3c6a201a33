"""The contract every registered pruning method keeps, checked once per ``METHODS`` entry.

Why parametrized over the registry itself: a new method is checked the moment it registers,
and one whose ``needs`` this file cannot provide fails with a message saying so instead of
being skipped. Each method's own mechanics (schedules, phases, thresholds, ERK) stay in its
own test file. A random-weight resnet_tiny on 16 random images keeps the file to seconds.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from common.catalog import CATALOG
from trainables.models import build_model
from trainables.models.masks import global_sparsity, prunable_names
from trainables.pruning import METHODS, PruneConfig, PruneResult
from trainables.pruning.common import NEEDS, mask_sparsity

NUM_CLASSES = 4
TARGET = 0.8
INFO_KEYS = {"method", "target", "sparsity", "val_accuracy", "seconds", "steps"}
# Speed-only knobs of a method's own config (the shared budget fields are set for all).
FAST = {"woodfisher": {"fisher_samples": 4, "pruning_steps": 2}}


def small_config(name: str) -> PruneConfig:
    """The method's config with a budget of a few steps."""
    cls = METHODS.get(name).meta["config"]
    return cls(steps=6, frequency=2, report_every=2, **FAST.get(name, {}))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: two contend on a shared 2-core machine and run ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data() -> tuple[DataLoader, DataLoader]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 32, 32, generator=gen)
    y = torch.arange(16) % NUM_CLASSES
    train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=gen)
    return train, DataLoader(TensorDataset(x[:8], y[:8]), batch_size=8)


@pytest.fixture(scope="module")
def dense() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("resnet_tiny", NUM_CLASSES)


def extra_inputs(name: str, dense: torch.nn.Module, train: DataLoader) -> dict:
    """What a method's ``needs`` asks for beyond the dense model (as the sweep provides it)."""
    meta = METHODS.get(name).meta
    if meta["needs"] == "dense":
        return {}
    if meta["needs"] == "mask":  # a model pruned by its declared mask source, like the zoo's
        source = meta["mask_from"]
        pruned = METHODS.get(source).fn(
            copy.deepcopy(dense), train, None, TARGET, small_config(source), 0
        )
        return {"mask_source": pruned.model}
    pytest.fail(
        f"pruning method {name!r} needs {meta['needs']!r}, which test_contract.py cannot "
        "provide yet: add it to extra_inputs()"
    )


@pytest.mark.parametrize("name", METHODS.names())
def test_meta_declares_what_callers_read(name):
    meta = METHODS.get(name).meta
    assert CATALOG.method(name).made_here and meta["needs"] in NEEDS
    assert issubclass(meta["config"], PruneConfig)
    if meta["needs"] == "mask":
        assert meta["mask_from"] in meta["mask_sources"]
        assert all(METHODS.get(s).meta["needs"] == "dense" for s in meta["mask_sources"])


@pytest.mark.parametrize("name", METHODS.names())
def test_config_is_frozen_and_tunable_by_shared_field_names(name):
    cfg = METHODS.get(name).meta["config"](steps=7, lr=0.02)
    assert (cfg.steps, cfg.lr) == (7, 0.02)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 8  # type: ignore[misc]


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("name", METHODS.names())
def test_prune_reaches_its_target_with_masks_that_match_the_zeros(name, channels_last, dense,
                                                                   data):
    """Also with NHWC weights (``training.channels_last``): a method that flattened a weight
    by its memory order would put the zeros elsewhere than its mask says."""
    train, val = data
    model = copy.deepcopy(dense)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    extra = extra_inputs(name, dense, train)
    reports: list[dict] = []

    res = METHODS.get(name).fn(
        model, train, val, TARGET, small_config(name), 0, report=reports.append, **extra
    )

    assert isinstance(res, PruneResult)
    info = res.info
    assert INFO_KEYS <= set(info), f"missing info keys {INFO_KEYS - set(info)}"
    assert info["method"] == name and info["target"] == TARGET
    assert abs(info["sparsity"] - TARGET) <= 0.005
    assert global_sparsity(res.model) == pytest.approx(info["sparsity"])
    assert 0.0 <= info["val_accuracy"] <= 100.0
    assert info["seconds"] >= 0 and isinstance(info["steps"], int) and info["steps"] >= 0
    # masks: one bool tensor per prunable weight, True = kept, zeros exactly where False
    assert set(res.masks) == set(prunable_names(res.model))
    params = dict(res.model.named_parameters())
    for pname, mask in res.masks.items():
        assert mask.dtype == torch.bool and mask.shape == params[pname].shape
        assert torch.all(params[pname][~mask] == 0), pname
    assert mask_sparsity(res.masks) == pytest.approx(info["sparsity"], abs=0.005)
    # the model stays usable
    assert all(torch.isfinite(t).all() for t in res.model.state_dict().values())
    res.model.eval()
    with torch.no_grad():
        assert torch.isfinite(res.model(next(iter(val))[0])).all()
    assert reports and reports[-1].get("done") is True
    assert reports[-1]["sparsity"] == info["sparsity"]


@pytest.mark.parametrize("name", METHODS.names())
def test_target_outside_zero_one_is_refused(name, dense, data):
    with pytest.raises(ValueError, match="target"):
        METHODS.get(name).fn(copy.deepcopy(dense), data[0], None, 80, small_config(name), 0)
