"""Benchmark of the insight engine on fashion-mini (issue 4), on the machine it runs on.

    python -m scripts.bench_insights                       # everything (≈ 3–4 min on the 2-core machine)
    python -m scripts.bench_insights --skip-fresh-umap     # only the in-process figures
    python -m scripts.bench_insights --json out.json

Prints:
1. "first UMAP call in a fresh process": a child process imports umap and fits the projection of the
   original model's features (3,000 × 128), once with an *empty* numba cache folder (everything compiles;
   target ≤ 40 s) and once more with that folder now warm (numba's on-disk cache reused).
2. "all insights for one finished run with warm caches" (target ≤ 15 s): `compute_insights` for a run whose
   unlearned model is new, after an earlier run on the same original model and forget set has warmed the
   caches (original/Retrain outputs, saliency on D_f and on the comparison set, the original's UMAP fit)
   and the process (captum, numba). Also the fully cold call and a repeat of the same run.

The unlearned models are stand-ins (1 epoch of fine-tuning a copy of the original on a 2,000-sample
subset of D_r, seeds 1 and 2): the cost of the insights does not depend on how the model was made.
The Retrain reference is the shipped one when present (assets/checkpoints/fashion-mini/).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import os, sys, time, json
import numpy as np
start = time.perf_counter()
from engine.projection import fit_projection, import_umap
import_umap()
imported = time.perf_counter() - start
features = np.load(sys.argv[1])["features"]
start = time.perf_counter()
fit_projection(features, seed=0)
print(json.dumps({"import_s": imported, "fit_s": time.perf_counter() - start}))
"""


def fresh_umap(features_path: Path, cache_dir: Path) -> dict:
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(features_path)], env=environment, capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forget-class", type=int, default=None,
                        help="default: the first class with a shipped Retrain reference (else 0)")
    parser.add_argument("--skip-fresh-umap", action="store_true")
    parser.add_argument("--method", default=None,
                        help="make the unlearned models with this registered method (seeds 1, 2) instead of fine-tuning")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from engine.checkpoints import load_checkpoint
    from engine.data import load_dataset
    from engine.insights import InsightsCache, compute_insights
    from engine.projection import stratified_sample
    from engine.references import find_reference, load_original
    from engine.splits import ForgetSpec, make_split
    from engine.training import TrainRecipe, predict, train_model

    device = torch.device("cpu")
    data = load_dataset("fashion-mini")
    if args.forget_class is None:
        shipped = [c for c in range(data.num_classes) if find_reference(data.name, ForgetSpec(classes=(c,)))]
        args.forget_class = shipped[0] if shipped else 0
    spec = ForgetSpec(classes=(args.forget_class,))
    split = make_split(data, spec)
    original, _ = load_original(data, device=device)
    reference = find_reference(data.name, spec)
    figures: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                                f"torch threads {torch.get_num_threads()}",
                     "load_average_start": os.getloadavg(), "forget": spec.describe(data.classes)}

    def fine_tuned(seed: int):
        model = copy.deepcopy(original)
        subset = np.random.default_rng(seed).choice(split.retain, 2000, replace=False)
        return train_model(model, data, subset, TrainRecipe(epochs=1, lr=0.01, warmup=0.0), device=device, seed=seed)

    if reference is not None:
        retrained, _ = load_checkpoint(reference, device=device)
        figures["retrained"] = reference.name
    else:
        retrained = fine_tuned(99)
        figures["retrained"] = "stand-in (no shipped Retrain reference yet): a fine-tuned copy, seed 99"
    if args.method:
        from engine.unlearning import run_unlearning

        def unlearned(seed: int):
            return run_unlearning(args.method, original, data, split, device=device, seed=seed).result.model
        figures["unlearned"] = f"{args.method}, seeds 1 and 2"
    else:
        unlearned = fine_tuned
        figures["unlearned"] = "stand-in: 1 epoch of fine-tuning on 2,000 retain samples, seeds 1 and 2"
    first_run, second_run = unlearned(1), unlearned(2)

    if not args.skip_fresh_umap:
        ids, _ = stratified_sample(data.train_labels.numpy(), split.retain, split.forget, seed=0)
        features = predict(original, data.train_images[torch.as_tensor(ids)], device=device).features
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "features.npz"
            np.savez(path, features=features)
            cold = fresh_umap(path, Path(folder) / "numba")
            warm = fresh_umap(path, Path(folder) / "numba")
        figures["fresh_process_empty_numba_cache"] = cold
        figures["fresh_process_warm_numba_cache"] = warm
        print(f"first UMAP call, fresh process, empty numba cache: import umap {cold['import_s']:.1f} s + "
              f"fit {cold['fit_s']:.1f} s = {cold['import_s'] + cold['fit_s']:.1f} s (process {cold['process_s']:.1f} s)")
        print(f"first UMAP call, fresh process, warm numba cache:  import umap {warm['import_s']:.1f} s + "
              f"fit {warm['fit_s']:.1f} s = {warm['import_s'] + warm['fit_s']:.1f} s (process {warm['process_s']:.1f} s)")

    cache = InsightsCache()
    timings = {}
    for label, model in (("cold (first run in the process)", first_run), ("warm caches, new run", second_run),
                         ("warm caches, same run again", second_run)):
        start = time.perf_counter()
        insights = compute_insights(original, model, data, split, retrained=retrained, device=device, cache=cache)
        timings[label] = {"wall_s": time.perf_counter() - start, **{k: round(v, 3) for k, v in insights.seconds.items()}}
        stages = ", ".join(f"{k} {v:.1f}" for k, v in insights.seconds.items() if k != "total")
        print(f"all insights, {label}: {timings[label]['wall_s']:.1f} s  ({stages})")
    figures["compute_insights"] = timings
    figures["worst_case_auc"] = insights.privacy.worst_case_auc
    space, privacy = insights.features, insights.privacy
    for m, name in enumerate(insights.models):
        print(f"  {name:>9}: silhouette {space.silhouette[m]:+.3f}, centroid distance {space.centroid_distance[m]:.3f}, "
              f"forget shift {space.forget_shift[m]:.2f}, retain shift {space.retain_shift[m]:.2f}, "
              f"AUC forget-vs-test " + " ".join(f"{s} {a:.3f}" for s, a in zip(privacy.scores, privacy.auc[m, 0])))
    print(f"  worst-case AUC (unlearned vs Retrain on D_f): {privacy.worst_case_auc:.3f} ({privacy.worst_case_attack})")
    figures["load_average_end"] = os.getloadavg()
    print(f"load average at start {figures['load_average_start']}, at end {figures['load_average_end']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
