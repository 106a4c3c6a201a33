"""Full finetuning of a sparse backbone with its sparsity mask kept fixed.

The paper (section 3.1): the final layer is replaced by a new dense layer, and "with the
exception of the final classification layer, only the nonzero weights of the original model
are optimized, and the mask is kept fixed". The loop here is plain SGD + MultiStepLR that
re-applies the mask after every optimizer step; sparsity is checked at the end.

BatchNorm (``freeze_bn``, default False). The same sentence of the paper goes on "..., as well
as the batch normalization (BN) parameters", which can be read either as "BN parameters are
kept fixed" or "BN parameters are optimized as well". The reference implementation settles it:
its full-network transfer configs set ``freeze_modules: []``, its optimizer receives every
parameter of the model and it calls ``model.train()`` before every minibatch, so BN affine
parameters are trained and BN running statistics are updated. We follow the code that produced
the paper's numbers; ``freeze_bn=True`` keeps BN affine parameters and running statistics at
the checkpoint's values for those who read the sentence the other way.

No Ray here. A run is a picklable ``FullRun``; ``run_full_finetune_in_trial`` trains it in the
calling process (one worker: a Tune trial's own), ``trainables.entry.ray_train`` under a Ray
Train TorchTrainer (DDP over several workers); both save the state after every epoch, so a
rerun resumes.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler

from common import storage
from common.atomic import atomic_path
from search_spaces.recipe import Recipe
from trainables.datasets.batched import AugmentedBatches, TensorImages
from trainables.training.engine import (
    FP32,
    EpochStats,
    FinetuneResult,
    Hooks,
    check_finite_loss,
    epoch_record,
    Precision,
    grad_scaler,
    place,
    predict,
    recipe_sgd,
    train_one_epoch,
)
from trainables.models.masks import count_zeros
from trainables.training.metrics import compute_metric
from trainables.models import classifier_name

log = logging.getLogger(__name__)
Reporter = Callable[[dict], None]
CheckpointFn = Callable[[int, dict], None]

#: File name of the training state (in a Ray Train checkpoint folder, or the trial's own).
STATE_FILE = "full_finetune_state.pt"


@dataclass
class FullResult(FinetuneResult):
    """Outcome of one full-finetuning run.

    ``masked_zeros`` / ``masked_total`` count the zeros over the masked (prunable, non
    classifier) weights at the end; they equal the counts at the start (checked).
    """

    masked_zeros: int = 0
    masked_total: int = 0


class FixedMask:
    """Keeps masked-out weights at exactly zero, cheaply enough to run after every step.

    The boolean masks are converted once to float tensors on each parameter's device and
    dtype; ``apply`` is then a single fused in-place multiply over all masked tensors (no
    per-step dict lookups, dtype conversions or host-device copies).

    Args:
        model: the unwrapped module (not a DDP wrapper) whose parameters the mask names;
            build the FixedMask after the model has been moved to its device.
        masks: ``{parameter name: bool tensor}``, True = kept.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
        params = dict(model.named_parameters())
        unknown = sorted(set(masks) - set(params))
        if unknown:
            raise ValueError(f"masks name parameters the model does not have: {unknown}")
        self.names = list(masks)
        self.params = [params[n] for n in self.names]
        self.masks = []
        for name, p in zip(self.names, self.params):
            mask = masks[name]
            if tuple(mask.shape) != tuple(p.shape):
                raise ValueError(
                    f"mask of {name} has shape {tuple(mask.shape)}, the weight {tuple(p.shape)}"
                )
            self.masks.append(mask.to(device=p.device, dtype=p.dtype).contiguous())

    @torch.no_grad()
    def apply(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.masks)

    def zeros(self) -> tuple[int, int]:
        """(zeros, total) over the masked weights."""
        return count_zeros(dict(zip(self.names, self.params)), self.names)

    def violations(self) -> int:
        """Masked-out entries that are not zero (0 while the mask holds)."""
        return sum(int(((m == 0) & (p != 0)).sum()) for p, m in zip(self.params, self.masks))


