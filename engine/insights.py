"""One call for the app: every insight of a finished run as plain arrays (`compute_insights` -> `Insights`).

Stages, in order (progress stage names "insights · <part>"):
1. outputs      `training.predict` of each model on one sample: the projection sample of the training set
                (≤ `max_points`, every forget sample when it fits) and the held-out test images.
2. saliency     SalUn's |∇θ| at θ_o on D_f and on a comparison forget set (class A vs class B).
3. weights      per-layer 2-D maps and the per-layer summary (`engine.weight_maps`).
4. attributions IG, Grad-CAM and gradient saliency of chosen images under every model (`engine.attribution`).
5. features     the shared 2-D UMAP frame and the separation figures (`engine.projection`).
6. privacy      threshold attacks and the worst-case score (`engine.attacks`).

Caching: model outputs, saliency scores and the original model's UMAP fit are kept in an `InsightsCache`
keyed by a fingerprint of the model's weights and the sample ids, so a second run on the same original
model and forget set pays only for the unlearned model. Give the cache a folder to keep it across
processes (plain .npz files, no pickles).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from engine.attacks import PrivacyAttacks, run_attacks
from engine.attribution import ATTRIBUTION_METHODS, Attributions, default_attribution_ids, explain, model_attributions
from engine.checkpoints import write_json_atomic
from engine.data import ImageDataset
from engine.progress import ProgressCallback, Reporter, StopCheck
from engine.projection import MAX_POINTS, FeatureSpace, Projection, fit_projection, project_features, stratified_sample
from engine.saliency import saliency_scores
from engine.splits import DataSplit, ForgetSpec
from engine.training import predict
from engine.weight_maps import WeightMaps, comparison_ids, map_weights

STAGES = ("outputs", "saliency", "weights", "attributions", "features", "privacy")
CACHE_VERSION = "v1"  # part of every cache key: bump it when what is cached changes meaning


@dataclass(frozen=True)
class InsightsConfig:
    """What to compute. The defaults fit the 2-core CPU budget (all insights ≲ 15 s on fashion-mini)."""

    max_points: int = MAX_POINTS   # projection sample; UMAP slows down sharply above 4,096 points
    max_test: int = 2000           # test images used as non-members (a seeded subset beyond this)
    sparsity: float = 0.5          # top share of weights in the hard mask (SalUn default)
    saliency_loss: str = "ce"      # "ce" (SalUn) or "kl_uniform" (WSS-CL's forgetting loss)
    attribution_count: int = 8     # images explained when none are chosen: ¾ forget, ¼ retain
    attribution_steps: int = 32    # Integrated Gradients steps
    max_side: int = 256            # weight maps are block-averaged beyond this many rows/columns

    def __post_init__(self):
        if not 2 <= self.max_points <= 4096:
            raise ValueError(f"max_points must lie in [2, 4096], got {self.max_points}")
        if not 0 < self.sparsity <= 1:
            raise ValueError(f"sparsity must lie in (0, 1], got {self.sparsity}")
        if self.attribution_count < 1 or self.attribution_steps < 1 or self.max_test < 1:
            raise ValueError("attribution_count, attribution_steps and max_test must be ≥ 1")


@dataclass(frozen=True, eq=False)
class Insights:
    """Everything the app draws for one run. Plain arrays; `save`/`load` to one .npz + one .json."""

    dataset: str
    forget_description: str
    models: tuple[str, ...]          # ("original", "unlearned") or ("original", "unlearned", "retrained")
    weights: WeightMaps
    attributions: Attributions
    features: FeatureSpace
    privacy: PrivacyAttacks
    seconds: dict = field(default_factory=dict)       # per stage, and "total"
    fingerprints: dict = field(default_factory=dict)  # model name -> sha1 of its weights
    config: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (everything else); returns the .npz path."""
        arrays: dict[str, np.ndarray] = {}
        layout = _flatten(self, "insights", arrays)
        base = Path(path).with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(base.with_name(base.name + ".tmp.npz"), **arrays)
        base.with_name(base.name + ".tmp.npz").replace(base.with_suffix(".npz"))
        write_json_atomic(base.with_suffix(".json"), {"format": 1, "layout": layout}, overwrite=True)
        return base.with_suffix(".npz")

    @classmethod
    def load(cls, path: str | Path) -> "Insights":
        base = Path(path).with_suffix("")
        layout = json.loads(base.with_suffix(".json").read_text())["layout"]
        with np.load(base.with_suffix(".npz"), allow_pickle=False) as stored:
            return _unflatten(layout, {name: stored[name] for name in stored.files})


