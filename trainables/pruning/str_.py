"""STR: Soft Threshold weight Reparameterization (Kusupati et al. 2020), registered as "str".

Each prunable layer l trains its weights through a soft threshold,
``w_eff = sign(w) * relu(|w| - g(s_l))`` with ``g = sigmoid`` and one learnable scalar ``s_l``
per layer, initialised low (``g(s_init)`` ~ 0: nothing pruned). Weight decay on ``s`` pulls it
towards 0, raising every threshold, while the task loss pulls thresholds of useful layers
down, so each layer finds its own sparsity. (The module is ``str_`` so it does not shadow the
builtin ``str``.)

Laptop adaptation: the paper reaches its sparsity by hand-tuning one decay value over a
full ImageNet run; with a budget of a hundred steps the (global) decay on ``s`` is instead
set every step to the smallest value whose SGD step puts the thresholds' sparsity on the
cubic schedule (``tracking_decay``). The loss gradient still moves every ``s_l`` on its own,
so layers end at different thresholds. Once the thresholds' sparsity is within
``tolerance`` of the target (or at ``prune_steps`` at the latest) the thresholds freeze, the
weights become ``w_eff``, and a global ranking of the soft-threshold margin ``|w| - g(s_l)``
fixes the mask to exactly the target (a small correction, recorded as ``fixed_weights``).
The rest of the budget finetunes with that mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader

from trainables.models.masks import apply_masks, prunable_names
from trainables.pruning.common import (
    PruneConfig,
    Report,
    Trainer,
    cubic_sparsity,
    cycle,
    lr_schedule,
    make_optimizer,
    masks_from_scores,
    method_entry,
    registered,
    weights_of,
)
from trainables.training.engine import Hooks, train_one_epoch


@dataclass(frozen=True)
class STRConfig(PruneConfig):
    """STR knobs on top of the shared budget.

    Args:
        s_init: initial value of every ``s_l`` (threshold ``sigmoid(s_init)``).
        threshold_lr: SGD learning rate of the ``s_l`` (constant, no momentum).
        tolerance: the threshold phase ends once the sparsity is within this of the target.
    """

    s_init: float = -8.0
    threshold_lr: float = 0.1
    tolerance: float = 0.002

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.threshold_lr <= 0 or not 0 <= self.tolerance < 0.05:
            raise ValueError(
                "STRConfig needs threshold_lr > 0 and tolerance in [0, 0.05), "
                f"got {self.threshold_lr}, {self.tolerance}"
            )


def soft_threshold(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``sign(w) * relu(|w| - sigmoid(s))``: STR's effective weight."""
    return torch.sign(w) * torch.relu(w.abs() - torch.sigmoid(s))


@torch.no_grad()
def tracking_decay(
    weights: dict[str, torch.Tensor], s: dict[str, nn.Parameter], level: float, lr: float
) -> float:
    """Smallest decay on ``s`` whose SGD step brings the thresholds' sparsity to ``level``.

    One SGD step maps each ``s_l`` to ``s_l - lr * grad_l - lr * d * s_l`` (``grad_l`` already
    in ``.grad``); the sparsity this gives rises monotonically with d, so d is found by
    bisection on [0, 1/lr]. 0 when the loss gradient alone already gets there.
    """
    names = list(weights)
    mags = [weights[n].detach().abs() for n in names]
    grads = [s[n].grad if s[n].grad is not None else torch.zeros(()) for n in names]
    base = torch.stack([s[n].detach() - lr * g for n, g in zip(names, grads)])
    s_now = torch.stack([s[n].detach() for n in names])
    total = sum(m.numel() for m in mags)

    def sparsity(d: float) -> float:
        thr = torch.sigmoid(base - lr * d * s_now)
        return sum(int((m <= t).sum()) for m, t in zip(mags, thr)) / total

    if sparsity(0.0) >= level:
        return 0.0
    lo, hi = 0.0, 1.0 / lr
    if sparsity(hi) < level:
        return hi
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if sparsity(mid) >= level:
            hi = mid
        else:
            lo = mid
    return hi


def _effective(
    weights: dict[str, torch.Tensor], s: dict[str, nn.Parameter]
) -> dict[str, torch.Tensor]:
    return {n: soft_threshold(w, s[n]) for n, w in weights.items()}


def _sparsity(eff: dict[str, torch.Tensor]) -> float:
    zeros = sum(int((t == 0).sum()) for t in eff.values())
    return zeros / sum(t.numel() for t in eff.values())


