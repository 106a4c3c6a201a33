"""Checkpoint files of every format, written by the tests from resnet_tiny with a known
magnitude sparsity, and LTH tickets; shared by the checkpoint tests and the tests of the
stages that read checkpoints.

Full-size layouts (resnet18/50, mobilenet_v1) use stride-0 expanded tensors, which torch.save
stores as one element each, so their files stay a few kilobytes.
"""

from __future__ import annotations

import dataclasses
import re

import torch
from torch import nn

from trainables import checkpoints as ck
from trainables import models
from trainables.checkpoints.fitting import arch_shapes
from trainables.models import masks as masks_lib

ARCH = "resnet_tiny"
NUM_CLASSES = 10
FRACTION = 0.8


def pruned_tiny(seed: int = 0, fraction: float = FRACTION, num_classes: int = NUM_CLASSES):
    """resnet_tiny with the smallest-|w| ``int(fraction * numel)`` entries of every prunable
    weight set to zero; returns (model, zeros, total) counted by hand."""
    torch.manual_seed(seed)
    model = models.build_model(ARCH, num_classes)
    zeros = total = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in masks_lib.prunable_names(model):
                k = int(fraction * p.numel())
                p.view(-1)[p.abs().flatten().argsort()[:k]] = 0.0
                zeros += k
                total += p.numel()
    return model, zeros, total


def fake_state_dict(arch: str, value: float = 0.5) -> dict[str, torch.Tensor]:
    """A full state dict of ``arch`` (1000 classes) whose tensors are stride-0 expansions."""
    with torch.device("meta"):
        template = models.build_model(arch, 1000).state_dict()
    return {k: torch.full((), value, dtype=v.dtype).expand(v.shape) for k, v in template.items()}