def freeze_batchnorm(model: nn.Module) -> list[nn.Module]:
    """Stop gradients into every BatchNorm's affine parameters; return the BN modules.

    Call before wrapping the model in DistributedDataParallel (DDP registers only parameters
    that require grad). The caller also keeps the returned modules in eval mode while training
    so their running statistics stay the checkpoint's.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
    return bns


def _mix_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """One RNG seed per (run seed, epoch, rank), so a resumed epoch replays exactly.

    Why not ``seed + epoch`` (DistributedSampler's choice): the paper's seeds are 30 apart,
    so seed 21 at epoch 30 would shuffle like seed 51 at epoch 0.
    """
    return (seed * 1_000_003 + epoch * 7_919 + rank) % (2**63 - 1)


class EpochSampler(Sampler[int]):
    """A shuffled, rank-sharded order of a dataset that depends only on (seed, epoch).

    Like DistributedSampler (pads to a multiple of ``world_size`` by repeating the head of
    the permutation, then takes every ``world_size``-th index), with the seed mixing above.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.epoch = 0
        self.per_rank = math.ceil(n / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(_mix_seed(self.seed, self.epoch))
        order = torch.randperm(self.n, generator=g).tolist()
        order += order[: self.per_rank * self.world_size - self.n]
        return iter(order[self.rank :: self.world_size])

    def __len__(self) -> int:
        return self.per_rank


def _shard(n: int, rank: int, world_size: int) -> list[int]:
    """Test indices of one rank: in order, padded like EpochSampler (duplicates removed later)."""
    per_rank = math.ceil(n / world_size)
    order = list(range(n))
    order += order[: per_rank * world_size - n]
    return order[rank::world_size]


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.inference_mode()
def _predict(
    net: nn.Module, dataset: Dataset, batch_size: int, device: torch.device, num_workers: int,
    precision: Precision = FP32,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true labels over ``dataset`` (all ranks' shards gathered, in order)."""
    rank, world_size = _world()
    indices = _shard(len(dataset), rank, world_size)
    loader = DataLoader(
        torch.utils.data.Subset(dataset, indices) if world_size > 1 else dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
    )
    pred, target = predict(net, loader, device, precision=precision)
    if world_size > 1:
        idx = torch.tensor(indices, device=device)
        stacked = torch.stack([idx, pred, target])
        gathered = [torch.empty_like(stacked) for _ in range(world_size)]
        dist.all_gather(gathered, stacked)
        idx, pred, target = torch.cat(gathered, dim=1).cpu()
        _, first = np.unique(idx.numpy(), return_index=True)
        pred, target = pred[first], target[first]
    return pred.cpu().numpy(), target.cpu().numpy()


def full_finetune(
    model: nn.Module, masks: Mapping[str, torch.Tensor], train_ds: Dataset, test_ds: Dataset,
    *, arch: str, num_classes: int, metric: str, recipe: Recipe, seed: int,
    device: str | torch.device = "cpu", report: Reporter | None = None, start_epoch: int = 0,
    state: dict | None = None, checkpoint_fn: CheckpointFn | None = None, num_workers: int = 0,
    freeze_bn: bool = False, precision: Precision = FP32, epoch_selection: str = "metric",
) -> FullResult:
    """Finetune every weight of a sparse model while its zeros stay zero; the settings are
    ``FullRun``'s (``num_workers``: its ``loader_workers``).

    Runs single-process, or as one rank of a torch.distributed group (Ray Train): ``model``
    may then be a DDP wrapper, and each rank trains on its shard with batch
    ``recipe.batch_size / world_size`` and evaluates a shard of the test set. ``masks``
    cover every prunable weight but the new classifier (which stays dense). ``report`` gets
    each epoch's record, then ``checkpoint_fn(epoch, bundle)`` the live state (save or copy
    it during the call), which ``state`` (and ``start_epoch``) resume after. Raises
    FloatingPointError on a NaN loss, RuntimeError when the masked zeros changed, ValueError
    on bad masks, batch size or start epoch.
    """
    device = torch.device(device)
    net = model.module if isinstance(model, DistributedDataParallel) else model
    rank, world_size = _world()
    _check_inputs(masks, arch, recipe, world_size)
    place(net, device, precision)
    bns = freeze_batchnorm(net) if freeze_bn else []
    fixed = FixedMask(net, masks)
    optimizer, scheduler = recipe_sgd([p for p in net.parameters() if p.requires_grad], recipe)
    history = _resume(net, optimizer, scheduler, state, start_epoch)
    fixed.apply()  # a mask from elsewhere (LTH-T) may not match the weights' zeros yet
    zeros_start, masked_total = fixed.zeros()
    sampler = EpochSampler(len(train_ds), seed, rank, world_size)
    batch = recipe.batch_size // world_size
    loader = _train_loader(train_ds, batch, sampler, num_workers, device)
    evaluate = functools.partial(_evaluate, net, test_ds, metric, num_classes, max(batch, 256),
                                 device, num_workers, precision)
    # Only the nonzero weights are trained: the mask is re-applied after every step.
    hooks = Hooks(after_step=fixed.apply, train_mode=functools.partial(_train_mode, frozen=bns))
    scaler = grad_scaler(device, precision)
    start = time.perf_counter()
    for epoch in range(epoch_of(history) + 1, recipe.epochs + 1):
        sampler.set_epoch(epoch)
        torch.manual_seed(_mix_seed(seed, epoch, rank))  # augmentation, DataLoader workers
        stats = train_one_epoch(model, optimizer, loader, device, hooks=hooks,
                                precision=precision, scaler=scaler)
        scheduler.step()
        train_loss = _mean_over_ranks(stats, device, world_size)
        check_finite_loss(train_loss, epoch)
        value, top1 = evaluate()
        record = epoch_record(epoch, train_loss, value, history, top1=top1, select=epoch_selection)
        if epoch == recipe.epochs:
            record.update(_check_mask(fixed, zeros_start, masked_total))
        history.append(record)
        if report is not None:
            report(dict(record))
        if checkpoint_fn is not None:
            checkpoint_fn(epoch, _bundle(epoch, net, optimizer, scheduler, history, seed))
    final = _check_mask(fixed, zeros_start, masked_total)
    if not history:
        raise ValueError(f"nothing to train: {recipe.epochs} epochs")
    return FullResult.from_history(history, time.perf_counter() - start, **final)


def _train_loader(train_ds: Dataset | TensorImages, batch_size: int, sampler: EpochSampler,
                  num_workers: int, device: torch.device) -> DataLoader | AugmentedBatches:
    """This rank's training batches in the sampler's order (workers kept across epochs); a
    split held as one tensor is augmented a batch at a time (``datasets.batched``)."""
    if isinstance(train_ds, TensorImages):
        return AugmentedBatches(train_ds, batch_size, sampler)
    return DataLoader(train_ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=device.type == "cuda", persistent_workers=num_workers > 0)


def _evaluate(net: nn.Module, test_ds: Dataset, metric: str, num_classes: int, batch: int,
              device: torch.device, num_workers: int,
              precision: Precision) -> tuple[float, float]:
    """The test set's ``metric`` and top-1 (over every rank's shard, gathered)."""
    preds, targets = _predict(net, test_ds, batch, device, num_workers, precision)
    return (compute_metric(metric, preds, targets, num_classes),
            compute_metric("top1", preds, targets, num_classes))


def epoch_of(history: list[dict]) -> int:
    """The last finished epoch of a run's history (0 before the first)."""
    return int(history[-1]["epoch"]) if history else 0


def _check_inputs(masks: Mapping[str, torch.Tensor], arch: str, recipe: Recipe,
                  world_size: int) -> None:
    head = classifier_name(arch)
    if any(name == head or name.startswith(head + ".") for name in masks):
        raise ValueError(
            f"masks must not cover the new classifier {head!r} (it stays dense); "
            f"drop {[n for n in masks if n.split('.')[0] == head]}"
        )
    if recipe.batch_size % world_size:
        raise ValueError(
            f"batch_size {recipe.batch_size} does not divide over {world_size} workers"
        )


def _resume(net: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
            state: dict | None, start_epoch: int) -> list[dict]:
    """Load a saved state into the run; returns the history of the epochs it holds."""
    if state is None:
        if start_epoch:
            raise ValueError(f"start_epoch {start_epoch} needs the state saved after that epoch")
        return []
    if start_epoch not in (0, state["epoch"]):
        raise ValueError(
            f"start_epoch {start_epoch} disagrees with the state's epoch {state['epoch']}"
        )
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return [dict(r) for r in state["history"]]


def _mean_over_ranks(stats: EpochStats, device: torch.device, world_size: int) -> float:
    """The epoch's mean training loss over every rank's samples."""
    total = torch.tensor([stats.loss_sum, stats.samples], dtype=torch.float64, device=device)
    if world_size > 1:
        dist.all_reduce(total)
    return float(total[0] / total[1])


def _bundle(epoch: int, net: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
            history: list[dict], seed: int) -> dict:
    """What ``checkpoint_fn`` receives: enough to resume after ``epoch``."""
    return {
        "epoch": epoch,
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": [dict(r) for r in history],
        "accuracy_best": history[-1]["accuracy_best"],
        "best_epoch": history[-1]["best_epoch"],
        "seed": seed,
    }


def _train_mode(model: nn.Module, frozen: list[nn.Module]) -> None:
    """Train mode, except for frozen BatchNorm layers, which keep the checkpoint's statistics."""
    model.train()
    for m in frozen:
        m.eval()


def _check_mask(fixed: FixedMask, zeros_start: int, total: int) -> dict[str, int]:
    zeros, _ = fixed.zeros()
    bad = fixed.violations()
    if zeros != zeros_start or bad:
        raise RuntimeError(
            f"sparsity changed during full finetuning: {zeros} zeros over the masked weights "
            f"at the end vs {zeros_start} at the start ({bad} masked-out weights are nonzero)"
        )
    return {"masked_zeros": zeros, "masked_total": total}


# --- One run, as every path takes it -------------------------------------------------


@dataclass(frozen=True)
class FullRun:
    """One full-finetuning run as every path takes it (picklable: it travels to Ray workers).

    Args:
        build: a zero-argument callable returning ``(model, masks, train_ds, test_ds)``, the
            model with its new classifier in place (``models.replace_classifier``). It runs on
            every worker after ``torch.manual_seed(seed)``, so the classifier init depends on
            the seed only.
        arch: architecture name (to find the classifier).
        num_classes: classes of the downstream dataset.
        metric: ``"top1"`` or ``"mean_per_class"``.
        recipe: the SGD recipe; the study sets its lr per dataset.
        seed: seeds the classifier's init, shuffling and augmentation per epoch.
        freeze_bn: keep BatchNorm affine parameters and running statistics fixed (the
            module docstring says why the default is False).
        loader_workers: DataLoader processes per worker.
        precision: channels_last / mixed precision (``engine.Precision``; float32 by
            default, as the paper).
        epoch_selection: which epoch's accuracy is reported (``engine.EPOCH_SELECTIONS``:
            the best by top-1 as the reference code, by the dataset's metric, or the last).
    """

    build: Callable[[], tuple[nn.Module, Mapping[str, torch.Tensor], Any, Any]]
    arch: str
    num_classes: int
    metric: str
    recipe: Recipe
    seed: int
    freeze_bn: bool = False
    loader_workers: int = 0
    precision: Precision = FP32
    epoch_selection: str = "metric"


def build_run(run: FullRun) -> tuple[nn.Module, Mapping[str, torch.Tensor], Any, Any]:
    """Run ``run.build`` after seeding, so the new classifier's init is the seed's."""
    torch.manual_seed(run.seed)
    model, masks, train_ds, test_ds = run.build()
    if run.freeze_bn:
        freeze_batchnorm(model)  # before DDP, which registers only trainable parameters
    return model, masks, train_ds, test_ds


def finetune_run(
    run: FullRun, model: nn.Module, masks: Mapping[str, torch.Tensor], train_ds: Any,
    test_ds: Any, *, device: Any, state: dict | None, checkpoint_fn: CheckpointFn,
) -> FullResult:
    """``full_finetune`` on a built run's parts, with its settings (every path calls this)."""
    return full_finetune(
        model, masks, train_ds, test_ds, arch=run.arch, num_classes=run.num_classes,
        metric=run.metric, recipe=run.recipe, seed=run.seed, device=device, state=state,
        checkpoint_fn=checkpoint_fn, num_workers=run.loader_workers, freeze_bn=run.freeze_bn,
        precision=run.precision, epoch_selection=run.epoch_selection,
    )


def load_state(state_file: str | Path) -> dict | None:
    """The training state saved after the last finished epoch, or None to start over.

    ``state_file`` is a path or a URI (``common.storage``). A torn or unreadable file (a kill
    during the write cannot leave one: the write is atomic, but a disk can fail) means
    starting over, not failing the trial; a storage that does not answer raises (``OSError``,
    Tune retries the trial) rather than silently starting over.
    """
    try:
        data = storage.read_bytes(state_file)
    except FileNotFoundError:
        return None
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001
        log.warning("ignoring unreadable state %s: %s", storage.masked(state_file), e)
        return None


def save_state(bundle: dict, state_file: str | Path) -> None:
    """Write the epoch's training state at once (atomic locally, one object in a bucket); a
    full disk or a storage error names the file."""
    if not storage.is_uri(state_file):
        # Through an open file: a full disk is then OSError(ENOSPC), not torch's RuntimeError.
        with atomic_path(state_file) as tmp, open(tmp, "wb") as fh:
            torch.save(bundle, fh)
        return
    buffer = io.BytesIO()
    torch.save(bundle, buffer)
    storage.write_bytes(state_file, buffer.getvalue())


def run_full_finetune_in_trial(
    run: FullRun, *, state_file: str | Path, report: Reporter | None = None,
    use_gpu: bool = False,
) -> FullResult:
    """The same run in the calling process (a Tune function trainable): no TorchTrainer.

    Why: a TorchTrainer starts a controller and worker actors, each a new Python process that
    imports torch and Ray Train; on the 2-core machine under load ``TorchTrainer.fit()`` of a
    trivial loop took about 20 s (benchmarks/mask_overhead.py --trainer-startup), a large
    share of a tiny-study trial. With one worker there is nothing to distribute.

    The state is saved after every epoch to ``state_file``, a path keyed by the trial id
    rather than Tune's trial folder, so a rerun of the sweep, whatever Tuner runs it, resumes
    after the last finished epoch.

    Args:
        run: the run.
        state_file: where the per-epoch training state lives (a path, or a URI under
            ``--storage``).
        report: called after every epoch (after the state is saved) with its record.
        use_gpu: train on the trial's GPU when CUDA is available.
    """
    model, masks, train_ds, test_ds = build_run(run)
    state = load_state(state_file)
    if state is not None:
        log.info("resuming %s after epoch %s", storage.masked(state_file), state["epoch"])
    device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"

    def checkpoint_fn(epoch: int, bundle: dict) -> None:
        save_state(bundle, state_file)
        if report is not None:
            report(dict(bundle["history"][-1]))

    return finetune_run(run, model, masks, train_ds, test_ds, device=device, state=state,
                checkpoint_fn=checkpoint_fn)


