"""Feature-space projections: penultimate features of several models in one shared 2-D UMAP map.

How the coordinates are shared (and why):
1. UMAP is fitted once, on the *original* model's features of a stratified sample (fixed seed; the
   result is cached by the caller). This map is the reference frame: "where things were before".
2. Every model's features (the original's included) are *placed* on that map by the rule UMAP's own
   `transform` starts from: the weighted mean of the map positions of the k nearest original-feature
   points. A model's coordinate for a sample is then
       original UMAP position + (placement under the model − placement under the original),
   so a sample whose features did not change does not move, and one whose features now sit among
   another class's original features moves into that class's cluster.
   We do not call `UMAP.transform`: its first call compiles NN-descent search code (73 s measured on the
   2-core machine), and its optimisation step adds movement that no feature change caused.
3. Retrain is trained from scratch, so its feature axes are unrelated to the original's (at best a
   rotation/permutation). Its features are first mapped into the original's basis by an orthogonal
   Procrustes fit on the *retain* points only; forget points play no part in the alignment, so where
   they land is Retrain's own verdict. (The unlearned model starts from the original's weights and is
   not aligned by default.)

Features are L2-normalised (cosine geometry) before everything, so a global change of feature scale is
not read as movement. The kNN graph is computed exactly here (≤ 4,096 points) and handed to UMAP as
`precomputed_knn`, which skips its NN-descent code and most of its numba compilation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

MAX_POINTS = 3000
NEIGHBOURS = 15
EPOCHS = 200  # UMAP's own default above 10,000 points; its 500 for small sets cost 2.3x for no visible gain


def numba_cache_dir() -> Path:
    """A persistent, writable folder for numba's compiled code: $NUMBA_CACHE_DIR if set, else
    $UNLEARNING_LAB_CACHE/numba, else ~/.cache/unlearning-lab/numba (outside the git tree)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    root = os.environ.get("UNLEARNING_LAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "unlearning-lab")
    return Path(root) / "numba"


def import_umap():
    """Import umap with a persistent numba cache (must be set before numba compiles anything)."""
    import sys

    folder = numba_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("NUMBA_CACHE_DIR"):
            os.environ["NUMBA_CACHE_DIR"] = str(folder)
    except OSError:  # a read-only home: numba falls back to its own cache locations, or compiles each process
        pass
    if "numba" in sys.modules and "umap" not in sys.modules:  # numba read its config before we set the folder
        from numba.core import config

        config.reload_config()
    import umap

    _cache_uncached_kernels()
    return umap


def warm_up(seed: int = 0) -> float:
    """Compile (or load from numba's disk cache) everything a projection needs, on 64 random points.

    Call it once at app start in a background thread, or at image build time, so the first real
    projection does not pay for compilation. Returns the seconds it took.
    """
    import time

    start = time.perf_counter()
    fit_projection(np.random.default_rng(seed).normal(size=(64, 8)), seed=seed, neighbours=8)
    return time.perf_counter() - start


def _cache_uncached_kernels() -> None:
    """umap 0.5 compiles its layout kernels without numba's on-disk cache, so every fresh process paid
    ~10 s (measured) of compilation in its first fit, even with NUMBA_CACHE_DIR set. Turn the cache on
    for the kernels a fit uses (numba's `Dispatcher.enable_caching`, what `cache=True` does)."""
    import importlib

    kernels = {"umap.layouts": ("_nb_optimize_layout_euclidean_single_epoch", "clip", "tau_rand_int"),
               "umap.utils": ("tau_rand_int", "tau_rand"),
               "umap.umap_": ("smooth_knn_dist", "compute_membership_strengths")}
    for module_name, names in kernels.items():
        module = importlib.import_module(module_name)
        for name in names:
            kernel = getattr(module, name, None)
            if kernel is not None and hasattr(kernel, "enable_caching") and not kernel.signatures:
                try:
                    kernel.enable_caching()
                except Exception:  # an unpicklable closure etc.: it just compiles in memory, as before
                    pass


def stratified_sample(labels: np.ndarray, retain: np.ndarray, forget: np.ndarray, *, max_points: int = MAX_POINTS,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample ids for the projection: every forget sample when they fit in half the budget (else a random
    half-budget of them), and the rest of the budget spread evenly over the retain set's classes.

    Returns:
        (sorted sample ids, bool mask "is a forget sample") over ``labels``' index space.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be ≥ 2, got {max_points}")
    rng = np.random.default_rng(seed)
    forget = np.asarray(forget, dtype=np.int64)
    retain = np.asarray(retain, dtype=np.int64)
    if len(forget) > max_points // 2:
        forget = rng.choice(forget, max_points // 2, replace=False)
    budget = min(max_points - len(forget), len(retain))
    retain_labels = np.asarray(labels)[retain]
    classes, counts = np.unique(retain_labels, return_counts=True)
    share = np.floor(budget * counts / counts.sum()).astype(int)
    for c in np.argsort(-(budget * counts / counts.sum() - share))[: budget - share.sum()]:
        share[c] += 1  # largest remainders first, so the shares add up to the budget
    chosen = [rng.choice(retain[retain_labels == c], n, replace=False) for c, n in zip(classes, share)]
    ids = np.concatenate([forget, *chosen]).astype(np.int64)
    order = np.argsort(ids)
    return ids[order], np.concatenate([np.ones(len(forget), bool), np.zeros(len(ids) - len(forget), bool)])[order]


def normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def nearest(reference: np.ndarray, queries: np.ndarray, k: int, *, exclude_self: bool = False):
    """Exact k nearest neighbours (Euclidean): (indices, distances), each (len(queries), k), nearest first.

    One matrix product and a top-k in torch (float64: ties and order are reproducible; 3,000 × 3,000 takes
    ~0.1 s here, numpy's argpartition + sort took ~1.2 s).
    """
    import torch

    reference_t = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float64))
    queries_t = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float64))
    squared = (queries_t ** 2).sum(1)[:, None] + (reference_t ** 2).sum(1)[None] - 2 * queries_t @ reference_t.T
    distances = squared.clamp_min_(0.0).sqrt_()
    if exclude_self:
        distances.fill_diagonal_(0.0)  # UMAP expects each point as its own first neighbour at distance 0
    k = min(k, reference_t.shape[0])
    values, index = torch.topk(distances, k, dim=1, largest=False, sorted=True)
    return index.numpy(), values.numpy()