def assert_same_weights(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


# ---- one sample writer per layout ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sample:
    """What ``load_checkpoint`` must give back for a file a sample writer wrote."""

    state_dict: dict[str, torch.Tensor]  # torchvision names, masks applied
    arch: str
    upstream_dataset: str | None
    sparsity: float  # percent, counted by hand when the file was built
    # the weights the file masks (a ticket: its convolutions); None: every prunable weight
    masked: tuple[str, ...] | None = None


def _tiny_sample(model: nn.Module, zeros: int, total: int, dataset: str | None) -> Sample:
    return Sample(dict(model.state_dict()), ARCH, dataset, 100.0 * zeros / total)


def write_reference(path) -> Sample:
    model, zeros, total = pruned_tiny()
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    return _tiny_sample(model, zeros, total, "imagenet")


def write_reference_wrapped_module(path) -> Sample:
    model, zeros, total = pruned_tiny()
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet", wrapped=True, module_prefix=True)
    return _tiny_sample(model, zeros, total, "imagenet")


def write_sparseml(path) -> Sample:
    model, zeros, total = pruned_tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sd = model.state_dict()
    torch.save(
        {"state_dict": sd, "epoch": 7, "arch_key": ARCH, "optimizer": opt.state_dict()}, path
    )
    return _tiny_sample(model, zeros, total, None)


def write_torchvision(path) -> Sample:
    model, zeros, total = pruned_tiny()
    torch.save(model.state_dict(), path)  # no arch in the file: inferred from keys and shapes
    return _tiny_sample(model, zeros, total, None)


def _rigl_tf_name(key: str) -> str:
    """The reference's ResnetTF port name of a torchvision resnet50 key."""
    key = re.sub(r"^conv1\.", "initial_conv.conv.", key)
    key = re.sub(r"^bn1\.", "initial_conv.bn.", key)
    key = re.sub(r"^(layer\d)\.(\d+)\.downsample\.0\.", r"\1.block.\2.shortcut.conv.", key)
    key = re.sub(r"^(layer\d)\.(\d+)\.downsample\.1\.", r"\1.block.\2.shortcut.bn.", key)
    key = re.sub(r"^(layer\d)\.(\d+)\.conv(\d)\.", r"\1.block.\2.conv\3.conv.", key)
    return re.sub(r"^(layer\d)\.(\d+)\.bn(\d)\.", r"\1.block.\2.conv\3.bn.", key)


def write_rigl_tf_port(path) -> Sample:
    """resnet50 under TF-port names; the last block's convolutions are all zero."""
    sd = fake_state_dict("resnet50")
    prunable = ck.prunable_weight_names(sd)
    zeroed = [n for n in prunable if n.startswith("layer4.2.conv")]
    for n in zeroed:
        sd[n] = torch.zeros(()).expand(sd[n].shape)
    zeros = sum(sd[n].numel() for n in zeroed)
    total = sum(sd[n].numel() for n in prunable)
    torch.save(
        {
            "model_config": {"arch": "resnet50_rigl", "dataset": "imagenet"},
            "model_state_dict": {f"module.{_rigl_tf_name(k)}": v for k, v in sd.items()},
        },
        path,
    )
    return Sample(sd, "resnet50", "imagenet", 100.0 * zeros / total)


# ---- the paper's MobileNetV1 layouts, as the reference's three MobileNet classes name them ----


def mobilenet_sd() -> tuple[dict[str, torch.Tensor], float]:
    """mobilenet_v1 (1000 classes) with its last pointwise convolution all zero, and the
    sparsity that gives (percent, over prunable weights)."""
    sd = fake_state_dict("mobilenet_v1")
    sd["features.13.3.weight"] = torch.zeros(()).expand(sd["features.13.3.weight"].shape)
    prunable = ck.prunable_weight_names(sd)
    total = sum(sd[n].numel() for n in prunable)
    return sd, 100.0 * sd["features.13.3.weight"].numel() / total


def as_model_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {re.sub(r"^features\.", "model.", k): v for k, v in sd.items()}


def write_mobilenet_gmp_reference(path) -> Sample:
    """GMP (and dense) MobileNet as the reference converted them: model_config arch
    'mobilenet', Distiller's 'model.N' names, plain layers."""
    sd, sparsity = mobilenet_sd()
    ck.save_reference_checkpoint(path, as_model_prefix(sd), "mobilenet", "imagenet")
    return Sample(sd, "mobilenet_v1", "imagenet", sparsity)


def write_mobilenet_acdc_wrapped(path) -> Sample:
    """AC/DC MobileNet: the same names, layers wrapped with their masks, DataParallel prefix."""
    sd, sparsity = mobilenet_sd()
    ck.save_reference_checkpoint(path, as_model_prefix(sd), "mobilenet", "imagenet",
                                 wrapped=True, module_prefix=True)
    return Sample(sd, "mobilenet_v1", "imagenet", sparsity)


def write_mobilenet_mfac(path) -> Sample:
    """M-FAC MobileNet as its training code saves it: a 'state_dict' with 'module.model.N'
    names and no architecture named anywhere."""
    sd, sparsity = mobilenet_sd()
    torch.save({"epoch": 100, "state_dict": {f"module.{k}": v
                                             for k, v in as_model_prefix(sd).items()}}, path)
    return Sample(sd, "mobilenet_v1", None, sparsity)


def write_mobilenet_str(path) -> Sample:
    """STR MobileNet (reference arch 'mobilenet_str'): the classifier a bias-free 1x1
    convolution, and the stem still dense with its learned threshold beside it."""
    sd, _ = mobilenet_sd()
    torch.manual_seed(0)
    stem = torch.randn(32, 3, 3, 3)
    threshold = torch.tensor([[0.0]])  # sigmoid(0) = 0.5: |w| <= 0.5 becomes zero
    fc = torch.randn(1000, 1024)
    raw = as_model_prefix({**sd, "features.0.0.weight": stem,
                            "fc.weight": fc.reshape(1000, 1024, 1, 1)})
    del raw["fc.bias"]
    raw["model.0.0.sparseThreshold"] = threshold
    torch.save({"model_config": {"arch": "mobilenet_str", "dataset": "imagenet"},
                "model_state_dict": raw}, path)
    want = dict(sd)
    want["features.0.0.weight"] = torch.sign(stem) * torch.relu(stem.abs() - 0.5)
    want["fc.weight"], want["fc.bias"] = fc, torch.zeros(1000)
    prunable = ck.prunable_weight_names(want)
    zeros = sum(int((want[n] == 0).sum()) for n in prunable)
    total = sum(want[n].numel() for n in prunable)
    return Sample(want, "mobilenet_v1", "imagenet", 100.0 * zeros / total)


def amc_name(key: str) -> str:
    key = re.sub(r"^features\.0\.", "conv1.", key)
    key = re.sub(r"^features\.(\d+)\.", lambda m: f"features.{int(m[1]) - 1}.", key)
    return re.sub(r"^fc\.", "classifier.0.", key)


def write_mobilenet_amc(path) -> Sample:
    """AMC MobileNet (reference arch 'mobilenet_amc'): conv1, features.I, classifier.0."""
    sd, sparsity = mobilenet_sd()
    torch.save({"model_config": {"arch": "mobilenet_amc", "dataset": "imagenet"},
                "model_state_dict": {amc_name(k): v for k, v in sd.items()}}, path)
    return Sample(sd, "mobilenet_v1", "imagenet", sparsity)


def write_lth_ticket(path) -> Sample:
    """A lottery ticket as Chen et al. save one: torch.nn.utils.prune on the convolutions
    (X.weight_orig + X.weight_mask), the classifier left dense."""
    from torch.nn.utils import prune

    torch.manual_seed(0)
    model = models.build_model(ARCH, NUM_CLASSES)
    convs = [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d)]
    prune.global_unstructured(convs, pruning_method=prune.L1Unstructured, amount=0.8)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    for m, name in convs:
        prune.remove(m, name)
    sd = dict(model.state_dict())
    masked = tuple(n for n in ck.prunable_weight_names(sd) if sd[n].dim() == 4)
    zeros = sum(int((sd[n] == 0).sum()) for n in masked)
    # sparsity over the layers the ticket masks, as its authors count it (fc stays dense)
    return Sample(sd, ARCH, None, 100.0 * zeros / sum(sd[n].numel() for n in masked), masked)


