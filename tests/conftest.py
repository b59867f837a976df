"""Fixtures shared by several test modules (pytest finds them here without an import)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine import ForgetSpec, make_split
from engine.data import _make
from engine.models import ModelSpec


class TinyNet(nn.Module):
    """The SmallCNN interface (features + head, float images in [0, 1]) at a fraction of the cost."""

    feature_dim = 8

    def __init__(self, classes: int = 4):
        super().__init__()
        self.spec = ModelSpec(architecture="tiny", in_channels=1, num_classes=classes)
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.ReLU())
        self.project = nn.Linear(4, self.feature_dim)
        self.head = nn.Linear(self.feature_dim, classes)

    def features(self, x):
        return torch.relu(self.project(self.conv(x - 0.5).mean((2, 3))))

    def forward(self, x):
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def tiny():
    """(dataset, split, model): 160 synthetic 12×12 images in 4 classes, class 1 forgotten, an untrained TinyNet."""
    rng = np.random.default_rng(0)
    labels = np.arange(160) % 4
    images = (rng.integers(0, 120, (160, 12, 12)) + labels[:, None, None] * 40).astype(np.uint8)
    dataset = _make("tiny", ("a", "b", "c", "d"), images, labels, images[:40], labels[:40], hflip=True,
                    validation_size=20, source="synthetic")
    split = make_split(dataset, ForgetSpec(classes=(1,)))
    torch.manual_seed(0)
    return dataset, split, TinyNet()
