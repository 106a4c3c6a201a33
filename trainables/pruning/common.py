"""What every pruning method shares: its budget config, result, schedules and magnitude masks.

Each method module (``gmp``, ``woodfisher``, ``acdc``, ``str_``, ``rigl``, ``lth``) holds one
plain function that does the work and declares ``ENTRIES``: ``method_entry(...)`` values whose
``fn`` (mostly ``registered(name, work)``) has the common signature::

    prune(model, train_loader, val_loader, target: float, cfg, seed: int, report=None)
        -> PruneResult

The package (``trainables.pruning``) collects every module's ``ENTRIES`` into ``METHODS``; no
method module imports the package's registry back.

``model`` is the dense pretrained network (modified in place and returned in the result),
``target`` the global sparsity as a fraction in [0, 1] over the prunable weights (every Conv2d
and Linear ``.weight``, ``trainables.models.masks``), ``cfg`` the method's config dataclass (a
``PruneConfig`` subclass, so a study file can tune the shared budget fields uniformly).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from common import catalog
from trainables.models.masks import Masks, apply_masks, global_sparsity, prunable_names
from trainables.registry import Entry
from trainables.training.engine import Hooks, cycle, evaluate, train_one_epoch

Report = Callable[[dict], None]
# A method's own work: (model, train_loader, target, cfg, report) -> (model, masks, info),
# with ``seed`` before ``report`` when registered with ``seeded=True``.
Work = Callable[..., tuple[nn.Module, Masks, dict[str, Any]]]
PruneFn = Callable[..., "PruneResult"]

NEEDS = ("dense", "mask")


@dataclass(frozen=True)
class PruneConfig:
    """The training budget of a pruning run; methods subclass it with their own knobs.

    Args:
        steps: optimisation steps of the whole run (pruning + finetuning), batches of the
            train loader (the loader is cycled across epochs). 300 batches of 64 take 10-15 s
            per run for resnet_tiny on one core.
        lr: peak SGD learning rate, cosine-decayed. 0.03 (0.6x the upstream peak) recovered
            3-4 points more at 90 % than 0.01 for every method, and lets AC/DC's
            decompressed phases regrow weights.
        momentum: SGD momentum.
        weight_decay: SGD weight decay on the network's weights.
        frequency: steps between mask updates (pruning steps, RigL drop/grow, ...).
        finetune_fraction: share of ``steps`` after the last mask change, spent training with
            the final mask fixed.
        lr_schedule: ``"cosine"`` (decays to 0 over ``steps``) or ``"constant"``.
        exclude: module names left dense (e.g. ``("fc",)``); the paper prunes all of them.
        report_every: call ``report`` with the running train loss every this many steps.
    """

    steps: int = 300
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 5e-5
    frequency: int = 10
    finetune_fraction: float = 0.3
    lr_schedule: str = "cosine"
    exclude: tuple[str, ...] = ()
    report_every: int = 20

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"{type(self).__name__}.steps must be >= 1, got {self.steps}")
        if self.lr <= 0:
            raise ValueError(f"{type(self).__name__}.lr must be > 0, got {self.lr}")
        if self.frequency < 1:
            raise ValueError(f"{type(self).__name__}.frequency must be >= 1, got {self.frequency}")
        if not 0.0 <= self.finetune_fraction < 1.0:
            raise ValueError(
                f"{type(self).__name__}.finetune_fraction must be in [0, 1), "
                f"got {self.finetune_fraction}"
            )
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(
                f"{type(self).__name__}.lr_schedule must be 'cosine' or 'constant', "
                f"got {self.lr_schedule!r}"
            )

    @property
    def prune_steps(self) -> int:
        """Steps before the final finetuning phase (the last mask change happens by then)."""
        return max(1, int(round(self.steps * (1.0 - self.finetune_fraction))))


@dataclass
class PruneResult:
    """A pruned model, its masks (True = kept) and what the method measured.

    ``info`` always has ``"method"``, ``"target"``, ``"sparsity"`` (measured, fraction),
    ``"val_accuracy"`` (percent), ``"seconds"`` and ``"steps"``; methods add their own.
    """

    model: nn.Module
    masks: Masks
    info: dict[str, Any] = field(default_factory=dict)


def check_target(target: float) -> float:
    if not isinstance(target, (int, float)) or not 0.0 <= float(target) <= 1.0:
        raise ValueError(f"target sparsity must be a fraction in [0, 1], got {target!r}")
    return float(target)


# ----------------------------------------------------------------------------------- schedules


def cubic_sparsity(step: int, total: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's gradual schedule: ``s_t = s_f + (s_i - s_f) (1 - t/T)^3``, t clipped to [0, T].

    Args:
        step: t, steps since pruning began.
        total: T, steps over which sparsity rises from ``initial`` to ``final``.
        final: s_f, the target sparsity (fraction).
        initial: s_i, the sparsity at t = 0.
    """
    if total <= 0:
        return final
    frac = min(max(step / total, 0.0), 1.0)
    return final + (initial - final) * (1.0 - frac) ** 3


