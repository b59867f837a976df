"""The per-example audit as a run: N unlearning runs against a population of Retrains (and shadows).

    python -m engine audit --forget-classes 3 --method salun --runs 8 --population runs/pop-3 --json audit.json

1. N unlearning runs of the method, seeds SEED..SEED+N−1, through the executor (`run_job`, one job each);
   each returns φ of every forget example and its UA/RA/TA/MIA. ``original`` is the model before any
   unlearning: one model, the same under every "run". ``retrain`` is an independent Retrain per seed.
2. The Retrain population (K members of `engine.population`, built there when the folder has none) and,
   optionally, a shadow population: each member's φ on the whole training pool, computed once from its
   checkpoint and cached beside it (`phi.npz`, checked against the members' weight hashes).
3. The metrics of `engine.audit` / `engine.lira`: forgetting quality (N ≥ 3 and K ≥ 3, else refused),
   LiRA (online against shadows; offline against the Retrain population when no shadows are given), the
   Retrain noise floor, per-example ε and LiRA statistic.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from engine.executor import Job, open_dataset, open_model

RESOLUTION = Path(__file__).resolve().parent.parent / "docs" / "audit-resolution.json"
PHI_CACHE = "phi.npz"


def phi_on(model, images, labels, device) -> np.ndarray:
    """φ (logit-scaled confidence of the true label) of each image under ``model``, float64 (n,)."""
    from engine.audit import logit_scaled_confidence
    from engine.training import predict

    return logit_scaled_confidence(predict(model, images, device=device).logits, np.asarray(labels))


def run_job(dataset: dict, checkpoint: Optional[str], method: str, forget: dict, seed: int, split_seed: int,
            overrides: dict, device: str, on_progress=None, should_stop=None) -> dict:
    """One unlearning run (a job function): φ on the forget set and the run's figures."""
    import torch

    from engine.evaluation import evaluate
    from engine.methods import METHODS, make_config
    from engine.splits import ForgetSpec, make_split
    from engine.training import resolve_device

    resolved = resolve_device(device)
    data = open_dataset(dataset)
    model = open_model(json.dumps(dataset, sort_keys=True), checkpoint, str(resolved))
    spec = ForgetSpec.from_dict(forget)
    split = make_split(data, spec, split_seed)
    start = time.perf_counter()
    if method != "original":
        config = make_config(method, forget_kind=spec.setting, **overrides)
        model = METHODS[method].unlearn(model, data, split, config, device=resolved, seed=seed,
                                        on_progress=on_progress, should_stop=should_stop).model
    seconds = time.perf_counter() - start
    ids = torch.as_tensor(split.forget)
    phi = phi_on(model, data.train_images[ids], data.train_labels[ids].numpy(), resolved)
    return {"seed": seed, "phi": phi, "scores": evaluate(model, data, split, device=resolved).scores(),
            "seconds": seconds}


@dataclass(frozen=True, eq=False)
class PopulationScores:
    """φ of every training-pool image under each member of a population, and which ones it trained on."""

    phi: np.ndarray          # (M, P) float64
    trained_on: np.ndarray   # (M, P) bool
    manifest: dict           # population.json
    metrics: list            # each member's evaluation (Retrain populations: UA, RA, TA, MIA, ...)
    computed: bool           # False when φ came from the cache


def _fingerprint(folder: Path, members: list) -> str:
    from engine.checkpoints import read_sidecar

    names = [(m["checkpoint"], read_sidecar(folder / m["checkpoint"]).get("sha256")) for m in members]
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()


