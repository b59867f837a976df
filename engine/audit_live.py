"""The per-example audit of one finished run, as the app shows it (``run_dir/audit.json`` + ``audit.npz``).

1. `quick_audit` (seconds, part of the run's insights): φ of each forget example under the unlearned model,
   judged per example by LiRA against the shipped **shadow** population (online: IN = shadows that trained on the
   example, OUT = those that did not — every example is OUT for about half of them, so any forget set can be
   audited), and, when the forget set has a Retrain population (shipped, or built by an earlier deep audit), the
   offline test against it and the Retrain **noise floor**.
2. `deep_audit` (a background job, with progress and Cancel): N − 1 more unlearning runs of the same method and
   config (seeds s+1 … s+N−1 beside the run's own seed s) and, when none exists, a Retrain population of K members
   for the forget set; then the challenge's **forgetting quality** and per-example ε (`engine.audit`).

Both write the same two files; arrays (per forget example, in ``forget_ids`` order) go to the .npz so the page can
draw any example's score against its populations without loading a model or a population.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from engine import audit_assets
from engine.audit_run import PopulationScores, audit_figures, phi_on, population_scores
from engine.checkpoints import write_json_atomic
from engine.progress import Progress, ProgressCallback, StopCheck, RunCancelled

AUDIT_JSON, AUDIT_NPZ = "audit.json", "audit.npz"
DEEP_RUNS = 8          # N: unlearning runs in a deep audit (the run itself and 7 more seeds)
POPULATION_SIZE = 8    # K: Retrains built for a forget set without a shipped population (docs/audit.md)


def population_folder(runs_root: Path, dataset_name: str, spec, split_seed: int = 0) -> Path:
    """Where the app keeps a Retrain population it built for a forget set (shared by every run on that set)."""
    return Path(runs_root) / "_populations" / (f"{dataset_name}-{spec.key()}" + (f"-split{split_seed}" if split_seed else ""))


def retrain_population(dataset, spec, *, runs_root: Optional[Path], split_seed: int = 0,
                       recipe=None) -> Optional[PopulationScores]:
    """The forget set's Retrain population: shipped (same recipe and split), else one an earlier deep audit built."""
    shipped = audit_assets.retrains(dataset, spec, split_seed=split_seed, recipe=recipe)
    if shipped is not None:
        return shipped
    if runs_root is not None:
        folder = population_folder(runs_root, dataset.name, spec, split_seed)
        if (folder / "population.json").is_file():
            import torch

            scores = population_scores(folder, dataset, device=torch.device("cpu"))
            from engine.splits import ForgetSpec

            forget = scores.manifest.get("forget")
            if forget and ForgetSpec.from_dict(forget) == spec and len(scores.metrics) >= 2:
                return scores
    return None


def noise_floor_for(dataset_name: str, spec, *, runs_root: Optional[Path] = None, split_seed: int = 0,
                    original: Optional[str] = None) -> Optional[dict]:
    """The Retrain noise floor of a forget set — the Avg. Gap between its Retrains that differ only in seed —
    from its shipped population's recorded evaluations (or one a deep audit built); None when it has none.
    Reads JSON only: cheap enough for every page that shows an Avg. Gap."""
    from engine.audit import noise_floor
    from engine.metrics import GAP_KEYS

    metrics = None
    recipe = recipe_of(dataset_name, original)
    name = audit_assets.retrain_name(dataset_name, spec, split_seed=split_seed, recipe=recipe)
    if name is not None:
        metrics = [m["metrics"] for m in audit_assets.catalogue(dataset_name)[name]["members"]]
    elif runs_root is not None:
        manifest = population_folder(runs_root, dataset_name, spec, split_seed) / "population.json"
        if manifest.is_file():
            metrics = [m["metrics"] for m in json.loads(manifest.read_text())["members"]]
    members = [{k: float(m[k]) for k in GAP_KEYS} for m in metrics or [] if all(k in m for k in GAP_KEYS)]
    if len(members) < 2:
        return None
    floor = noise_floor(members)
    return {"mean": floor.mean, "std": floor.std, "retrains": floor.num_models, "shipped": name is not None}


def _summary(population: PopulationScores) -> dict:
    manifest = population.manifest
    return {"name": manifest.get("shipped") or "built by a deep audit", "size": len(population.metrics),
            "shipped": bool(manifest.get("shipped"))}


