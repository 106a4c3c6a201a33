"""Failures by kind in a real Ray Tune run of a stage (``execute.run_stage``, its FailureConfig,
the ``RecordTrials`` callback, ``trial.tune_trial`` and ``run_trial``).

The linear stage's entry is replaced by one that behaves by dataset name:
``oom_once`` runs out of CUDA memory on its first attempt only, ``bad`` raises bad input,
``bug`` raises a TypeError until ``fixed`` exists. Every attempt leaves a line in
``attempts/<dataset>``, so the test counts what Tune ran.
"""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import BadInput
from search_spaces.recipe import Recipe
from search_spaces.trial import TrialSpec
from trainables.entry.context import TrialContext

pytestmark = pytest.mark.slow

MAX_FAILURES = 1  # two attempts per trial: enough to see a retry, short on 2 cores


def faulty_stage(spec: TrialSpec, ctx: TrialContext, report) -> dict[str, Any]:
    """Runs in the Tune worker in place of the linear stage's entry (importable by the
    workers, as this module is, so Ray pickles it by reference)."""
    import torch

    out = ctx.out
    log = out / "attempts" / spec.dataset
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write("attempt\n")
    attempt = len(log.read_text().splitlines())
    if spec.dataset == "oom_once" and attempt == 1:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    if spec.dataset == "bad":
        raise BadInput(f"checkpoint {spec.checkpoint} is in no known format")
    if spec.dataset == "bug" and not (out / "fixed").exists():
        return {"accuracy": None + 1}  # TypeError: a bug, not bad input
    return {"accuracy": 50.0, "history": [{"epoch": 1, "accuracy": 50.0}]}


def spec(dataset: str) -> TrialSpec:
    return TrialSpec(stage="linear", method="dense", sparsity=0, arch="resnet_tiny",
                     dataset=dataset, seed=0, recipe=Recipe(epochs=1), num_classes=3,
                     checkpoint="dense_0.pth", checkpoint_hash="h")


def test_out_of_memory_is_retried_bad_input_is_not_and_a_bug_is_an_error(
        tmp_path, capsys):
    import ray

    import dataclasses

    from orchestrator import resume, runner
    from orchestrator.execute import SweepContext, run_stage
    from orchestrator.ledger import ERROR, FAILED, FINISHED, Ledger
    from orchestrator.logs import LogSettings, sweep_logging
    from orchestrator.smoke import smoke_study
    from orchestrator.stages import linear
    from orchestrator.sweep import SweepOptions
    from orchestrator.tracking import Tracker
    from search_spaces.loader import load_study

    # No feature tasks: the faulty entry reads no features.
    stage = dataclasses.replace(linear.STAGE, entry=faulty_stage, tasks=None)
    study = smoke_study(load_study("tiny"))
    options = SweepOptions(out_dir=tmp_path, num_cpus=2, max_failures=MAX_FAILURES, verbose=0)
    ledger = Ledger(tmp_path / "trials")
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "sparse-transfer/failures")
    ctx = TrialContext(out_dir=str(tmp_path), data_root=None)
    sweep = SweepContext(study, ctx, ledger, tracker, options)
    specs = {d: spec(d) for d in ("oom_once", "bad", "bug")}
    attempts = lambda d: len((tmp_path / "attempts" / d).read_text().splitlines())  # noqa: E731
    runner.init_ray(options)
    try:
        with sweep_logging(LogSettings()):  # what the sweep says reaches stderr, as in the CLI
            run_stage(stage, list(specs.values()), sweep)
        said = capsys.readouterr().err

        oom = ledger.get(specs["oom_once"].trial_id)
        assert oom["status"] == FINISHED and oom["metrics"]["accuracy"] == 50.0
        assert attempts("oom_once") == 2  # Tune ran it again
        assert f"trial {specs['oom_once'].trial_id} raised torch.OutOfMemoryError: CUDA out " \
            "of memory" in said and "(attempt 1 of 2); Ray Tune runs it again" in said

        bad = ledger.get(specs["bad"].trial_id)
        assert bad["status"] == FAILED and attempts("bad") == 1  # never retried
        assert bad["error"].startswith("BadInput: checkpoint dense_0.pth is in no known format")

        bug = ledger.get(specs["bug"].trial_id)
        assert bug["status"] == ERROR and attempts("bug") == bug["attempts"] == 2
        assert ", in faulty_stage" in bug["error"]  # the traceback, not just a message
        assert bug["error"].rstrip().endswith(
            "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'")
        assert f"trial {specs['bug'].trial_id} errored on all 2 attempt(s)" in said
        assert "in faulty_stage" in said  # the traceback itself is printed
        run = tracker.client.get_run(tracker.run_id(specs["bug"].trial_id))
        assert run.info.status == "FAILED" and run.data.tags["status"] == "error"
        assert "TypeError" in run.data.tags["error"]

        # A rerun tries the errored trial again (not the bad input); with the bug fixed it
        # finishes, and its MLflow run no longer says error.
        todo = resume.pending(list(specs.values()), ledger, retry_failed=False)
        assert todo == [specs["bug"]]
        (tmp_path / "fixed").touch()
        run_stage(stage, todo, sweep)
        assert ledger.status(specs["bug"].trial_id) == FINISHED and attempts("bug") == 3
        run = tracker.client.get_run(tracker.run_id(specs["bug"].trial_id))
        assert run.info.status == "FINISHED" and "error" not in run.data.tags
        trial_runs = [r for r in tracker.client.search_runs([tracker.experiment_id])
                      if "trial_id" in r.data.tags]  # not the stage's parent run
        assert len(trial_runs) == 3
    finally:
        ray.shutdown()