def lr_at(step: int, cfg: PruneConfig, total: int | None = None) -> float:
    """Learning rate at ``step`` of a run of ``total`` steps (default ``cfg.steps``)."""
    return cfg.lr * lr_factor(step, cfg, cfg.steps if total is None else total)


# -------------------------------------------------------------------------------------- masks


def weights_of(model: nn.Module, names: Iterable[str]) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {n: params[n] for n in names}


def masks_from_scores(scores: Mapping[str, torch.Tensor], target: float) -> Masks:
    """Global masks pruning exactly ``round(target * total)`` lowest-scoring weights.

    Ties are broken by position (``torch.topk`` on the concatenation), so the count is exact.
    """
    names = list(scores)
    flat = torch.cat([scores[n].detach().reshape(-1).float() for n in names])
    total = flat.numel()
    n_prune = int(round(check_target(target) * total))
    keep = torch.ones(total, dtype=torch.bool, device=flat.device)
    if n_prune > 0:
        idx = torch.topk(flat, n_prune, largest=False, sorted=False).indices
        keep[idx] = False
    out: Masks = {}
    offset = 0
    for n in names:
        k = scores[n].numel()
        out[n] = keep[offset : offset + k].reshape(scores[n].shape)
        offset += k
    return out


def global_magnitude_masks(model: nn.Module, target: float, exclude: Iterable[str] = ()) -> Masks:
    """Keep the ``1 - target`` largest-magnitude prunable weights, ranked over all layers."""
    w = weights_of(model, prunable_names(model, exclude))
    return masks_from_scores({n: t.abs() for n, t in w.items()}, target)


def mask_sparsity(masks: Mapping[str, torch.Tensor]) -> float:
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    return 1.0 - kept / total if total else 0.0


@torch.no_grad()
def mask_grads(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Zero the gradient of pruned weights, so momentum never revives them."""
    params = dict(model.named_parameters())
    for n, m in masks.items():
        g = params[n].grad
        if g is not None:
            g.mul_(m.to(g.dtype))


# ----------------------------------------------------------------------------------- training


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def make_optimizer(params: Iterable[torch.nn.Parameter], cfg: PruneConfig) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_schedule(
    opt: torch.optim.Optimizer, cfg: PruneConfig, total: int | None = None, start_step: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """The run's per-step scheduler: ``lr_at`` as a factor of ``cfg.lr``, from ``start_step``."""
    total = cfg.steps if total is None else total
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_factor(start_step + step, cfg, total))


def lr_factor(step: int, cfg: PruneConfig, total: int) -> float:
    """``lr_at / cfg.lr``, computed so that ``cfg.lr * factor`` equals ``lr_at`` exactly."""
    if cfg.lr_schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


