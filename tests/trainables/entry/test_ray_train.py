"""Full finetuning under Ray Train: DDP over 2 CPU workers keeps the mask and resumes from its
checkpoint; a worker group that cannot start fails within its timeout, as a failed trial."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest
import torch

from search_spaces.recipe import Recipe
from tests.trainables.training.test_full import ARCH, RECIPE, _build, _zeros
from trainables.entry.ray_train import WorkerGroupUnavailable, run_full_finetune_trainer
from trainables.training.full import STATE_FILE, FullRun


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _latest_state(run_dir: Path) -> dict:
    files = sorted(run_dir.glob(f"checkpoint_*/{STATE_FILE}"))
    assert files, f"no checkpoint under {run_dir}"
    return torch.load(files[-1], map_location="cpu", weights_only=False)


@pytest.mark.slow
def test_two_worker_ddp_keeps_mask_and_resumes(ray_cluster, tmp_path: Path) -> None:
    zeros_before = _zeros(_build(3)[0])
    config = FullRun(build=functools.partial(_build, 3), arch=ARCH, num_classes=3,
                     metric="top1", recipe=Recipe(epochs=1, lr=0.01, batch_size=16, milestones=()),
                     seed=3)
    kwargs = dict(num_workers=2, use_gpu=False, storage_path=tmp_path, name="ddp")
    first = run_full_finetune_trainer(config, **kwargs)
    assert first["epoch"] == 1 and first["masked_zeros"] == zeros_before
    assert [r["epoch"] for r in first.pop("history")] == [1]

    # Same storage_path and name: Train V2 resumes from the latest checkpoint (epoch 1). Other
    # data in the second run proves it: a fresh run would recompute epoch 1 differently.
    config = dataclasses.replace(config, build=functools.partial(_build, 3, data_seed=99),
                                 recipe=Recipe(epochs=2, lr=0.01, batch_size=16, milestones=()))
    metrics = run_full_finetune_trainer(config, **kwargs)
    assert metrics["epoch"] == 2 and metrics["masked_zeros"] == zeros_before

    # Every epoch's record comes back through the run's Result.checkpoint.
    assert [r["epoch"] for r in metrics["history"]] == [1, 2]
    state = _latest_state(tmp_path / "ddp")
    assert metrics["history"] == state["history"]
    assert [r["epoch"] for r in state["history"]] == [1, 2]
    assert state["history"][0] == {k: v for k, v in first.items() if k in state["history"][0]}
    assert "masked_zeros" in state["history"][0]  # written by the first run's last epoch
    model = _build(3)[0]
    model.load_state_dict(state["model"])
    assert _zeros(model) == zeros_before
    assert int((model.fc.weight == 0).sum()) == 0


@pytest.mark.slow
def test_a_worker_group_that_cannot_start_fails_within_its_timeout(ray_cluster,
                                                                  tmp_path: Path) -> None:
    """3 workers x 1 CPU on a 2-CPU Ray: Ray Train alone retries the start every 60 s
    forever; with ``start_timeout_s`` the run fails once, as bad input (no Tune retries)."""
    import time

    config = FullRun(build=functools.partial(_build, 3), arch=ARCH, num_classes=3,
                     metric="top1", recipe=Recipe(epochs=1, lr=0.01, batch_size=16, milestones=()),
                     seed=3)
    t0 = time.monotonic()
    with pytest.raises(WorkerGroupUnavailable, match="could not start within 3 s") as e:
        run_full_finetune_trainer(config, num_workers=3, use_gpu=False, storage_path=tmp_path,
                                  name="too-big", start_timeout_s=3)
    assert time.monotonic() - t0 < 90
    assert "modes.full.start_timeout_s" in str(e.value)
    assert "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S" not in __import__("os").environ


def test_a_worker_group_that_never_starts_is_a_failed_trial_with_its_reason(monkeypatch,
                                                                            tmp_path: Path):
    """run_trial records the timeout as ``failed`` (no Tune retries), naming the keys."""
    from search_spaces.trial import TrialSpec
    from trainables.entry import full, ray_train
    from trainables.entry.context import FullPlan, TrialContext
    from trainables.entry.trial import run_trial

    seen = {}

    def no_room(run, **kwargs):
        seen.update(kwargs)
        raise WorkerGroupUnavailable("the Ray Train worker group (2 worker(s) x {CPU: 1}, all "
                                     "at once) could not start within 7 s: ... Study keys: "
                                     "modes.full.start_timeout_s, modes.full.workers")

    monkeypatch.setattr(full, "load_backbone", lambda spec: None)
    monkeypatch.setattr(full, "trial_dataset", lambda *a: None)
    monkeypatch.setattr(full, "_full_config", lambda spec, ctx: None)
    monkeypatch.setattr(ray_train, "run_full_finetune_trainer", no_room)
    spec = TrialSpec(stage="full", method="gmp", sparsity=90, arch=ARCH, dataset="digits",
                     seed=21, recipe=RECIPE, num_classes=10)
    plan = FullPlan(num_workers=2, cpus_per_worker=1.0, in_trial=False, start_timeout_s=7)
    result = run_trial(full.run_full, spec,
                       TrialContext(out_dir=str(tmp_path), full_plan=plan), report=lambda r: None)
    assert result["status"] == "failed"
    assert result["error"].startswith("WorkerGroupUnavailable: the Ray Train worker group")
    assert "modes.full.start_timeout_s" in result["error"]
    assert seen["start_timeout_s"] == 7 and seen["num_workers"] == 2
