"""GMP: the cubic schedule, and a run that follows it (the shared contract: test_contract)."""

from __future__ import annotations

import pytest

from trainables.pruning import METHODS
from trainables.pruning.common import cubic_sparsity
from trainables.pruning.gmp import GMPConfig, pruning_schedule


def test_cubic_schedule_by_hand():
    # s_t = s_f + (s_i - s_f)(1 - t/T)^3 with s_i = 0.5, s_f = 0.9, T = 40
    assert cubic_sparsity(0, 40, 0.9, initial=0.5) == pytest.approx(0.5)
    assert cubic_sparsity(20, 40, 0.9, initial=0.5) == pytest.approx(0.9 - 0.4 * 0.125)
    assert cubic_sparsity(40, 40, 0.9, initial=0.5) == pytest.approx(0.9)


def test_schedule_is_monotone_and_ends_at_target_at_T():
    cfg = GMPConfig(steps=100, frequency=10, finetune_fraction=0.3)
    sched = pruning_schedule(cfg, 0.8)
    assert sched[0] == (0, 0.0)
    assert sched[-1] == (cfg.prune_steps, pytest.approx(0.8))
    levels = [s for _, s in sched]
    assert levels == sorted(levels)
    assert [t for t, _ in sched] == [0, 10, 20, 30, 40, 50, 60, 70]


def test_gmp_run_realises_its_schedule_up_to_90_percent(tiny, dense):
    cfg = GMPConfig(steps=16, frequency=4, finetune_fraction=0.25)
    res = METHODS.get("gmp").fn(dense, tiny.train_loader, tiny.val_loader, 0.9, cfg, seed=0)
    n = sum(m.numel() for m in res.masks.values())
    for (t, planned), (t2, realised) in zip(res.info["schedule"], res.info["realised_schedule"]):
        assert t == t2 and abs(planned - realised) <= 1.0 / n + 1e-9
    assert res.info["realised_schedule"][-1][1] == pytest.approx(0.9, abs=1.0 / n)
