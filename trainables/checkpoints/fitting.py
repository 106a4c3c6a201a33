"""Fitting a state dict to a registered architecture: the reference's architecture names,
the keys and shapes a model of an architecture has, and what does not fit."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch

from common.errors import BadInput
from trainables import models

# Architecture names of the reference study's model_config (and SparseML's arch_key) that
# map onto a registered architecture.
ARCH_ALIASES: dict[str, str] = {
    "resnet50_torch": "resnet50",
    "resnet50_str": "resnet50",
    "resnet50_rigl": "resnet50",
    "mobilenet": "mobilenet_v1",
    "mobilenet_str": "mobilenet_v1",  # the reference's layout, classifier a 1x1 convolution
    "mobilenet_amc": "mobilenet_v1",  # AMC's layout (conv1, features, classifier)
}
# Reference architectures whose key layout has no mapping here, with why.
UNSUPPORTED_ARCHS: dict[str, str] = {}


def resolve_arch(name: str, source: str) -> str:
    """A registered architecture name for ``name`` (registered or a known reference alias).

    Args:
        name: the name as given.
        source: who gave it, for the error message (e.g. "file x.pt declares").
    """
    if name in models.ARCHITECTURES:
        return name
    if name in ARCH_ALIASES:
        return ARCH_ALIASES[name]
    if name in UNSUPPORTED_ARCHS:
        raise BadInput(f"{source} architecture {name!r}: {UNSUPPORTED_ARCHS[name]}")
    raise BadInput(
        f"{source} architecture {name!r}, which is not registered; known: "
        f"{', '.join(models.ARCHITECTURES.names())}; reference names understood: "
        f"{', '.join(f'{k}->{v}' for k, v in ARCH_ALIASES.items())}"
    )


@functools.lru_cache(maxsize=None)
def arch_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an architecture's state dict, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = models.build_model(arch, 1)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def fit_problems(
    sd: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], classifier: str
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, shape mismatches) of ``sd`` against an architecture's shapes.

    The classifier may have any number of outputs, but its input width must fit. A missing
    BatchNorm ``num_batches_tracked`` counter is not a problem (older files lack it).
    """
    cls_prefix = f"{classifier}."
    missing = [
        k
        for k in expected
        if k not in sd and not k.startswith(cls_prefix) and not k.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in sd if k not in expected]
    mismatched = []
    for k, v in sd.items():
        if k not in expected:
            continue
        got, want = tuple(v.shape), expected[k]
        if k.startswith(cls_prefix):
            ok = len(got) == len(want) and got[1:] == want[1:]
        else:
            ok = got == want
        if not ok:
            mismatched.append(f"{k}: checkpoint {list(got)} vs model {list(want)}")
    return missing, unexpected, mismatched


def raise_if_unfit(sd: Mapping[str, torch.Tensor], arch: str, path: str) -> None:
    """Refuse a state dict that does not fit ``arch``, naming a few keys of each problem."""
    missing, unexpected, mismatched = fit_problems(sd, arch_shapes(arch),
                                                   models.classifier_name(arch))
    if not (missing or unexpected or mismatched):
        return

    def few(items: list[str]) -> str:
        shown = "; ".join(items[:5])
        return shown + (f"; ... {len(items) - 5} more" if len(items) > 5 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({few(unexpected)})")
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatches ({few(mismatched)})")
    raise BadInput(
        f"checkpoint {path} does not fit architecture {arch!r}: " + "; ".join(parts)
    )


def infer_arch(sd: Mapping[str, torch.Tensor]) -> str | None:
    """The one registered architecture whose keys and shapes the state dict matches."""
    fits = [
        arch
        for arch in models.ARCHITECTURES.names()
        if not any(fit_problems(sd, arch_shapes(arch), models.classifier_name(arch)))
    ]
    return fits[0] if len(fits) == 1 else None
