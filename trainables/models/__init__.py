"""Architectures by name: the paper's ImageNet backbones and a tiny ResNet for the laptop study.

Every architecture keeps torchvision's ResNet layer names (``conv1``, ``bn1``, ``layer1`` ...
``fc``) or declares its classifier name, so checkpoints, masks and ONNX export share one code
path whatever the size. An architecture's key, label and input size are the catalog's
(``common.catalog``); the registry adds its builder and classifier name. ``masks`` holds the
sparsity masks every pruned model carries.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn
from torchvision.models import resnet18, resnet34, resnet50
from torchvision.models.resnet import BasicBlock

from common import catalog
from trainables.registry import Registry

ARCHITECTURES: Registry[Callable[[int], nn.Module]] = Registry("architecture")


@ARCHITECTURES.register("resnet18", classifier="fc")
def build_resnet18(num_classes: int) -> nn.Module:
    return resnet18(weights=None, num_classes=num_classes)


@ARCHITECTURES.register("resnet34", classifier="fc")
def build_resnet34(num_classes: int) -> nn.Module:
    return resnet34(weights=None, num_classes=num_classes)


@ARCHITECTURES.register("resnet50", classifier="fc")
def build_resnet50(num_classes: int) -> nn.Module:
    return resnet50(weights=None, num_classes=num_classes)


class TinyResNet(nn.Module):
    """A ResNet with torchvision's layer names, sized for 32 px images and 2 CPU cores.

    Why not torchvision's ``ResNet``: its stage widths are fixed at 64..512, about 11M
    parameters; here the widths are arguments and the stem keeps the resolution.
    """

    def __init__(self, num_classes: int, widths: tuple[int, int, int, int] = (16, 32, 48, 64)):
        super().__init__()
        # Stride 2 at the stem, as torchvision's ResNet: a quarter of the compute of a stride-1
        # stem, which decides whether the laptop study fits in its time budget.
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        layers = []
        in_planes = widths[0]
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or in_planes != planes:
                downsample = nn.Sequential(
                    nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )
            layers.append(nn.Sequential(BasicBlock(in_planes, planes, stride, downsample)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@ARCHITECTURES.register("resnet_tiny", classifier="fc")
def build_resnet_tiny(num_classes: int) -> nn.Module:
    return TinyResNet(num_classes)


def _dw_block(inp: int, out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.ReLU(inplace=True),
        nn.Conv2d(inp, out, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 (Howard et al. 2017); torchvision has only V2/V3.

    A stem convolution, then depthwise-separable blocks (``_dw_block``) of ``cfg``'s (width,
    stride), all under ``features``, average pooling and ``fc``. The defaults are the paper's
    network (224 px, 4.2M parameters); ``mobilenet_tiny`` is the same shape at 32 px.
    """

    CFG = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [
        (1024, 2),
        (1024, 1),
    ]

    def __init__(self, num_classes: int, stem: int = 32,
                 cfg: list[tuple[int, int]] | None = None) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem),
                nn.ReLU(inplace=True)
            )
        ]
        inp = stem
        for out, stride in self.CFG if cfg is None else cfg:
            blocks.append(_dw_block(inp, out, stride))
            inp = out
        self.features = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inp, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


@ARCHITECTURES.register("mobilenet_v1", classifier="fc")
def build_mobilenet_v1(num_classes: int) -> nn.Module:
    return MobileNetV1(num_classes)


# The tiny study's MobileNet: the paper's shape (stride-2 stem, depthwise-separable blocks
# doubling the width at each stride 2) for 32 px images, with about a quarter of resnet_tiny's
# prunable weights (the paper's MobileNetV1 has a sixth of ResNet50's).
TINY_MOBILENET = [(32, 1), (64, 2), (64, 1), (96, 2), (96, 1)]


@ARCHITECTURES.register("mobilenet_tiny", classifier="fc")
def build_mobilenet_tiny(num_classes: int) -> nn.Module:
    return MobileNetV1(num_classes, stem=16, cfg=TINY_MOBILENET)


def build_model(arch: str, num_classes: int) -> nn.Module:
    """A freshly initialised model of a registered architecture."""
    return ARCHITECTURES.get(arch).fn(num_classes)


def classifier_name(arch: str) -> str:
    return ARCHITECTURES.get(arch).meta["classifier"]


def input_size(arch: str) -> int:
    """The image side ``arch`` is built for (``common.catalog``)."""
    ARCHITECTURES.get(arch)  # an unknown name is refused by the registry, listing the known
    return catalog.CATALOG.arch(arch).input_size


def feature_dim(model: nn.Module, arch: str) -> int:
    """Width of the penultimate layer: the linear head's input."""
    return getattr(model, classifier_name(arch)).in_features


def backbone(model: nn.Module, arch: str) -> nn.Module:
    """A copy of ``model`` whose classifier is the identity: outputs penultimate features."""
    net = copy.deepcopy(model)
    setattr(net, classifier_name(arch), nn.Identity())
    return net


def replace_classifier(model: nn.Module, arch: str, num_classes: int) -> nn.Module:
    """Swap in a new dense classifier (Kaiming-uniform, nn.Linear's default init)."""
    old = getattr(model, classifier_name(arch))
    setattr(model, classifier_name(arch), nn.Linear(old.in_features, num_classes))
    return model