# A frozen dataclass tree <-> (arrays for the .npz, a JSON layout naming where each array goes).
def _flatten(value, name: str, arrays: dict):
    if is_dataclass(value):
        return {"__class__": type(value).__name__,
                "fields": {f.name: _flatten(getattr(value, f.name), f"{name}.{f.name}", arrays) for f in fields(value)}}
    if isinstance(value, np.ndarray):
        arrays[name] = value
        return {"__array__": name}
    if isinstance(value, (tuple, list)):
        return {"__tuple__": [_flatten(item, f"{name}.{i}", arrays) for i, item in enumerate(value)]}
    if isinstance(value, dict):
        return {"__dict__": {str(k): _flatten(v, f"{name}.{k}", arrays) for k, v in value.items()}}
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


def _unflatten(layout, arrays: dict):
    if isinstance(layout, dict) and "__class__" in layout:
        return _CLASSES[layout["__class__"]](**{k: _unflatten(v, arrays) for k, v in layout["fields"].items()})
    if isinstance(layout, dict) and "__array__" in layout:
        return arrays[layout["__array__"]]
    if isinstance(layout, dict) and "__tuple__" in layout:
        return tuple(_unflatten(item, arrays) for item in layout["__tuple__"])
    if isinstance(layout, dict) and "__dict__" in layout:
        return {k: _unflatten(v, arrays) for k, v in layout["__dict__"].items()}
    return layout


_CLASSES = {cls.__name__: cls for cls in (Insights, WeightMaps, Attributions, FeatureSpace, PrivacyAttacks)}


class InsightsCache:
    """A small LRU of dicts of numpy arrays, optionally mirrored in a folder (one .npz per key).

    Thread-safe (one lock), so one cache can serve every user's worker thread. Values are shared: never
    mutate what `get` returns.
    """

    def __init__(self, folder: str | Path | None = None, capacity: int = 64):
        self.folder = Path(folder) if folder is not None else None
        self.capacity = capacity
        self.memory: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> Optional[dict[str, np.ndarray]]:
        with self.lock:
            if key in self.memory:
                self.memory.move_to_end(key)
                return self.memory[key]
        if self.folder is not None and (self.folder / f"{key}.npz").is_file():
            try:
                with np.load(self.folder / f"{key}.npz", allow_pickle=False) as stored:
                    value = {name: stored[name] for name in stored.files}
            except (OSError, ValueError):  # a torn or foreign file: recompute
                return None
            self._remember(key, value)
            return value
        return None

    def put(self, key: str, value: dict[str, np.ndarray]) -> None:
        self._remember(key, value)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = self.folder / f"{key}.{threading.get_ident()}.tmp.npz"
            np.savez(temporary, **value)
            temporary.replace(self.folder / f"{key}.npz")

    def _remember(self, key: str, value: dict[str, np.ndarray]) -> None:
        with self.lock:
            self.memory[key] = value
            self.memory.move_to_end(key)
            while len(self.memory) > self.capacity:
                self.memory.popitem(last=False)


def fingerprint(model: nn.Module) -> str:
    """sha1 of a model's weights and buffers (names, shapes, values): the cache key of everything it produces."""
    digest = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def _ids_key(*arrays: np.ndarray) -> str:
    digest = hashlib.sha1()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]