def quick_audit(unlearned, dataset, split, *, device, run_scores: dict, runs_root: Optional[Path] = None,
                recipe=None, split_seed: int = 0) -> tuple[dict, dict]:
    """(figures, arrays) of the seconds-long audit; ``run_scores`` = the run's UA/RA/TA/MIA."""
    from engine.audit import noise_floor
    from engine.lira import lira_audit
    from engine.metrics import GAP_KEYS, avg_gap

    start = time.perf_counter()
    forget = np.asarray(split.forget)
    import torch

    ids = torch.as_tensor(forget)
    phi = phi_on(unlearned, dataset.train_images[ids], dataset.train_labels[ids].numpy(), device)
    figures: dict = {"forget_examples": int(len(forget)), "deep": False}
    arrays: dict = {"forget_ids": forget.astype(np.int64), "phi": phi.astype(np.float32)}
    shadows = audit_assets.shadows(dataset, split_seed=split_seed, recipe=recipe)
    if shadows is not None:
        lira = lira_audit(phi, shadows.phi[:, forget], shadows.trained_on[:, forget], variant="online")
        figures["lira"] = _lira_figures(lira, against=f"{len(shadows.metrics)} shadow models (online)")
        arrays.update(lira_statistic=lira.statistic.astype(np.float32), lira_skipped=lira.skipped,
                      shadow_phi=shadows.phi[:, forget].astype(np.float32), shadow_in=shadows.trained_on[:, forget])
    else:
        figures["lira"] = None
        figures["lira_note"] = "no shadow population matches this model's recipe and dataset"
    retrains = retrain_population(dataset, split.spec, runs_root=runs_root, split_seed=split_seed, recipe=recipe)
    figures["population"] = None if retrains is None else _summary(retrains)
    if retrains is not None:
        members = [{k: float(m[k]) for k in GAP_KEYS} for m in retrains.metrics]
        floor = noise_floor(members)
        mean = {k: float(np.mean([m[k] for m in members])) for k in GAP_KEYS}
        offline = lira_audit(phi, retrains.phi[:, forget], np.zeros((len(members), len(forget)), bool),
                             variant="offline")
        figures.update(noise_floor=floor.mean, noise_floor_std=floor.std, retrain_mean=mean,
                       avg_gap_to_population=avg_gap({k: float(run_scores[k]) for k in GAP_KEYS}, mean),
                       offline=_lira_figures(offline, against=f"{len(members)} Retrains of this forget set (offline)"))
        arrays.update(retrain_phi=retrains.phi[:, forget].astype(np.float32),
                      offline_statistic=offline.statistic.astype(np.float32), offline_skipped=offline.skipped)
    # Which test answers "is it like a model that never saw these images?": for whole classes the shadows are the
    # wrong null (each one that left an image out still learned its class), so the Retrains of the set are; for
    # images drawn from classes that stay, a shadow that left the image out is exactly that model.
    if split.spec.kind == "class" and retrains is not None:
        figures["headline"] = "offline"
    elif shadows is not None:
        figures["headline"] = "lira"
    else:
        figures["headline"] = "offline" if retrains is not None else None
    figures["seconds"] = time.perf_counter() - start
    return figures, arrays


def _lira_figures(lira, *, against: str) -> dict:
    from engine.audit_run import _nan_to_none as plain

    return {"auc": plain(lira.auc), "tpr_at_1pct_fpr": plain(lira.roc.tpr_at_1pct_fpr),
            "tpr_at_01pct_fpr": plain(lira.tpr_at_01pct_fpr), "positive_trials": lira.num_positive,
            "negative_trials": lira.num_negative, "skipped": int(lira.skipped.sum()), "against": against}


def recipe_of(dataset_name: str, original: Optional[str]) -> Optional[dict]:
    """The recipe that trained the run's original (the shipped one's, or an uploaded checkpoint's sidecar's):
    shipped populations are used only for a model of their own recipe."""
    from engine.checkpoints import read_sidecar

    if original is None:
        return audit_assets.original_recipe(dataset_name) or {"unknown": True}
    try:
        return read_sidecar(original).get("recipe") or {"unknown": True}
    except (OSError, ValueError):
        return {"unknown": True}


def write_audit(run_dir: Path, figures: dict, arrays: dict) -> None:
    run_dir = Path(run_dir)
    tmp = run_dir / "audit.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(run_dir / AUDIT_NPZ)
    write_json_atomic(run_dir / AUDIT_JSON, figures, overwrite=True)


def read_audit(run_dir: Path) -> Optional[tuple[dict, dict]]:
    """(figures, arrays) of a run's audit, or None when it has none."""
    run_dir = Path(run_dir)
    if not (run_dir / AUDIT_JSON).is_file() or not (run_dir / AUDIT_NPZ).is_file():
        return None
    figures = json.loads((run_dir / AUDIT_JSON).read_text())
    with np.load(run_dir / AUDIT_NPZ, allow_pickle=False) as stored:
        return figures, {name: stored[name] for name in stored.files}


def deep_audit_cost(dataset, spec, *, run_seconds: float, runs_root: Optional[Path], recipe=None,
                    split_seed: int = 0, runs: int = DEEP_RUNS, population_size: int = POPULATION_SIZE,
                    retrain_seconds: Optional[float] = None) -> dict:
    """What a deep audit would cost here, from measured parts: N − 1 runs like this one and, when the forget set
    has no Retrain population, K Retrains (``retrain_seconds`` each: the shipped references' recorded time)."""
    has_population = retrain_population(dataset, spec, runs_root=runs_root, split_seed=split_seed,
                                        recipe=recipe) is not None
    population = 0.0 if has_population else population_size * float(retrain_seconds or 0.0)
    return {"runs": runs, "population_size": 0 if has_population else population_size,
            "has_population": has_population, "seconds": (runs - 1) * float(run_seconds) * 1.2 + population}


