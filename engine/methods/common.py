"""What every unlearning method shares: config fields with UI metadata, the result type, and one
session object that owns the copy of the model, the seed, progress/cancel and the guided SGD round.

A method file is then only its losses and its schedule:

    session = Session("ft", model, dataset, split, config, device=device, seed=seed, ...)
    optimizer = session.sgd(config.lr, weight_decay=5e-4)
    session.train_round(session.retain, cross_entropy_loss, optimizer, stage="fine-tune", ...)
    return session.finish()

Notation (docs/method.md): D_r = `session.retain`, D_f = `session.forget`, θ = `session.model`'s
parameters, w = guidance weights applied through `engine.saliency.GuidedUpdate`.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.data import ImageDataset
from engine.progress import ProgressCallback, Reporter, StopCheck
from engine.saliency import GuidedUpdate, Scores
from engine.splits import DataSplit
from engine.training import RECIPES, DeviceImages, autocast, check_finite, place, seed_everything

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


# ----------------------------------------------------------------------------------------- configs
def option(default: Any, help: str, *, min: float | None = None, max: float | None = None,
           choices: tuple | None = None):
    """A config field whose metadata lets the UI build a form (bounds inclusive)."""
    return field(default=default, metadata={"min": min, "max": max, "help": help, "choices": choices})


@dataclass(frozen=True)
class ConfigField:
    """One field of a method config, as a form needs it."""

    name: str
    type: str          # "int", "float", "str" or "bool"
    default: Any
    min: float | None
    max: float | None
    help: str
    choices: tuple | None


@dataclass(frozen=True)
class MethodConfig:
    """Base of every method config: validates types, bounds and choices at construction.

    A subclass may set two plain class attributes (not fields), read generically by the registry:
    ``SETTINGS`` — per forget setting ("class" / "random" / "samples"), the defaults that differ from the fields';
    ``FAST`` — caps for the app's fast mode; ``SELF_SUPERVISED`` — what changes when the original is a
    self-supervised encoder plus a linear probe (`scripts/bench_selfsupervised.py`). All may name only the
    config's own fields (checked at import).
    """

    SETTINGS = {}
    FAST = {}
    SELF_SUPERVISED = {}

    def __post_init__(self):
        for item in dataclasses.fields(self):
            value, meta, kind = getattr(self, item.name), item.metadata, str(item.type)
            if kind == "bool":
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"{item.name} must be true or false, got {value!r}")
                object.__setattr__(self, item.name, bool(value))
                continue
            if kind in ("int", "float"):
                if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                    raise ValueError(f"{item.name} must be a number, got {value!r}")
                if not math.isfinite(float(value)):      # before int(): int(nan) has no useful message
                    raise ValueError(f"{item.name} must be finite, got {value!r}")
                if kind == "int" and float(value) != int(value):
                    raise ValueError(f"{item.name} must be a whole number, got {value!r}")
                value = int(value) if kind == "int" else float(value)
                if not math.isfinite(value):
                    raise ValueError(f"{item.name} must be finite, got {value!r}")
                object.__setattr__(self, item.name, value)
                if meta.get("min") is not None and value < meta["min"]:
                    raise ValueError(f"{item.name} must be ≥ {meta['min']}, got {value}")
                if meta.get("max") is not None and value > meta["max"]:
                    raise ValueError(f"{item.name} must be ≤ {meta['max']}, got {value}")
            if meta.get("choices") is not None and value not in meta["choices"]:
                raise ValueError(f"{item.name} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def config_fields(config_or_class) -> list[ConfigField]:
    """The fields of a method config (class or instance) with type, default, bounds, help and choices."""
    cls = config_or_class if isinstance(config_or_class, type) else type(config_or_class)
    rows = []
    for item in dataclasses.fields(cls):
        meta = item.metadata
        default = getattr(config_or_class, item.name) if not isinstance(config_or_class, type) else item.default
        rows.append(ConfigField(item.name, str(item.type), default, meta.get("min"), meta.get("max"),
                                meta.get("help", ""), meta.get("choices")))
    return rows


# ------------------------------------------------------------------------------------------ result
@dataclass(frozen=True, eq=False)
class UnlearnResult:
    """What a method returns. `seconds` is the RTE: wall-clock of the whole procedure (saliency included)."""

    model: nn.Module            # the unlearned copy, eval mode
    method: str
    config: dict
    seed: int
    seconds: float
    history: list = field(repr=False)   # [{"stage", "step", "total", "losses": {...}}]
    extras: dict = field(default_factory=dict, repr=False)


# ----------------------------------------------------------------------------------------- losses
def cross_entropy_loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor):
    loss = F.cross_entropy(model(images), labels)
    return loss, {}


def reset_weights(model: nn.Module) -> nn.Module:
    """Re-initialise every layer that knows how (conv, linear, batch norm incl. running stats)."""
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model


# ----------------------------------------------------------------------------------------- session
class Session:
    """One unlearning run: a private copy of the model, seeded randomness, progress, cancel, timing.

    The input model is deep-copied first and never touched again (not even its train/eval flag).
    """

    def __init__(self, method: str, model: nn.Module, dataset: ImageDataset, split: DataSplit, config: MethodConfig,
                 *, device: torch.device | str, seed: int = 0, on_progress: Optional[ProgressCallback] = None,
                 should_stop: Optional[StopCheck] = None):
        self.start = time.perf_counter()
        self.method, self.config, self.seed = method, config, int(seed)
        self.device = torch.device(device)
        self.dataset, self.split = dataset, split
        self.generator = seed_everything(self.seed)
        self.model = place(copy.deepcopy(model), self.device).train()
        self.reporter = Reporter(on_progress, should_stop)
        self.reporter.check()
        self.history: list[dict] = []
        self.extras: dict = {}
        self.report_every = 1 if self.device.type == "cpu" else 20  # a loss read is a host sync on CUDA
        self.hflip = dataset.hflip
        # rounds asked to augment do it as the original's recipe did (none for today's small-cnn recipe: a repair
        # on shifted images pulled RA/TA 3-6 points below a Retrain trained on plain ones, docs/recipe.md)
        architecture = getattr(getattr(model, "spec", None), "architecture", "small-cnn")
        self.recipe = RECIPES.get(architecture, RECIPES["small-cnn"])
        self.retain = DeviceImages.from_indices(dataset, split.retain, self.device)
        self.forget = DeviceImages.from_indices(dataset, split.forget, self.device)

    # -- optimisation
    def sgd(self, lr: float, *, momentum: float = 0.9, weight_decay: float = 0.0, params=None) -> torch.optim.SGD:
        """SGD over ``params`` (default: every weight of the model)."""
        params = self.model.parameters() if params is None else params
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def guided(self, weights: Optional[Scores]) -> GuidedUpdate:
        return GuidedUpdate(self.model, weights)

    def order(self, count: int, limit: int | None = None) -> torch.Tensor:
        order = torch.randperm(count, generator=self.generator)
        return order[:limit] if limit else order

    @staticmethod
    def steps(count: int, batch_size: int, limit: int | None = None) -> int:
        return math.ceil(min(count, limit or count) / batch_size)

    def log(self, stage: str, step: int, total: int, **losses: torch.Tensor | float) -> None:
        """Record and report losses every few steps (every step on CPU); always honour cancel."""
        if step % self.report_every == 0 or step == total:
            values = {name: check_finite(float(value), stage) for name, value in losses.items()}
            self.history.append({"stage": stage, "step": step, "total": total, "losses": values})
            self.reporter.step(stage, step, total, **values)
        else:
            self.reporter.check()

    def train_round(self, data: DeviceImages, loss_fn: LossFn, optimizer: torch.optim.Optimizer, *, stage: str,
                    batch_size: int, guided: Optional[GuidedUpdate] = None, augment: bool = False,
                    limit: int | None = None, step: int = 0, total: int | None = None,
                    lr_at: Optional[Callable[[int], float]] = None, frozen_statistics: bool = False,
                    max_grad_norm: float = 0.0) -> int:
        """One shuffled pass (of at most ``limit`` samples) of SGD on ``loss_fn``; returns the step count.

        ``augment`` augments the batches as the original's recipe does (a no-op when the recipe has none);
        ``guided`` scales every update by the guidance weights (w = 0 freezes a weight exactly);
        ``lr_at(step)`` sets the learning rate before each step; ``frozen_statistics`` runs the round in
        eval mode (batch norm uses and keeps its running statistics; gradients still flow);
        ``max_grad_norm`` > 0 clips the gradient's global norm before the (guided) step.
        """
        self.model.train(not frozen_statistics)
        guided = guided or GuidedUpdate(self.model, None)
        total = total or step + self.steps(len(data), batch_size, limit)
        order = self.order(len(data), limit)
        for start in range(0, len(order), batch_size):
            augmented = augment and self.recipe.augment
            images, labels = data.batch(order[start:start + batch_size], hflip=self.hflip if augmented else None,
                                        generator=self.generator, pad=self.recipe.translate)
            if lr_at is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
            with autocast(self.device):
                loss, parts = loss_fn(self.model, images, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_grad_norm)
            guided.step(optimizer)
            step += 1
            self.log(stage, step, total, loss=loss.detach(), **{k: v.detach() for k, v in parts.items()})
        self.model.train()
        return step

    def finish(self, model: nn.Module | None = None) -> UnlearnResult:
        model = (model or self.model).eval()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return UnlearnResult(model=model, method=self.method, config=self.config.to_dict(), seed=self.seed,
                             seconds=time.perf_counter() - self.start, history=self.history, extras=self.extras)


def retain_limit(retain_size: int, fraction: float) -> int | None:
    """How many retain samples one repair round uses (None = all)."""
    return None if fraction >= 1.0 else max(1, int(round(fraction * retain_size)))
