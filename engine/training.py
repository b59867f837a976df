"""The one supervised training loop (original model, Retrain, and the repair rounds of methods) and the
one function that runs a model to produce logits and features (`predict`).

Data stays where the model is: a run copies its uint8 images to the device once and builds batches by
index there (no DataLoader workers, no per-batch host transfers). On CUDA, bf16 autocast is used for the
forward pass. On CPU, channels_last was measured at 1.65x (training) and 1.8x (inference) for the small CNN on
the 2-core machine, and bf16 autocast is used for *training* where the CPU computes bf16 natively (AVX-512 BF16
or AMX; `native_cpu_bf16`): 1.8x over fp32 per training step on the 2-core Xeon with AMX (docs/recipe.md);
where bf16 would be emulated (e.g. an AVX2-only EPYC: 12x slower, measured) training stays fp32. Evaluation
(`predict`) stays fp32 on CPU, so every metric, attack and projection reads full-precision outputs.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import random
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.data import ImageDataset, augment, to_float
from engine.progress import ProgressCallback, Reporter, RunDiverged, StopCheck


@dataclass(frozen=True)
class TrainRecipe:
    """How the original model (and Retrain, with the same recipe) is trained."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.08            # peak of a one-cycle schedule (linear warm-up, cosine decay)
    warmup: float = 0.15        # share of steps spent warming up
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True        # random translation (+ flips where the dataset allows)
    translate: Optional[int] = None  # largest random shift in pixels (None = the dataset's default, 3 at 28 px)
    augment_until: float = 1.0  # share of epochs trained with augmentation (the rest on plain images)
    label_smoothing: float = 0.0  # of the default cross-entropy (a caller's loss_fn is used as given)
    ema_decay: float = 0.0      # per-step decay of an exponential moving average of the weights; 0 = off
    cpu_bf16: bool = False      # bf16 autocast on a CPU with native bf16 (`native_cpu_bf16`); CUDA always uses it

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("augment_until", "label_smoothing", "ema_decay"):
            if not 0 <= getattr(self, name) <= 1 or (name != "augment_until" and getattr(self, name) == 1):
                raise ValueError(f"{name} must be in [0, 1{']' if name == 'augment_until' else ')'}, "
                                 f"got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


# The small CNN's default recipe ("small-cnn"), chosen with `python -m scripts.bench_recipe` (docs/recipe.md has
# the commands and every figure; 2-core Xeon with AMX, quiet). Original model, 10,000 training images, test accuracy
# on the 2,000 test images, seeds 0 / 1 (/ 2):
#   classic (20 epochs, translate ±3 px + flips, fp32)   88.65 %           (the previous checkpoints)
#   classic in bf16 (20 epochs)                          89.30 / 88.20 %   bf16 costs no accuracy; 1.8x per step
#   10 epochs bf16: shifts + flips / flips / ±1 px       87.15 / 87.35, 89.00 / 89.35, 88.55 / 89.30 %
#   10 epochs bf16, no augmentation                      90.05 / 89.65 %
#   9 epochs bf16, no augmentation                       90.20 / 89.65 / 89.95 %
#   8 epochs bf16, no augmentation                       89.15 / 89.40 / 88.85 %   <- "small-cnn"
#   8 epochs bf16, flips only                            88.40 / 88.80 %
# Random shifts make a short schedule underfit; without them 8 epochs match the classic recipe. bf16 autocast is
# used only where the CPU has native bf16 (`native_cpu_bf16`): without it the recipe runs in fp32 (8 epochs,
# still 2.5x fewer steps). Label smoothing and EMA were within seed noise (docs/recipe.md) and are not used.
RECIPES = {
    "small-cnn": TrainRecipe(epochs=8, augment=False, cpu_bf16=True),   # the shipped checkpoints' recipe
    "small-cnn-8e": TrainRecipe(epochs=8, augment=False, cpu_bf16=True),  # the same, by a name that stays
    "small-cnn-classic": TrainRecipe(),  # the previous default: 20 epochs with shifts and flips, fp32 on CPU
    "resnet18": TrainRecipe(epochs=30, batch_size=256, lr=0.1, warmup=0.1, cpu_bf16=True),
}


# ------------------------------------------------------------------------------------------- devices
def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto" -> CUDA when present, else CPU; anything else is taken as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but no CUDA GPU is available")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    bf16 = ", bf16" if native_cpu_bf16() else ""
    return f"CPU ({torch.get_num_threads()} threads{bf16})"