def compute_insights(original: nn.Module, unlearned: nn.Module, dataset: ImageDataset, split: DataSplit, *,
                     retrained: Optional[nn.Module] = None, device: torch.device | str = "cpu", seed: int = 0,
                     compare_spec: Optional[ForgetSpec] = None, attribution_ids: Optional[np.ndarray] = None,
                     saliency: Optional[dict[str, torch.Tensor]] = None, config: InsightsConfig = InsightsConfig(),
                     on_progress: Optional[ProgressCallback] = None, should_stop: Optional[StopCheck] = None,
                     cache: Optional[InsightsCache] = None) -> Insights:
    """Weight maps, attributions, feature space and privacy attacks for one finished run.

    Args:
        original: θ_o; unlearned: the run's model; retrained: the Retrain reference (optional: without it,
            the worst-case score is NaN and "retrained" is absent from every `models` tuple). None is changed.
        dataset, split: the data the run used.
        seed: seeds every sample choice and UMAP: the same seed gives the same arrays.
        compare_spec: the second forget set for the weight comparison (default: see `comparison_ids`).
        attribution_ids: training-pool ids to explain (default: `default_attribution_ids`).
        saliency: precomputed saliency scores on D_f at θ_o (e.g. a WSS-CL run's extras["saliency"]).
        cache: reuse outputs, saliency and the original's UMAP fit across calls (and processes, with a folder).

    Returns:
        An `Insights`. Example: ``compute_insights(orig, model, data, split, retrained=ref).privacy.worst_case_auc``.

    Raises:
        RunCancelled: when ``should_stop()`` turns true (checked between stages and batches).
    """
    device = torch.device(device)
    reporter = Reporter(on_progress, should_stop)
    cache = cache if cache is not None else InsightsCache()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    models = {"original": original, "unlearned": unlearned, **({"retrained": retrained} if retrained is not None else {})}
    prints = {name: fingerprint(model) for name, model in models.items()}
    labels = dataset.train_labels.numpy()
    test_labels = dataset.test_labels.numpy()

    def stage(index: int) -> float:
        reporter.step(f"insights · {STAGES[index]}", index, len(STAGES))
        return time.perf_counter()

    # 1. outputs --------------------------------------------------------------------------------------
    clock = stage(0)
    sample_ids, in_forget = stratified_sample(labels, split.retain, split.forget, max_points=config.max_points, seed=seed)
    rng = np.random.default_rng(seed)
    test_ids = split.test if len(split.test) <= config.max_test else np.sort(rng.choice(split.test, config.max_test, replace=False))
    nonmember_ids = split.test_forget if len(split.test_forget) else test_ids
    test_all = np.union1d(test_ids, nonmember_ids)
    outputs = {}
    for name, model in models.items():
        key = f"{CACHE_VERSION}-outputs-{prints[name]}-{dataset.name}-{_ids_key(sample_ids, test_all)}"
        value = cache.get(key)
        if value is None:
            train = predict(model, dataset.train_images[torch.as_tensor(sample_ids)], device=device, should_stop=should_stop)
            test = predict(model, dataset.test_images[torch.as_tensor(test_all)], device=device, should_stop=should_stop)
            value = {"train_probabilities": train.probabilities, "train_features": train.features,
                     "test_probabilities": test.probabilities}
            cache.put(key, value)
        outputs[name] = value
    seconds["outputs"] = time.perf_counter() - clock

    # 2. saliency -------------------------------------------------------------------------------------
    clock = stage(1)
    compare, compare_description = comparison_ids(dataset, split, compare_spec, seed)

    def scores_on(ids: np.ndarray) -> dict[str, torch.Tensor]:
        key = f"{CACHE_VERSION}-saliency-{prints['original']}-{dataset.name}-{config.saliency_loss}-{_ids_key(ids)}"
        value = cache.get(key)
        if value is None:
            value = {name: tensor.cpu().numpy() for name, tensor in saliency_scores(
                original, dataset, ids, device=device, loss=config.saliency_loss, should_stop=should_stop).items()}
            cache.put(key, value)
        return {name: torch.from_numpy(array) for name, array in value.items()}

    forget_scores = saliency if saliency is not None else scores_on(split.forget)
    forget_scores = {name: tensor.detach().float().cpu() for name, tensor in forget_scores.items()}
    compare_scores = scores_on(compare)
    seconds["saliency"] = time.perf_counter() - clock

    # 3. weights --------------------------------------------------------------------------------------
    clock = stage(2)
    forget_description = split.spec.describe(dataset.classes) if split.spec is not None else f"{len(split.forget)} samples"
    maps = map_weights(original, unlearned, forget_scores, compare_scores=compare_scores, sparsity=config.sparsity,
                       max_side=config.max_side, forget_description=forget_description,
                       compare_description=compare_description)
    seconds["weights"] = time.perf_counter() - clock

    # 4. attributions ---------------------------------------------------------------------------------
    clock = stage(3)
    ids = (default_attribution_ids(split, config.attribution_count, seed) if attribution_ids is None
           else np.asarray(attribution_ids, dtype=np.int64))
    if len(ids) and (ids.min() < 0 or ids.max() >= len(labels)):
        raise ValueError(f"attribution ids must index the training pool (0..{len(labels) - 1})")
    images = dataset.train_images[torch.as_tensor(ids)]
    explained_by = {}
    for name, model in models.items():
        key = f"{CACHE_VERSION}-attributions-{prints[name]}-{dataset.name}-{_ids_key(ids)}-{config.attribution_steps}"
        value = cache.get(key)
        if value is None:
            value = model_attributions(model, images, labels[ids], device=device, steps=config.attribution_steps,
                                       should_stop=should_stop)
            cache.put(key, value)
        explained_by[name] = value
    explained = explain(models, images, labels[ids], device=device, sample_ids=ids, in_forget=np.isin(ids, split.forget),
                        steps=config.attribution_steps, precomputed=explained_by, should_stop=should_stop)
    seconds["attributions"] = time.perf_counter() - clock

    # 5. features -------------------------------------------------------------------------------------
    clock = stage(4)
    key = f"{CACHE_VERSION}-umap-{prints['original']}-{dataset.name}-{_ids_key(sample_ids)}-{seed}"
    stored = cache.get(key)
    projection = Projection(stored["reference"], stored["coordinates"], seed) if stored is not None else None
    space, projection = project_features({name: outputs[name]["train_features"] for name in models}, labels[sample_ids],
                                      in_forget, sample_ids, seed=seed, projection=projection)
    if stored is None:
        cache.put(key, {"reference": projection.reference, "coordinates": projection.coordinates})
    seconds["features"] = time.perf_counter() - clock

    # 6. privacy --------------------------------------------------------------------------------------
    clock = stage(5)
    forget_at, retain_at = np.flatnonzero(in_forget), np.flatnonzero(~in_forget)
    test_at, nonmember_at = np.searchsorted(test_all, test_ids), np.searchsorted(test_all, nonmember_ids)
    probabilities = {name: {"forget": outputs[name]["train_probabilities"][forget_at],
                            "retain": outputs[name]["train_probabilities"][retain_at],
                            "test": outputs[name]["test_probabilities"][test_at],
                            "forget_nonmembers": outputs[name]["test_probabilities"][nonmember_at]} for name in models}
    attack_labels = {"forget": labels[sample_ids][forget_at], "retain": labels[sample_ids][retain_at],
                     "test": test_labels[test_ids], "forget_nonmembers": test_labels[nonmember_ids]}
    privacy = run_attacks(probabilities, attack_labels, forget_nonmembers=(
        "test images of the forgotten classes" if len(split.test_forget) else "test images"))
    seconds["privacy"] = time.perf_counter() - clock
    seconds["total"] = time.perf_counter() - started
    reporter.report("insights · done", len(STAGES), len(STAGES))
    return Insights(dataset=dataset.name, forget_description=forget_description, models=tuple(models), weights=maps,
                    attributions=explained, features=space, privacy=privacy, seconds=seconds, fingerprints=prints,
                    config={**asdict(config), "seed": seed, "attribution_methods": list(ATTRIBUTION_METHODS)})
