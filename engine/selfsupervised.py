"""The self-supervised setting of WSS-CL: an encoder trained without labels (SimCLR), a linear probe on
top, and WSS-CL applied to the pair (docs/method.md §2, last paragraph: stage 1 then acts on the probe's logits).

A small, honest version for the CPU: SimCLR (Chen et al. 2020, NT-Xent loss on two augmented views) for a
few epochs on the training set D with the same SmallCNN backbone, then a linear probe (the model's `head`)
fitted on frozen features of D with labels. The result has the usual `features`/`head` interface, so every
unlearning method runs on it unchanged:

    encoder = train_simclr(dataset, training_indices(dataset), device=cpu, epochs=3)
    model = fit_linear_probe(encoder, dataset, training_indices(dataset), device=cpu)
    outcome = run_unlearning("wsscl", model, dataset, split, device=cpu)

Notation: g = `model.features` (trained by SimCLR without labels), h = `model.head` (the probe), τ = `temperature`.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.data import ImageDataset, augment
from engine.methods.wsscl import positive_view
from engine.models import build_model, spec_for
from engine.progress import ProgressCallback, Reporter, StopCheck
from engine.training import DeviceImages, autocast, check_finite, one_cycle, place, seed_everything


def nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss: each view must pick its partner among the 2B − 1 other views. Shapes (B, D)."""
    z = F.normalize(torch.cat([first, second]).float(), dim=1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    batch = len(first)
    partner = torch.cat([torch.arange(batch, 2 * batch), torch.arange(batch)]).to(z.device)
    return F.cross_entropy(similarity, partner)


def simclr_view(images: torch.Tensor, *, hflip: bool, generator: torch.Generator) -> torch.Tensor:
    """One random view: translation (+ flip) then a random resized crop; uint8 in, float in [0, 1] out."""
    shifted = augment(images, hflip=hflip, generator=generator).float().div_(255)
    return positive_view(shifted, hflip=False, generator=generator)


def train_simclr(dataset: ImageDataset, indices: np.ndarray, *, device: torch.device, seed: int = 0,
                 architecture: str = "small-cnn", epochs: int = 3, batch_size: int = 256, lr: float = 0.05,
                 temperature: float = 0.5, on_progress: Optional[ProgressCallback] = None,
                 should_stop: Optional[StopCheck] = None) -> nn.Module:
    """A backbone trained with SimCLR on ``indices`` — labels are never read. Returns the model (eval mode)."""
    reporter = Reporter(on_progress, should_stop)
    generator = seed_everything(seed)
    model = place(build_model(spec_for(dataset, architecture)), device).train()
    projector = nn.Sequential(nn.Linear(model.feature_dim, 128), nn.ReLU(), nn.Linear(128, 64)).to(device)
    data = DeviceImages.from_indices(dataset, indices, device)
    parameters = list(model.parameters()) + list(projector.parameters())
    optimizer = torch.optim.SGD(parameters, lr=lr, momentum=0.9, weight_decay=5e-4)
    total = epochs * math.ceil(len(data) / batch_size)
    step = 0
    for _ in range(epochs):
        for index in torch.randperm(len(data), generator=generator).split(batch_size):
            if len(index) < 2:
                continue
            images = data.images[index.to(device)]
            views = [simclr_view(images, hflip=dataset.hflip, generator=generator) for _ in range(2)]
            for group in optimizer.param_groups:
                group["lr"] = one_cycle(step, total, lr, 0.1)
            with autocast(device):
                both = projector(model.features(torch.cat(views).contiguous(memory_format=torch.channels_last)))
                loss = nt_xent(*both.chunk(2), temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            reporter.step("simclr", step, total, loss=check_finite(loss.item(), "simclr"))
    return model.eval()


def fit_linear_probe(encoder: nn.Module, dataset: ImageDataset, indices: np.ndarray, *, device: torch.device,
                     seed: int = 0, epochs: int = 30, lr: float = 0.5,
                     on_progress: Optional[ProgressCallback] = None,
                     should_stop: Optional[StopCheck] = None) -> nn.Module:
    """Fit ``encoder.head`` on frozen features of ``indices`` (full-batch SGD on standardised features); returns the encoder."""
    reporter = Reporter(on_progress, should_stop)
    seed_everything(seed)
    index = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
    images = dataset.train_images[index]
    labels = dataset.train_labels[index].to(device)
    with torch.no_grad():
        encoder.eval()
        features = torch.cat([encoder.features(images[i:i + 1000].to(device).float().div(255)
                                               .contiguous(memory_format=torch.channels_last)).float()
                              for i in range(0, len(images), 1000)])
    mean, std = features.mean(0), features.std(0) + 1e-6
    probe = nn.Linear(features.shape[1], dataset.num_classes).to(device)
    optimizer = torch.optim.SGD(probe.parameters(), lr=lr, momentum=0.9)
    normalised = (features - mean) / std
    for step in range(1, epochs + 1):
        loss = F.cross_entropy(probe(normalised), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        reporter.step("linear probe", step, epochs, loss=check_finite(loss.item(), "linear probe"))
    with torch.no_grad():  # fold the feature standardisation into the head: h(g) = W (g − μ)/σ + b
        encoder.head.weight.copy_(probe.weight / std)
        encoder.head.bias.copy_(probe.bias - (probe.weight * mean / std).sum(1))
    return encoder.eval()
