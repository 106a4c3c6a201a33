"""The optimiser recipe shared by linear and full finetuning (docs/protocol.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.errors import BadInput


#: RandomResizedCrop's area range for full finetuning in the paper (torchvision's default).
PAPER_CROP_SCALE: tuple[float, float] = (0.08, 1.0)


@dataclass(frozen=True)
class Recipe:
    """SGD with momentum and step decay: the paper's finetuning recipe.

    The paper: momentum 0.9, weight decay 5e-4, batch 64, 150 epochs, lr divided by 10 at
    epochs 50 and 100. Tiny studies scale ``epochs`` and ``milestones`` down.
    """

    epochs: int = 150
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64
    milestones: tuple[int, ...] = (50, 100)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        # NaN passes every comparison below, so finiteness is checked first.
        for key in ("lr", "momentum", "weight_decay", "gamma"):
            value = getattr(self, key)
            if not math.isfinite(value):
                raise BadInput(f"{key} must be a finite number, got {value}")
        if self.epochs < 1:
            raise BadInput(f"epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0:
            raise BadInput(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise BadInput(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise BadInput(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.gamma <= 0:
            raise BadInput(f"gamma must be > 0, got {self.gamma}")
        if self.batch_size < 1:
            raise BadInput(f"batch_size must be >= 1, got {self.batch_size}")
        if list(self.milestones) != sorted(self.milestones):
            raise BadInput(f"milestones must be increasing, got {list(self.milestones)}")
