"""AC/DC: the phase plan alternates and the model really is sparse/dense by phase.

The shared contract (target reached, masks, result) is checked in test_contract.
"""

from __future__ import annotations

from trainables.pruning import METHODS
from trainables.pruning.acdc import COMPRESSED, DECOMPRESSED, WARMUP, ACDCConfig, phase_plan


def test_phase_plan_alternates_and_covers_the_budget():
    cfg = ACDCConfig(steps=100, warmup_fraction=0.1, cycles=2, finetune_fraction=0.3)
    plan = phase_plan(cfg)
    names = [p for p, _, _ in plan]
    assert names == [WARMUP, COMPRESSED, DECOMPRESSED, COMPRESSED, DECOMPRESSED, COMPRESSED]
    assert plan[0][1] == 0 and plan[-1][2] == 100
    assert all(a[2] == b[1] for a, b in zip(plan, plan[1:]))
    assert plan[-1][2] - plan[-1][1] == 30  # final compressed phase = the finetune


def test_acdc_alternates_sparse_and_dense_phases(tiny, dense):
    cfg = ACDCConfig(steps=20, warmup_fraction=0.1, cycles=2, finetune_fraction=0.2, report_every=1)
    seen = []
    res = METHODS.get("acdc").fn(
        dense, tiny.train_loader, tiny.val_loader, 0.9, cfg, seed=0, report=seen.append
    )
    phases = res.info["phases"]
    assert phases[0] == WARMUP and phases[-1] == COMPRESSED
    assert all(a != b for a, b in zip(phases, phases[1:]))
    assert phases.count(DECOMPRESSED) == 2
    # Per-step sparsity: ~0.9 at the end of each compressed phase, ~0 in decompressed ones.
    by_step = {r["step"]: r["sparsity"] for r in seen if "step" in r}
    for entry in res.info["phase_log"]:
        s = by_step[entry["end"]]
        if entry["phase"] == COMPRESSED:
            assert abs(s - 0.9) <= 0.005
        else:
            assert s < 0.5
