"""Full finetuning under a Ray Train TorchTrainer: DDP over the trial's workers, one per GPU.

The loop is ``trainables.training.full``'s; here only what Ray Train adds: the per-worker
function (``train_loop_per_worker``: DDP, a checkpoint per epoch on rank 0, resume from the
latest), the TorchTrainer a Tune trial starts (``run_full_finetune_trainer``), and the worker
group's start timeout, so a request no node frees up fails the trial instead of hanging it.

Resuming, as read in Ray 2.60's Train V2 source (``CheckpointManager.
_maybe_load_state_from_storage``): the checkpoint manager snapshot lives under
``storage_path/name``; a new TorchTrainer with the same ``storage_path`` and ``name`` loads
it, and ``ray.train.get_checkpoint()`` in the workers returns the latest checkpoint. So
running the same run again after a crash resumes after the last finished epoch (checked in
tests); a fresh run needs a fresh ``name``. Within one ``fit()``, ``max_failures``
worker-group restarts resume the same way. The snapshot refuses to load under another Ray
version.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from common.errors import BadInput
from trainables.training.full import STATE_FILE, FullRun, build_run, finetune_run, save_state


def _state_from(checkpoint: Any) -> dict | None:
    """The training state inside a Ray Train checkpoint, or None."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)


def train_loop_per_worker(config: dict[str, FullRun]) -> None:
    """One Ray Train worker of a full-finetuning run (DDP over the trial's workers).

    ``config`` is ``{"run": FullRun}`` (Ray Train takes a dict).

    Every worker reports every epoch (``ray.train.report`` is a barrier); rank 0 attaches a
    checkpoint with the training state. A restarted run finds it with
    ``ray.train.get_checkpoint()`` and resumes after the last finished epoch.
    """
    import ray.train
    import ray.train.torch

    run: FullRun = config["run"]
    model, masks, train_ds, test_ds = build_run(run)
    state = _state_from(ray.train.get_checkpoint())
    device = ray.train.torch.get_device()
    model = ray.train.torch.prepare_model(model)  # DDP when world size > 1 (gloo on CPU)
    rank = ray.train.get_context().get_world_rank()

    def checkpoint_fn(epoch: int, bundle: dict) -> None:
        metrics = dict(bundle["history"][-1])
        if rank != 0:
            ray.train.report(metrics, checkpoint=None)
            return
        with tempfile.TemporaryDirectory() as folder:
            save_state(bundle, Path(folder) / STATE_FILE)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))

    finetune_run(run, model, masks, train_ds, test_ds, device=device, state=state,
                 checkpoint_fn=checkpoint_fn)


def run_full_finetune_trainer(
    run: FullRun, *, num_workers: int, use_gpu: bool, storage_path: str | Path, name: str,
    tune_callback: bool = True, cpus_per_worker: float = 1.0, num_to_keep: int = 1,
    max_failures: int = 0, start_timeout_s: float | None = None,
) -> dict:
    """Run ``train_loop_per_worker`` under a TorchTrainer and return its final metrics (the
    last report's ``REPORT_KEYS``, with ``masked_zeros`` and ``masked_total`` when done) and,
    under ``history``, every epoch's record, read from the run's ``Result.checkpoint`` (the
    latest checkpoint, wherever the storage keeps it: a folder or a bucket).

    Called from a Tune function trainable (the Ray 2.60 pattern: Train V2 trainers cannot be
    passed to a Tuner), it adds ``TuneReportCallback`` so every epoch's rank-0 metrics reach
    the Tune trial; outside a Tune session (tests, scripts) the callback is left out.

    Args:
        num_workers, use_gpu, cpus_per_worker: DDP workers (Ray actors), one GPU each (NCCL)
            or CPU only (gloo), the CPUs each reserves.
        storage_path, name: Ray Train's storage root (the study's ``runs/<study>/ray/train``,
            or a URI under ``--storage``) and the run's folder under it; the same name
            resumes (module docstring).
        tune_callback: forward reports to the enclosing Tune trial if there is one.
        num_to_keep: checkpoints kept on disk (the latest is always kept).
        max_failures: worker-group restarts (each resuming) before the run fails.
        start_timeout_s: how long the worker group may wait for its resources; then the
            run raises ``WorkerGroupUnavailable`` (None: Ray Train's own behaviour, a
            60 s timeout retried without end).
    """
    import ray.train
    from ray.train.torch import TorchTrainer

    # A worker-group start that times out is a controller failure, retried without limit by
    # default: a request no node frees up for hung the trial forever.
    failure = ray.train.FailureConfig(max_failures=max_failures) if start_timeout_s is None \
        else ray.train.FailureConfig(max_failures=max_failures, controller_failure_limit=0)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"run": run},
        scaling_config=ray.train.ScalingConfig(
            num_workers=num_workers, use_gpu=use_gpu,
            resources_per_worker={"CPU": cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            storage_path=str(storage_path), name=name, callbacks=_callbacks(tune_callback),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=num_to_keep),
            failure_config=failure,
        ),
    )
    with _start_timeout(start_timeout_s):
        try:
            result = trainer.fit()
        except ray.train.ControllerError as e:
            if not _startup_timed_out(e):
                raise
            raise _unavailable(num_workers, cpus_per_worker, use_gpu, start_timeout_s) from None
    state = _state_from(result.checkpoint) or {}
    return {**(result.metrics or {}), "history": [dict(r) for r in state.get("history", [])]}


def _unavailable(num_workers: int, cpus_per_worker: float, use_gpu: bool,
                 start_timeout_s: float | None) -> WorkerGroupUnavailable:
    """The bad input a worker group that could not start in time is: what it asked for and
    the study keys that change it."""
    return WorkerGroupUnavailable(
        f"the Ray Train worker group ({num_workers} worker(s) x "
        f"{{CPU: {cpus_per_worker:g}{', GPU: 1' if use_gpu else ''}}}, all at once) "
        f"could not start within {start_timeout_s:g} s: the cluster has no room for "
        "it now (other trials hold the resources, or no node that fits is up or can "
        "be launched). Study keys: modes.full.start_timeout_s, modes.full.workers, "
        "modes.full.cpus; rerun with --retry-failed once the cluster has room")


def _callbacks(tune_callback: bool) -> list[Any]:
    """``TuneReportCallback`` inside a Tune session (when asked), else nothing."""
    if not tune_callback:
        return []
    from ray.tune.integration.ray_train import TuneReportCallback

    try:
        return [TuneReportCallback()]
    except RuntimeError:  # "must be used in a Tune session": plain script or test
        return []


class WorkerGroupUnavailable(BadInput):
    """The worker group could not get its resources within ``modes.full.start_timeout_s``.

    A failed trial (not retried by Tune): retrying at once asks the same full cluster again.
    """


# Ray Train V2 reads the start timeout from this variable in the driver (here: the Tune
# trial) and passes it on to its controller when ``fit()`` starts it.
START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"


@contextmanager
def _start_timeout(seconds: float | None) -> Iterator[None]:
    """Set ``START_TIMEOUT_ENV`` for the duration of a ``fit()`` (None: leave Ray's own)."""
    if seconds is None:
        yield
        return
    old = os.environ.get(START_TIMEOUT_ENV)
    os.environ[START_TIMEOUT_ENV] = f"{seconds:g}"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(START_TIMEOUT_ENV, None)
        else:
            os.environ[START_TIMEOUT_ENV] = old


def _startup_timed_out(error: BaseException) -> bool:
    """Whether a ``ControllerError`` is the worker group's start timing out."""
    cause = getattr(error, "controller_failure", None)
    return type(cause).__name__ == "WorkerGroupStartupTimeoutError"