def population_scores(folder: Path, dataset, *, device) -> PopulationScores:
    """A population's φ on the training pool: from ``folder/phi.npz`` when it matches the members, else
    computed from the checkpoints (one inference pass each) and cached there when the folder is writable."""
    from engine.checkpoints import load_checkpoint

    folder = Path(folder)
    manifest_path = folder / "population.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{folder} holds no population (population.json is missing); build one with "
                                "`python -m engine population`")
    manifest = json.loads(manifest_path.read_text())
    members = manifest["members"]
    if manifest.get("dataset") != dataset.name:
        raise ValueError(f"population {folder} is of dataset {manifest.get('dataset')!r}, not {dataset.name!r}")
    if not members:
        raise ValueError(f"population {folder} has no members")
    fingerprint = _fingerprint(folder, members)
    pool = len(dataset.train_labels)
    trained_on = np.zeros((len(members), pool), dtype=bool)
    for row, member in enumerate(members):
        trained_on[row, np.load(folder / member["in_ids"])] = True
    metrics = [member.get("metrics", {}) for member in members]
    cache = folder / PHI_CACHE
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            if str(stored["fingerprint"]) == fingerprint and stored["phi"].shape == (len(members), pool):
                return PopulationScores(stored["phi"].astype(np.float64), trained_on, manifest, metrics, False)
    labels = dataset.train_labels.numpy()
    phi = np.stack([phi_on(load_checkpoint(folder / m["checkpoint"], device=device)[0], dataset.train_images,
                           labels, device) for m in members])
    try:   # a read-only population (shipped, or someone else's) is used without a cache
        np.savez_compressed(cache, phi=phi.astype(np.float32), fingerprint=fingerprint)
    except OSError:
        pass
    return PopulationScores(phi, trained_on, manifest, metrics, True)


def resolution_ceiling(num_runs: int, path: Path = RESOLUTION) -> Optional[dict]:
    """The perfect unlearner's forgetting quality measured at this N by the resolution study
    (docs/audit.md, `scripts.audit_resolution`), per population spread σ; None when N was not measured."""
    if not Path(path).is_file():
        return None
    for row in json.loads(Path(path).read_text())["rows"]:
        if row["N"] == num_runs:
            return {key.removeprefix("perfect_unlearner_"): value for key, value in row.items()
                    if key.startswith("perfect_unlearner_")}
    return None


def run_jobs(executor, *, dataset: dict, checkpoint: Optional[str], method: str, forget: dict, seeds: list,
             split_seed: int, overrides: dict, device: str, cpus: int = 1, gpus: float = 0.0,
             on_progress=None) -> list[dict]:
    """The N unlearning runs, in seed order (``original`` runs once: it is one model)."""
    wanted = seeds[:1] if method == "original" else seeds
    jobs = [Job("engine.audit_run:run_job", {"dataset": dataset, "checkpoint": checkpoint, "method": method,
                                             "forget": forget, "seed": seed, "split_seed": split_seed,
                                             "overrides": overrides, "device": device},
                key=str(seed), cpus=cpus, gpus=gpus) for seed in wanted]
    results = {}
    for result in executor.run(jobs, on_progress=on_progress):
        if not result.ok:
            raise RuntimeError(f"unlearning run seed {result.job.key} failed: {result.error}")
        results[int(result.job.key)] = result.value
    runs = [results[seed] for seed in wanted]
    return runs * len(seeds) if method == "original" else runs


def _mean(values) -> float:
    return float(np.mean([float(v) for v in values]))