@dataclass(frozen=True, eq=False)
class Projection:
    """A UMAP fit of reference features: plain arrays, cacheable on disk."""

    reference: np.ndarray     # (P, F) the L2-normalised features it was fitted on
    coordinates: np.ndarray   # (P, 2) float32
    seed: int


def fit_projection(features: np.ndarray, *, seed: int = 0, neighbours: int = NEIGHBOURS) -> Projection:
    """Fit UMAP (fixed ``random_state``) on features (P, F), P ≤ 4,096."""
    if len(features) > 4096:
        raise ValueError(f"{len(features)} points: keep projections ≤ 4,096 (UMAP switches to NN-descent above)")
    umap = import_umap()
    reference = normalise(features)
    index, distance = nearest(reference, reference, neighbours, exclude_self=True)
    reducer = umap.UMAP(n_neighbors=neighbours, random_state=seed, precomputed_knn=(index, distance, None),
                        n_epochs=EPOCHS, init="spectral", n_jobs=1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state" and similar notices
        coordinates = reducer.fit_transform(reference.astype(np.float32))
    return Projection(reference=reference.astype(np.float32), coordinates=np.asarray(coordinates, np.float32), seed=seed)


def place(projection: Projection, features: np.ndarray, *, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """Weighted mean of the k nearest reference points' coordinates (UMAP's transform initialisation)."""
    index, distance = nearest(projection.reference.astype(np.float64), normalise(features), neighbours)
    spread = np.maximum((distance - distance[:, :1]).mean(1, keepdims=True), 1e-8)
    weights = np.exp(-(distance - distance[:, :1]) / spread)
    weights /= weights.sum(1, keepdims=True)
    return (weights[:, :, None] * projection.coordinates[index]).sum(1).astype(np.float32)


def align(features: np.ndarray, target: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Map ``features`` into ``target``'s basis: orthogonal Procrustes on the ``anchors`` rows (retain points).

    Both are L2-normalised first; the result is (features − mean_a) R + mean_t with R orthogonal.
    """
    from scipy.linalg import orthogonal_procrustes

    source, goal = normalise(features), normalise(target)
    mean_source, mean_goal = source[anchors].mean(0), goal[anchors].mean(0)
    rotation, _ = orthogonal_procrustes(source[anchors] - mean_source, goal[anchors] - mean_goal)
    return (source - mean_source) @ rotation + mean_goal


def two_group_silhouette(unit: np.ndarray, group: np.ndarray) -> float:
    """Silhouette (cosine distance) of a two-group labelling of unit vectors, exactly, in O(N·F).

    With unit vectors the cosine distance is 1 − u·v, so the mean distance of u_i to a group G is
    1 − u_i·mean(G) (own group: n_G (1 − u_i·mean(G)) / (n_G − 1), the zero self-distance left out).
    s_i = (b_i − a_i) / max(a_i, b_i), and s_i = 0 in a group of one (as scikit-learn does).
    """
    group = np.asarray(group, bool)
    sizes = np.array([(~group).sum(), group.sum()], dtype=np.float64)
    means = np.stack([unit[~group].mean(0), unit[group].mean(0)])
    to_mean = 1.0 - unit @ means.T                       # (N, 2): mean distance to each whole group
    own, other = group.astype(int), 1 - group.astype(int)
    rows = np.arange(len(unit))
    with np.errstate(divide="ignore", invalid="ignore"):
        a = to_mean[rows, own] * sizes[own] / (sizes[own] - 1)
        b = to_mean[rows, other]
        s = np.where(sizes[own] > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(np.mean(s))


def separation(features: np.ndarray, labels: np.ndarray, in_forget: np.ndarray) -> tuple[float, float]:
    """How apart forget samples are from retained data in a model's feature space (cosine geometry).

    Returns:
        (silhouette of the two groups forget/retain ∈ [−1, 1],
         mean cosine distance from each forget sample to its nearest retain-class centroid).
        NaN when either group is empty.
    """
    in_forget = np.asarray(in_forget, bool)
    if in_forget.all() or not in_forget.any():
        return float("nan"), float("nan")
    unit = normalise(features)
    retain_labels = np.asarray(labels)[~in_forget]
    centroids = normalise(np.stack([unit[~in_forget][retain_labels == c].mean(0) for c in np.unique(retain_labels)]))
    distance = 1.0 - unit[in_forget] @ centroids.T
    return two_group_silhouette(unit, in_forget), float(distance.min(1).mean())


@dataclass(frozen=True, eq=False)
class FeatureSpace:
    """M models' features of P sampled training points in one shared 2-D frame."""

    models: tuple[str, ...]        # e.g. ("original", "unlearned", "retrained")
    sample_ids: np.ndarray         # (P,) training-pool ids
    labels: np.ndarray             # (P,)
    in_forget: np.ndarray          # (P,) bool
    coordinates: np.ndarray        # (M, P, 2) float32, shared frame (see module docstring)
    silhouette: np.ndarray         # (M,) forget vs retain, cosine, in each model's own feature space
    centroid_distance: np.ndarray  # (M,) mean cosine distance forget -> nearest retain-class centroid
    forget_shift: np.ndarray       # (M,) mean 2-D displacement of forget points from the original's positions
    retain_shift: np.ndarray       # (M,) the same for retain points
    aligned: tuple[str, ...]       # models whose features were Procrustes-aligned to the original's
    seed: int


def project_features(features: dict[str, np.ndarray], labels: np.ndarray, in_forget: np.ndarray, sample_ids: np.ndarray,
                  *, seed: int = 0, projection: Optional[Projection] = None, align_models: tuple[str, ...] = ("retrained",),
                  neighbours: int = NEIGHBOURS) -> tuple[FeatureSpace, Projection]:
    """Project every model's features into the frame of ``features["original"]``.

    Args:
        features: {model name: (P, F) features of the same samples}; must contain "original".
        projection: a cached `fit_projection` of the original's features (fitted here when None).
        align_models: models whose features are Procrustes-aligned to the original's on retain points.

    Returns:
        (the `FeatureSpace`, the original's `Projection` for the caller's cache).
    """
    if "original" not in features:
        raise ValueError("feature_space needs the original model's features (key 'original')")
    in_forget = np.asarray(in_forget, bool)
    projection = projection or fit_projection(features["original"], seed=seed, neighbours=neighbours)
    if len(projection.coordinates) != len(labels):
        raise ValueError("the cached projection was fitted on a different sample")
    base = place(projection, features["original"], neighbours=neighbours)
    names, coordinates, silhouettes, distances, aligned = [], [], [], [], []
    for name, values in features.items():
        if name != "original" and name in align_models:
            values = align(values, features["original"], ~in_forget)
            aligned.append(name)
        spot = projection.coordinates if name == "original" else (
            projection.coordinates + place(projection, values, neighbours=neighbours) - base)
        names.append(name)
        coordinates.append(spot)
        silhouette, distance = separation(values, labels, in_forget)
        silhouettes.append(silhouette)
        distances.append(distance)
    coordinates = np.stack(coordinates).astype(np.float32)
    shift = np.linalg.norm(coordinates - projection.coordinates[None], axis=2)
    return FeatureSpace(
        models=tuple(names), sample_ids=np.asarray(sample_ids, np.int64), labels=np.asarray(labels, np.int64),
        in_forget=in_forget, coordinates=coordinates, silhouette=np.asarray(silhouettes),
        centroid_distance=np.asarray(distances),
        forget_shift=shift[:, in_forget].mean(1) if in_forget.any() else np.full(len(names), np.nan),
        retain_shift=shift[:, ~in_forget].mean(1) if (~in_forget).any() else np.full(len(names), np.nan),
        aligned=tuple(aligned), seed=seed), projection