@functools.lru_cache(maxsize=None)
def native_cpu_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX tiles), so CPU bf16 autocast is a speed-up.

    ``UNLEARNING_LAB_CPU_BF16=0`` turns CPU bf16 off everywhere (``=1`` forces it on, for tests of the path);
    without native support torch emulates bf16 on CPU, which was measured 12x *slower* than fp32 (docs/recipe.md).
    """
    forced = os.environ.get("UNLEARNING_LAB_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without the probes: stay on the safe side
        return False


def precision(device: torch.device, *, cpu_bf16: bool = True) -> str:
    """The compute precision `autocast` gives on ``device``: "bf16" or "fp32"."""
    if device.type == "cuda" or (device.type == "cpu" and cpu_bf16 and native_cpu_bf16()):
        return "bf16"
    return "fp32"


def autocast(device: torch.device, *, cpu_bf16: bool = True):
    """bf16 autocast on CUDA, and on a CPU with native bf16 when ``cpu_bf16`` (safe for these convnets: no loss
    scaling needed; losses are computed in fp32 from the logits); otherwise a no-op (fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision(device, cpu_bf16=cpu_bf16) == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def place(model: nn.Module, device: torch.device) -> nn.Module:
    """Move a model to a device in channels_last layout (in place; returns it)."""
    return model.to(device=device, memory_format=torch.channels_last)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU generator for batch order and augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------- batches
def batches(count: int, batch_size: int, generator: torch.Generator, *, shuffle: bool = True,
            drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Index batches over ``range(count)`` (CPU int64 tensors)."""
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    stop = count - count % batch_size if drop_last and count >= batch_size else count
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


class DeviceImages:
    """A subset of a dataset's images and labels copied once to a device, batched by index there."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, device: torch.device):
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.device = device

    @classmethod
    def from_indices(cls, dataset: ImageDataset, indices: np.ndarray, device: torch.device, *,
                     test: bool = False) -> "DeviceImages":
        index = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        images, labels = (dataset.test_images, dataset.test_labels) if test else (dataset.train_images, dataset.train_labels)
        return cls(images[index], labels[index], device)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor, *, hflip: bool | None = None, generator: torch.Generator | None = None,
              pad: int | None = None):
        """Float images in [0, 1] (augmented when ``hflip`` is not None: shifts of up to ``pad`` pixels)."""
        index = index.to(self.device)
        images = self.images[index]
        if hflip is not None:
            images = augment(images, hflip=hflip, generator=generator, pad=pad)
        return to_float(images).contiguous(memory_format=torch.channels_last), self.labels[index]


# --------------------------------------------------------------------------------------------- loops
def one_cycle(step: int, total: int, peak: float, warmup: float) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` of the steps, then cosine decay to 0."""
    warm = max(1, int(total * warmup))
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def check_finite(value: float, stage: str) -> float:
    if not math.isfinite(value):
        raise RunDiverged(f"{stage}: the loss became {value}; the run was stopped (try a smaller learning rate)")
    return value


def train_model(model: nn.Module, dataset: ImageDataset, indices: np.ndarray, recipe: TrainRecipe, *,
                device: torch.device, seed: int = 0, stage: str = "train",
                on_progress: Optional[ProgressCallback] = None, should_stop: Optional[StopCheck] = None,
                loss_fn: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None) -> nn.Module:
    """Train ``model`` in place with cross-entropy (or ``loss_fn(logits, labels)``) on ``indices``.

    Args:
        model: a model already on ``device`` that the caller owns (it is changed).
        dataset: the dataset the training-pool ``indices`` refer to.
        recipe: epochs, batch size, schedule, regularisation.
        seed: seeds batch order and augmentation (and, if the caller built the model after
            `seed_everything`, the initial weights).

    Returns:
        The trained model, in eval mode.
    """
    reporter = Reporter(on_progress, should_stop)
    generator = seed_everything(seed)
    data = DeviceImages.from_indices(dataset, indices, device)
    steps_per_epoch = math.ceil(len(data) / recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, nesterov=True,
                                weight_decay=recipe.weight_decay)
    if loss_fn is None:
        def loss_fn(logits, labels):
            return F.cross_entropy(logits, labels, label_smoothing=recipe.label_smoothing)
    augment_epochs = round(recipe.epochs * recipe.augment_until) if recipe.augment else 0
    average = WeightAverage(model, recipe.ema_decay) if recipe.ema_decay > 0 else None
    report_every = 1 if device.type == "cpu" else 25  # a loss read is a host sync on CUDA
    step = 0
    model.train()
    for epoch in range(recipe.epochs):
        hflip = dataset.hflip if epoch < augment_epochs else None
        for index in batches(len(data), recipe.batch_size, generator):
            for group in optimizer.param_groups:
                group["lr"] = one_cycle(step, total, recipe.lr, recipe.warmup)
            images, labels = data.batch(index, hflip=hflip, generator=generator, pad=recipe.translate)
            with autocast(device, cpu_bf16=recipe.cpu_bf16):
                loss = loss_fn(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average is not None:
                average.update(model)
            step += 1
            if step % report_every == 0 or step == total:
                reporter.step(stage, step, total, loss=check_finite(loss.item(), stage), epoch=epoch + 1)
    if average is not None:
        average.copy_to(model)
    model.eval()
    return model


class WeightAverage:
    """An exponential moving average of a model's parameters and BatchNorm statistics.

    The decay ramps up as (1 + step) / (10 + step) so that the first steps' random weights are
    forgotten quickly; integer buffers (BatchNorm's batch counter) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.steps = 0
        self.state = {name: value.detach().clone() for name, value in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                self.state[name].lerp_(value, 1 - decay)
            else:
                self.state[name].copy_(value)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.state)


@dataclass(frozen=True, eq=False)
class Outputs:
    """What a model produced on a set of images: logits (N, C) and penultimate features (N, F), float32."""

    logits: np.ndarray
    features: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(1)

    @property
    def probabilities(self) -> np.ndarray:
        shifted = self.logits - self.logits.max(1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(1, keepdims=True)


# Evaluation batch per device type. On the CPU a batch of 1,000 28 × 28 images is slower than a few hundred — its
# activations (tens of MB per layer) spill the caches: a whole `evaluate` (14,000 images) took 3.97 ± 0.51 s at
# 1,000 and 3.19 ± 0.16 s at 256, alternating in one process on the 2-core Xeon (7 December; outputs bit-identical
# at 256, 500 and 1,000, so every figure stays the same). A GPU wants large batches.
PREDICT_BATCH = {"cpu": 256}


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, *, device: torch.device, batch_size: Optional[int] = None,
            should_stop: Optional[StopCheck] = None) -> Outputs:
    """Run ``model`` (eval mode) on uint8 images (N, C, H, W); return logits and features as numpy.

    The model's mode is restored afterwards. This is the only place the engine runs a model for
    evaluation, so metrics, attacks and projections all see the same numbers. ``batch_size`` defaults to
    `PREDICT_BATCH` for the device's type (1,000 elsewhere).
    """
    batch_size = batch_size or PREDICT_BATCH.get(torch.device(device).type, 1000)
    was_training = model.training
    model.eval()
    reporter = Reporter(None, should_stop)
    logits, features = [], []
    try:
        for start in range(0, len(images), batch_size):
            reporter.check()
            batch = to_float(images[start:start + batch_size].to(device)).contiguous(memory_format=torch.channels_last)
            with autocast(device, cpu_bf16=False):
                feats = model.features(batch)
                out = model.head(feats)
            logits.append(out.float())
            features.append(feats.float())
    finally:
        model.train(was_training)
    if not logits:
        return Outputs(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))
    return Outputs(torch.cat(logits).cpu().numpy(), torch.cat(features).cpu().numpy())