def str_train(
    model: nn.Module,
    train_loader: DataLoader,
    target: float,
    cfg: STRConfig,
    report: Report | None = None,
) -> tuple[nn.Module, dict, dict]:
    """Run STR in place; returns (model, exact-target masks, info with threshold stats).

    Three phases: the thresholds are learned until their sparsity reaches the target (or the
    pruning steps run out), the mask is then fixed at exactly the target, and the weights are
    finetuned under it for the rest of the budget.
    """
    names = prunable_names(model, cfg.exclude)
    weights = weights_of(model, names)
    dev = next(model.parameters()).device
    s = {n: nn.Parameter(torch.tensor(cfg.s_init, device=dev)) for n in names}
    start_thresholds = {n: float(torch.sigmoid(p.detach())) for n, p in s.items()}
    phase = _learn_thresholds(model, train_loader, target, cfg, report, weights, s)
    step = phase["step"]

    with torch.no_grad():
        thresholds = {n: torch.sigmoid(p).detach() for n, p in s.items()}
        eff = _effective(weights, s)
        margin = {n: weights[n].abs() - thresholds[n] for n in names}
        masks = masks_from_scores(margin, target)
        fixed = sum(int((masks[n] != (eff[n] != 0)).sum()) for n in names)
        for n in names:
            # Kept weights take their soft-thresholded value; the few that the exact-target
            # correction restores (margin <= 0) keep their raw value.
            new = torch.where(margin[n] > 0, eff[n], weights[n])
            weights[n].copy_(torch.where(masks[n], new, torch.zeros_like(new)))
        apply_masks(model, masks)

    # Finetune with the fixed mask for the rest of the budget (plain weights now).
    trainer = Trainer(model, train_loader, cfg, report=report, start_step=step)
    trainer.set_masks(masks)
    trainer.run(cfg.steps - step)
    info = {
        "thresholds_start": start_thresholds,
        "thresholds_end": {n: float(t) for n, t in thresholds.items()},
        "sparsity_from_thresholds": phase["sparsity"],
        "reached_by_thresholds": phase["reached"],
        "switch_step": step,
        "fixed_weights": fixed,
        "decays": phase["decays"],
        "sparsity_trace": phase["trace"],
    }
    return model, masks, info


def _learn_thresholds(model: nn.Module, train_loader: DataLoader, target: float,
                      cfg: STRConfig, report: Report | None, weights: dict[str, torch.Tensor],
                      s: dict[str, nn.Parameter]) -> dict:
    """STR's first phase: SGD on the soft-thresholded weights, each step's threshold decay
    tracking the cubic schedule, until the thresholds' sparsity is within ``cfg.tolerance``
    of the target. Returns the step and sparsity it stopped at, whether it reached the
    target, the decays and the sparsity trace."""
    dev = next(model.parameters()).device
    opt = make_optimizer(model.parameters(), cfg)
    opt_s = torch.optim.SGD(list(s.values()), lr=cfg.threshold_lr, momentum=0.0, weight_decay=0.0)
    decays: list[float] = []
    trace: list[tuple[int, float]] = []
    run = {"step": 0, "sparsity": 0.0, "loss": 0.0}

    def threshold_decay(loss: torch.Tensor) -> None:
        # The decay on s that puts the thresholds' sparsity on the cubic schedule after this
        # step (the loss gradient of every s_l is in .grad now).
        scheduled = cubic_sparsity(run["step"] + 1, cfg.prune_steps, target)
        decays.append(tracking_decay(weights, s, scheduled, cfg.threshold_lr))
        for g in opt_s.param_groups:
            g["weight_decay"] = decays[-1]
        run["loss"] = loss

    def step_thresholds() -> bool:
        opt_s.step()
        opt_s.zero_grad(set_to_none=True)
        run["step"] += 1
        step = run["step"]
        with torch.no_grad():
            run["sparsity"] = _sparsity(_effective(weights, s))
        if step % cfg.frequency == 0:
            trace.append((step, run["sparsity"]))
        if report is not None and step % cfg.report_every == 0:
            report({"step": step, "train_loss": float(run["loss"].detach()),
                    "sparsity": run["sparsity"]})
        return run["sparsity"] >= target - cfg.tolerance

    hooks = Hooks(
        before_step=threshold_decay, after_step=step_thresholds,
        forward=lambda net, x: functional_call(net, _effective(weights, s), (x,)),
    )
    stats = train_one_epoch(model, opt, cycle(train_loader), dev, hooks=hooks,
                            scheduler=lr_schedule(opt, cfg), steps=cfg.prune_steps)
    return {"step": run["step"], "sparsity": run["sparsity"], "reached": stats.stopped,
            "decays": decays, "trace": trace}


# Collected into ``trainables.pruning.METHODS`` by the package.
ENTRIES = (
    method_entry(
        "str",
        registered("str", str_train),
        config=STRConfig,
    ),
)