# Every format's sample writers; a registered format missing here fails the contract test.
FORMAT_SAMPLES = {
    "rigl_tf_port": [write_rigl_tf_port],
    "mobilenet_model": [write_mobilenet_gmp_reference, write_mobilenet_acdc_wrapped,
                        write_mobilenet_mfac, write_mobilenet_str],
    "mobilenet_amc": [write_mobilenet_amc],
    "lth_ticket": [write_lth_ticket],
    "reference": [write_reference, write_reference_wrapped_module],
    "sparseml": [write_sparseml],
    "torchvision": [write_torchvision],
}


def write_ticket_masks(path, fraction: float = 0.8) -> dict[str, torch.Tensor]:
    """A ticket of masks alone (Chen et al.'s mask dicts): convolutions only, as floats."""
    torch.manual_seed(1)
    masks = {}
    for name, shape in arch_shapes(ARCH).items():
        if name.endswith(".weight") and len(shape) == 4:
            m = torch.ones(shape)
            m.view(-1)[torch.randperm(m.numel())[: int(fraction * m.numel())]] = 0
            masks[name[: -len(".weight")] + ".weight_mask"] = m
    torch.save({f"module.{k}": v for k, v in masks.items()}, path)
    return masks


@dataclasses.dataclass(frozen=True)
class WeightTicket:
    """A ticket with weights, built by hand: what LTH-T must read back from it."""

    orig: dict[str, torch.Tensor]  # X.weight_orig of every convolution
    masks: dict[str, torch.Tensor]  # X.weight (clean name) -> 0/1 float mask
    others: dict[str, torch.Tensor]  # every other tensor of the file (BatchNorm, fc)
    sparsity: float  # percent over the convolutions, counted here


def write_weight_ticket(path, fraction: float = 0.8, seed: int = 3) -> WeightTicket:
    """A ticket as torch.nn.utils.prune saves one (Chen et al.'s, under DataParallel): every
    convolution as ``X.weight_orig`` + ``X.weight_mask`` (exactly ``int(fraction * numel)``
    zeros), the classifier dense, BatchNorm statistics of its own (not a fresh model's)."""
    g = torch.Generator().manual_seed(seed)
    orig, masks, others, zeros, total = {}, {}, {}, 0, 0
    for name, shape in arch_shapes(ARCH).items():
        if name.endswith(".weight") and len(shape) == 4:
            orig[name] = torch.randn(shape, generator=g) + 3.0  # never zero
            m = torch.ones(shape)
            k = int(fraction * m.numel())
            m.view(-1)[torch.randperm(m.numel(), generator=g)[:k]] = 0
            masks[name], zeros, total = m, zeros + k, total + m.numel()
        elif name.startswith("fc."):
            others[name] = torch.randn((NUM_CLASSES, *shape[1:]), generator=g)
        elif name.endswith("num_batches_tracked"):
            others[name] = torch.tensor(7)
        else:
            others[name] = torch.rand(shape, generator=g) + 0.5
    sd = {**others, **{n[: -len(".weight")] + ".weight_orig": w for n, w in orig.items()},
          **{n[: -len(".weight")] + ".weight_mask": m for n, m in masks.items()}}
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    return WeightTicket(orig, masks, others, 100.0 * zeros / total)
