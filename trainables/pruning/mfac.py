"""M-FAC (Frantar, Kurtic & Alistarh 2021): OBS pruning with a matrix-free inverse of the
empirical Fisher over the whole network.

The second-order method the paper's MobileNetV1 checkpoints were pruned with. Like WoodFisher
(``trainables.pruning.woodfisher``) it prunes the weights of lowest OBS statistic
``rho_q = w_q^2 / (2 [F^{-1}]_qq)`` and moves the kept weights to compensate, with the
empirical Fisher ``F = lambda I + (1/m) G^T G`` of m sampled gradients (the rows of G). What
M-FAC changes is the block: one block over every prunable weight, which WoodFisher's explicit
B x B block inverses cannot afford. Nothing d x d is ever formed: with the m x m matrix
``A = lambda m I + G G^T``, Woodbury gives ``F^{-1} v = (v - G^T A^{-1} G v) / lambda`` and
``diag(F^{-1}) = (1 - rowsum(G * (A^{-1} G))) / lambda``, O(m^2 d) in all (the inverse M-FAC's
static algorithm computes). With a set Q pruned at once, the OBS update uses M-FAC's
independent form ``delta_w = -F^{-1} v``, ``v_q = w_q / [F^{-1}]_qq`` on Q (the joint form
needs a |Q| x |Q| solve); the pruned weights are then set to exactly zero. Pruning happens in
``cfg.pruning_steps`` gradual steps on the cubic schedule, each followed by training, and ends
with a finetune, as WoodFisher's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from trainables.models.masks import prunable_names
from trainables.pruning.common import (
    PruneConfig,
    Report,
    Trainer,
    cubic_sparsity,
    mask_sparsity,
    masks_from_scores,
    method_entry,
    registered,
    weights_of,
)
from trainables.pruning.woodfisher import Blocks, sample_gradients


@dataclass(frozen=True)
class MFACConfig(PruneConfig):
    """M-FAC knobs on top of the shared budget.

    Args:
        fisher_samples: m, gradients in the Fisher estimate (M-FAC's point is that m can be
            large: the cost grows as m^2, not with a block's square).
        fisher_batch: examples averaged into each of the m gradients.
        damp: dampening, relative: ``lambda = damp * mean(diag of (1/m) G^T G)``.
        pruning_steps: gradual pruning steps (1 = one-shot), spread over ``prune_steps``.
    """

    fisher_samples: int = 128
    fisher_batch: int = 1
    damp: float = 0.1
    pruning_steps: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("fisher_samples", "fisher_batch", "pruning_steps"):
            if getattr(self, key) < 1:
                raise ValueError(f"MFACConfig.{key} must be >= 1, got {getattr(self, key)}")
        if self.damp <= 0:
            raise ValueError(f"MFACConfig.damp must be > 0, got {self.damp}")


class FisherInverse:
    """``F^{-1}`` of ``F = lam I + (1/m) G^T G`` for (m, d) gradients ``grads``, matrix-free."""

    def __init__(self, grads: torch.Tensor, lam: float) -> None:
        self.g = grads.to(torch.float64)
        self.lam = lam
        m = self.g.shape[0]
        gram = self.g @ self.g.T
        gram.diagonal().add_(lam * m)
        self.a_inv_g = torch.linalg.solve(gram, self.g)  # A^{-1} G, (m, d)

    def diag(self) -> torch.Tensor:
        """``diag(F^{-1})`` (d,)."""
        return (1.0 - (self.g * self.a_inv_g).sum(0)) / self.lam

    def times(self, v: torch.Tensor) -> torch.Tensor:
        """``F^{-1} v`` for a (d,) vector."""
        v = v.to(torch.float64)
        return (v - self.a_inv_g.T @ (self.g @ v)) / self.lam


@torch.no_grad()
def mfac_step(model: nn.Module, train_loader: DataLoader, sparsity: float, cfg: MFACConfig,
              names: list[str]) -> tuple[dict[str, torch.Tensor], dict]:
    """One M-FAC pruning step to global ``sparsity``, in place: Fisher, OBS selection over
    every prunable weight at once, the independent OBS update. Returns (masks, stats)."""
    flat = Blocks(model, names, sum(w.numel() for w in weights_of(model, names).values()))
    with torch.enable_grad():
        grads = sample_gradients(model, flat, train_loader, cfg.fisher_samples,
                                 cfg.fisher_batch)[:, 0, :]
    lam = cfg.damp * float((grads.to(torch.float64) ** 2).mean()) + 1e-12
    finv = FisherInverse(grads, lam)
    w = flat.weights()[0].cpu().to(torch.float64)
    diag = finv.diag()
    rho = w ** 2 / (2.0 * diag)
    masks = masks_from_scores(flat.split(rho.view(1, -1)), sparsity)
    magnitude = masks_from_scores({n: t.abs() for n, t in flat.params.items()}, sparsity)
    differs = sum(int((masks[n].cpu() != magnitude[n].cpu()).sum()) for n in names) // 2
    keep = torch.cat([masks[n].reshape(-1).cpu() for n in names])
    v = torch.where(keep, torch.zeros_like(w), w / diag)
    new = w - finv.times(v)
    new[~keep] = 0.0
    moved = float((new[keep] - w[keep]).abs().mean()) if keep.any() else 0.0
    for n, t in flat.split(new.view(1, -1)).items():
        flat.params[n].copy_(t.to(flat.params[n].dtype).to(flat.params[n].device))
    return masks, {"damp": lam, "differs_from_magnitude": differs, "mean_update": moved}


def mfac_prune(model: nn.Module, train_loader: DataLoader, target: float, cfg: MFACConfig,
               report: Report | None = None) -> tuple[nn.Module, dict, dict]:
    """Gradual M-FAC pruning in place; returns (model, masks, info)."""
    names = prunable_names(model, cfg.exclude)
    trainer = Trainer(model, train_loader, cfg, report=report)
    total, k = cfg.prune_steps, cfg.pruning_steps
    at = [int(round(i * total / k)) for i in range(k)]
    levels = [cubic_sparsity((i + 1) * total / k, total, target) for i in range(k)]
    steps_log, masks = [], None
    for i, (t, s) in enumerate(zip(at, levels)):
        masks, stats = mfac_step(model, train_loader, s, cfg, names)
        masks = {n: m.to(trainer.device) for n, m in masks.items()}
        trainer.set_masks(masks)
        trainer.reset_momentum()  # the OBS update moved the weights; old momentum is stale
        steps_log.append({"step": t, "sparsity": mask_sparsity(masks), **stats})
        trainer.run((at[i + 1] if i + 1 < k else cfg.steps) - t)
    return model, masks, {"pruning_log": steps_log}


# Collected into ``trainables.pruning.METHODS`` by the package.
ENTRIES = (method_entry("mfac", registered("mfac", mfac_prune), config=MFACConfig),)