def deep_audit(run_dir: Path, *, request, dataset_ref: dict, runs_root: Path, run_scores: dict, device,
               runs: int = DEEP_RUNS, population_size: int = POPULATION_SIZE, retrain_recipe=None, recipe=None,
               split_seed: int = 0, on_progress: Optional[ProgressCallback] = None,
               should_stop: Optional[StopCheck] = None) -> dict:
    """N unlearning runs of ``request``'s method and config (its own model is the first) and the Retrain
    population (built first when missing) → forgetting quality and per-example ε, added to the run's audit."""
    from engine.checkpoints import load_checkpoint
    from engine.executor import InlineExecutor, open_dataset
    from engine.population import build_population
    from engine.runs import MODEL_NAME
    from engine.splits import make_split

    stop = should_stop or (lambda: False)
    report = on_progress or (lambda progress: None)
    start = time.perf_counter()
    dataset = open_dataset(dataset_ref)
    spec = request.forget
    split = make_split(dataset, spec, split_seed)
    retrains = retrain_population(dataset, spec, runs_root=runs_root, split_seed=split_seed, recipe=recipe)
    executor = InlineExecutor()
    import torch

    threads = torch.get_num_threads()
    if retrains is None:
        folder = population_folder(runs_root, dataset.name, spec, split_seed)
        epochs = None if retrain_recipe is None else retrain_recipe.epochs
        manifest = build_population(
            executor, dataset=dataset_ref.get("npz") or dataset_ref["name"], kind="retrain",
            count=population_size, out=folder, forget=spec.to_dict(), epochs=epochs, split_seed=split_seed,
            device=str(device), cpus=threads, data_root=dataset_ref.get("root"),
            on_progress=lambda p: report(Progress("audit · Retrain population", p.step, p.total, dict(p.metrics))),
            should_stop=stop)
        if manifest["failures"]:
            raise RuntimeError(f"{len(manifest['failures'])} Retrains of the population failed: "
                               f"{manifest['failures'][0]['error'].splitlines()[0]}")
        retrains = retrain_population(dataset, spec, runs_root=runs_root, split_seed=split_seed, recipe=recipe)
        # φ is cached beside the members now (phi.npz + their records): the weights (≈ 0.75 MB each) are not needed
        # again — drop them so the app's disk budget holds runs, not populations
        for member in folder.glob("member-*.safetensors"):
            member.unlink()
    own = load_checkpoint(Path(run_dir) / MODEL_NAME, device=device)[0]
    # the quick part again (seconds): a population built just now brings the offline test and the noise floor,
    # and a run from before the audit existed gets its quick part at all
    figures_now, arrays = quick_audit(own, dataset, split, device=device, run_scores=run_scores,
                                      runs_root=runs_root, recipe=recipe, split_seed=split_seed)
    ids = torch.as_tensor(split.forget)
    first = {"seed": request.seed, "phi": phi_on(own, dataset.train_images[ids], dataset.train_labels[ids].numpy(),
                                                  device), "scores": dict(run_scores), "seconds": 0.0}
    from engine.audit_run import run_job

    results = [first]
    for k in range(1, runs):
        if stop():
            raise RunCancelled("cancelled")
        report(Progress("audit · unlearning runs", k, runs, {"seed": request.seed + k}))
        results.append(run_job(dataset_ref, request.original, request.method, spec.to_dict(), request.seed + k,
                               split_seed, request.config.to_dict(), str(device), should_stop=stop))
    report(Progress("audit · unlearning runs", runs, runs, {}))
    figures = audit_figures(results, retrains, np.asarray(split.forget), method=request.method,
                            whole_classes=spec.kind == "class")
    deep = {key: figures.get(key) for key in (
        "forgetting_quality", "forget_score", "retain_ratio", "test_ratio", "forgetting_quality_ceiling",
        "resolution_runs", "largest_finite_epsilon", "epsilon_limit", "noise_floor", "noise_floor_std", "avg_gap",
        "unlearned_scores", "retrain_scores", "forgetting_quality_note")}
    deep.update(runs=runs, seeds=[r["seed"] for r in results], population_size=len(retrains.metrics),
                run_seconds=[r["seconds"] for r in results[1:]], seconds=time.perf_counter() - start)
    arrays.update(epsilon=np.asarray(figures["epsilon"], dtype=np.float32) if figures.get("epsilon") else np.zeros(0),
                  runs_phi=np.stack([np.asarray(r["phi"], np.float32) for r in results]),
                  retrain_phi=retrains.phi[:, split.forget].astype(np.float32))
    figures_now = {**figures_now, "deep": deep}
    write_audit(run_dir, figures_now, arrays)
    return figures_now