class Trainer:
    """SGD steps on a model whose pruned weights stay zero: the loop the methods share.

    Why a small class around ``engine.train_one_epoch``: every method is "train with this
    mask, change the mask now and then"; the methods differ only in when and how the mask
    changes, which they decide between calls to ``run`` / ``step``. The trainer keeps what
    must survive those calls: the cycled batches, the optimizer, the lr schedule's position
    and the running loss reported every ``cfg.report_every`` steps.
    """

    def __init__(
        self,
        model: nn.Module,
        train_loader: DataLoader,
        cfg: PruneConfig,
        total_steps: int | None = None,
        report: Report | None = None,
        start_step: int = 0,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.batches = cycle(train_loader)
        self.device = device_of(model)
        self.opt = make_optimizer(model.parameters(), cfg)
        self.scheduler = lr_schedule(self.opt, cfg, total_steps, start_step)
        self.report = report
        self.step_count = start_step
        self.loss_sum = 0.0
        self.loss_n = 0
        self.masks: Masks | None = None

    def set_masks(self, masks: Masks | None) -> None:
        """Fix a mask (None = dense training); pruned weights are zeroed at once."""
        self.masks = masks
        if masks is not None:
            apply_masks(self.model, masks)

    def _hooks(self, before_update: Callable[[], None] | None) -> Hooks:
        masks = self.masks

        def before_step(loss: torch.Tensor) -> None:
            if before_update is not None:
                before_update()
            if masks is not None:
                mask_grads(self.model, masks)

        def after_step() -> None:
            if masks is not None:
                apply_masks(self.model, masks)

        return Hooks(before_step=before_step, after_step=after_step)

    def step(self, before_update: Callable[[], None] | None = None) -> None:
        """One SGD step with the current mask; ``before_update`` sees the dense gradients."""
        self.run(1, before_update)

    def run(self, n: int, before_update: Callable[[], None] | None = None) -> None:
        """``n`` SGD steps with the current mask, reporting every ``cfg.report_every`` steps."""
        hooks = self._hooks(before_update)
        while n > 0:
            chunk = min(n, self.cfg.report_every - self.step_count % self.cfg.report_every)
            stats = train_one_epoch(self.model, self.opt, self.batches, self.device,
                                    scheduler=self.scheduler, hooks=hooks, steps=chunk)
            n -= chunk
            self.step_count += chunk
            self.loss_sum += stats.loss_sum
            self.loss_n += stats.samples
            if self.report is not None and self.step_count % self.cfg.report_every == 0:
                self.report({"step": self.step_count, "train_loss": self.loss_sum / self.loss_n,
                             "sparsity": global_sparsity(self.model, self.cfg.exclude)})
                self.loss_sum, self.loss_n = 0.0, 0

    def reset_momentum(self) -> None:
        """Drop SGD momentum (used when weights come back after a mask change)."""
        self.opt.state.clear()


def finish(
    method: str,
    model: nn.Module,
    masks: Masks,
    val_loader: DataLoader | None,
    target: float,
    cfg: PruneConfig,
    start: float,
    steps: int,
    report: Report | None = None,
    **extra: Any,
) -> PruneResult:
    """Zero masked weights, measure sparsity and val accuracy, build the result."""
    apply_masks(model, masks)
    info: dict[str, Any] = {
        "method": method,
        "target": target,
        "sparsity": global_sparsity(model, cfg.exclude),
        "val_accuracy": (evaluate(model, val_loader, device_of(model))
                         if val_loader is not None else float("nan")),
        "steps": steps,
    }
    info.update(extra)
    info["seconds"] = time.perf_counter() - start
    if report is not None:
        keys = ("sparsity", "val_accuracy", "steps", "seconds")
        report({k: info[k] for k in keys} | {"done": True})
    return PruneResult(model=model, masks={n: m.clone() for n, m in masks.items()}, info=info)


def registered(name: str, work: Work, *, seeded: bool = False) -> PruneFn:
    """The registered ``prune`` of a method whose plain function is ``work``.

    Why one wrapper: every method runs the same frame around its own work (check the target,
    seed torch's RNG, time it, ``finish``), and its RNG seeding must come before the work in
    the same order for every method. ``seeded`` also passes the seed on to ``work`` (RigL
    draws its initial masks from it). ``work`` returns ``(model, masks, info)``; a method that
    does not run ``cfg.steps`` steps says how many in ``info["steps"]``.
    """

    def prune(
        model: nn.Module,
        train_loader: DataLoader,
        val_loader: DataLoader | None,
        target: float,
        cfg: PruneConfig,
        seed: int = 0,
        report: Report | None = None,
    ) -> PruneResult:
        target = check_target(target)
        torch.manual_seed(seed)
        start = time.perf_counter()
        if seeded:
            model, masks, info = work(model, train_loader, target, cfg, seed, report)
        else:
            model, masks, info = work(model, train_loader, target, cfg, report)
        steps = info.pop("steps", cfg.steps)
        return finish(name, model, masks, val_loader, target, cfg, start, steps, report, **info)

    prune.__name__ = prune.__qualname__ = f"prune_{name}"
    prune.__doc__ = (
        f"{name}: ``{work.__name__}`` from the dense ``model`` to global sparsity ``target`` "
        "(fraction); returns a ``PruneResult``."
    )
    return prune


def method_entry(
    name: str,
    fn: PruneFn,
    *,
    config: type[PruneConfig],
    needs: str = "dense",
    **meta: Any,
) -> Entry[PruneFn]:
    """A ``METHODS`` entry with the meta every caller reads (``needs``, ``config``) required
    by name. ``name`` must be a catalog method the upstream can make (``common.catalog``),
    which holds its label and family; the entry holds only what the module knows."""
    facts = catalog.CATALOG.method(name)
    if not facts.made_here or facts.family == catalog.DENSE:
        raise ValueError(f"pruning method {name!r}: the catalog lists it as "
                         f"{'the dense baseline' if facts.made_here else 'read from files only'}")
    if needs not in NEEDS:
        raise ValueError(f"pruning method {name!r}: needs must be one of {NEEDS}, got {needs!r}")
    if not (isinstance(config, type) and issubclass(config, PruneConfig)):
        raise ValueError(
            f"pruning method {name!r}: config must subclass PruneConfig, got {config!r}"
        )
    return Entry(
        name=name,
        fn=fn,
        meta={"needs": needs, "config": config, **meta},
    )
