"""Architectures. Every model is f = h ∘ g: `features(x)` is g (penultimate features), `head` is h.

Models take float images in [0, 1], shape (B, C, H, W), and normalise internally with the dataset's
mean/std kept as buffers, so attributions live in pixel space and checkpoints are self-describing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model before loading its weights."""

    architecture: str = "small-cnn"
    in_channels: int = 1
    num_classes: int = 10
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelSpec":
        return cls(architecture=values["architecture"], in_channels=int(values["in_channels"]),
                   num_classes=int(values["num_classes"]), mean=tuple(values["mean"]), std=tuple(values["std"]))


class _Normalise(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """The CPU default: four 3x3 conv blocks, ~160k parameters, 128-d features.

    Pooling right after the first block halves the cost of everything after it (measured ~2x on the
    2-core machine) for a small loss in accuracy on 28x28 images.
    """

    feature_dim = 128

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.normalise = _Normalise(spec.mean, spec.std)
        self.block1 = _conv_bn(spec.in_channels, 32)
        self.block2 = _conv_bn(32, 64)
        self.block3 = _conv_bn(64, 96)
        self.block4 = _conv_bn(96, 128)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(self.feature_dim, spec.num_classes)

    @property
    def last_conv(self) -> nn.Module:
        """The layer Grad-CAM attributes to."""
        return self.block4

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.block1(self.normalise(x)))
        x = self.pool(self.block2(x))
        x = self.block4(self.block3(x))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 (3x3 stem, no max-pool), 512-d features: the GPU benchmark model (SalUn's)."""

    feature_dim = 512

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.normalise = _Normalise(spec.mean, spec.std)
        self.stem = nn.Sequential(nn.Conv2d(spec.in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(inplace=True))
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.head = nn.Linear(self.feature_dim, spec.num_classes)

    @property
    def last_conv(self) -> nn.Module:
        return self.layer4

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.normalise(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


ARCHITECTURES = {"small-cnn": SmallCNN, "resnet18": ResNet18}


def build_model(spec: ModelSpec) -> nn.Module:
    """A freshly initialised model for ``spec`` (seed torch beforehand for reproducible weights)."""
    if spec.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {spec.architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    model = ARCHITECTURES[spec.architecture](spec)
    model.spec = spec
    return model


def spec_for(dataset, architecture: str = "small-cnn") -> ModelSpec:
    """The model spec that fits a dataset's channels, classes and statistics."""
    return ModelSpec(architecture=architecture, in_channels=dataset.image_shape[0], num_classes=dataset.num_classes,
                     mean=tuple(round(m, 6) for m in dataset.mean), std=tuple(round(s, 6) for s in dataset.std))