def audit_figures(runs: list[dict], retrains: PopulationScores, forget: np.ndarray, *,
                  shadows: Optional[PopulationScores] = None, method: str = "", whole_classes: bool = False) -> dict:
    """Every audit figure as plain values (the CLI's JSON): forgetting quality (or why it is refused), LiRA,
    the noise floor and the per-example ε and LiRA statistic, in the order of ``forget`` (training-pool ids)."""
    from engine.audit import forgetting_quality, noise_floor
    from engine.lira import lira_audit
    from engine.metrics import GAP_KEYS

    unlearned = np.stack([np.asarray(run["phi"], dtype=np.float64) for run in runs])       # (N, n)
    retrained = retrains.phi[:, forget]                                                    # (K, n)
    if retrains.trained_on[:, forget].any():
        raise ValueError("the Retrain population trained on forget examples: it belongs to another forget set")
    num_runs, population = len(runs), len(retrained)
    figures: dict = {"runs": num_runs, "population_size": population, "forget_examples": int(len(forget)),
                     "distinct_unlearned_models": 1 if method == "original" else num_runs,
                     "forget_ids": forget.tolist()}
    resolution = min(num_runs, population)
    if resolution >= 3:
        run_scores = [run["scores"] for run in runs]
        member_scores = [m for m in retrains.metrics if all(k in m for k in ("RA", "TA"))]
        def accuracies(key):
            return ([s[key] for s in run_scores], [m[key] for m in member_scores]) if member_scores else None

        quality = forgetting_quality(unlearned, retrained, retain_accuracy=accuracies("RA"),
                                     test_accuracy=accuracies("TA"))
        figures.update(
            forgetting_quality=quality.score, forget_score=quality.forget_score,
            retain_ratio=quality.retain_ratio, test_ratio=quality.test_ratio,
            forgetting_quality_clipped=False,
            forgetting_quality_note=("not clipped to [0, 1], as in the challenge: forget score (in [0, 1]) × RA "
                                     "ratio × TA ratio, so an unlearner more accurate than Retrain can exceed 1; "
                                     "compare with forgetting_quality_ceiling (a perfect unlearner at this N), "
                                     "not with 1"),
            forgetting_quality_ceiling=resolution_ceiling(resolution), resolution_runs=resolution,
            largest_finite_epsilon=quality.largest_finite_epsilon, epsilon_limit=quality.epsilon_limit,
            epsilon=quality.epsilons.tolist(), epsilon_points=quality.points.tolist())
    else:
        figures.update(forgetting_quality=None, epsilon=None, forgetting_quality_ceiling=None,
                       forgetting_quality_note=(f"refused: the challenge's metric needs ≥ 3 unlearning runs and "
                                                f"≥ 3 Retrains (here {num_runs} and {population}); LiRA only"))
    # LiRA: online against shadows (IN = shadows trained on the example); offline against the Retrains, which
    # all never saw the forget set (OUT only). The headline (lira_*) answers "like a model that never saw these
    # images?": for whole classes the Retrains (a shadow that left an image out still learned its class), else the
    # shadows when given; the other test, when there is one, is reported as lira_other.
    targets = unlearned if method != "original" else unlearned[:1]
    tests = {"offline": lira_audit(targets, retrains.phi[:, forget], retrains.trained_on[:, forget], variant="offline")}
    if shadows is not None:
        tests["online"] = lira_audit(targets, shadows.phi[:, forget], shadows.trained_on[:, forget], variant="online")
    variant = "offline" if whole_classes or shadows is None else "online"
    against = {"online": "shadows", "offline": "retrain population"}
    lira = tests[variant]
    figures.update(lira_auc=lira.auc, lira_tpr_at_1pct_fpr=_nan_to_none(lira.roc.tpr_at_1pct_fpr),
                   lira_tpr_at_01pct_fpr=_nan_to_none(lira.tpr_at_01pct_fpr), lira_variant=variant,
                   lira_against=against[variant],
                   lira_positive_trials=lira.num_positive, lira_negative_trials=lira.num_negative,
                   lira_skipped_examples=int(lira.skipped.sum()),
                   lira_statistic=[_nan_to_none(v) for v in lira.statistic.tolist()])
    other = next((v for v in tests if v != variant), None)
    figures["lira_other"] = None if other is None else {
        "variant": other, "against": against[other], "auc": tests[other].auc,
        "tpr_at_1pct_fpr": _nan_to_none(tests[other].roc.tpr_at_1pct_fpr)}
    members = [{k: float(m[k]) for k in GAP_KEYS} for m in retrains.metrics if all(k in m for k in GAP_KEYS)]
    if len(members) >= 2:
        floor = noise_floor(members)
        figures.update(noise_floor=floor.mean, noise_floor_std=floor.std, noise_floor_models=floor.num_models)
    else:
        figures.update(noise_floor=None, noise_floor_note="needs ≥ 2 Retrains with evaluations")
    run_means = {k: _mean(run["scores"][k] for run in runs) for k in GAP_KEYS}
    figures["unlearned_scores"] = run_means
    if members:
        from engine.metrics import avg_gap

        retrain_means = {k: _mean(m[k] for m in members) for k in GAP_KEYS}
        figures.update(retrain_scores=retrain_means, avg_gap=avg_gap(run_means, retrain_means))
    return figures


def _nan_to_none(value):
    value = float(value)
    return None if not np.isfinite(value) else value
