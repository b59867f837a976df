"""Grid-search each method's learning rate (and a few WSS-CL knobs) on fashion-mini, selecting on the
validation hold-out only — never on the test set.

    .venv/bin/python -m scripts.tune_methods [--methods ...] [--worker a]   # resumable; workers may run in parallel
    .venv/bin/python -m scripts.tune_methods --report               # rewrite docs/tuning.md from the cache

Selection score ("validation gap", lower is better), a Retrain-free proxy of Avg. Gap: a perfect
unlearner makes D_f look like data it never saw, so the targets come from held-out data:
  - class-wise: UA* = 100, MIA* = 100 (Retrain never predicts a class it never saw);
  - random: UA* = 100 − accuracy on half B of the validation hold-out, MIA* = MIA-Efficacy of B,
    with the attack trained on members = retain samples, non-members = the other half A;
  - plus the drop (if any) of validation accuracy and of accuracy on a retain sample against θ_o.
  score = mean(|UA − UA*|, |MIA − MIA*|, val drop, retain drop).
Each method gets one default for both scenarios: the grid point with the lowest mean score over the
scenarios it was run on — WSS-CL on {class 3, random 10 % (forget seed 0)}, the baselines (to fit the
shared machine's budget) on random 10 % only — seed 0. WSS-CL points scoring over twice the best on
class 3 are not run on random 10 % (successive halving).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from engine import METHODS, ForgetSpec, load_dataset, load_original, make_config, make_split, predict
from engine.checkpoints import write_json_atomic
from engine.metrics import accuracy
from engine.privacy import mia_efficacy, true_label_confidence

CACHE = Path("runs/tuning/results.json")
DOC = Path("docs/tuning.md")
SCENARIOS = {"class 3": ForgetSpec(classes=(3,)), "random 10%": ForgetSpec(fraction=0.1, seed=0)}
# The 2-core machine was shared with three other engineers' jobs (load ≈ 9): the grid is small on purpose.
LR = {"salun": (0.003, 0.01, 0.03), "rl": (0.01, 0.03), "ft": (0.02, 0.05), "l1_sparse": (0.02, 0.05),
      "ga": (5e-4, 2e-3), "scrub": (0.005, 0.02)}
WSSCL = [{"epochs": 2, "stage1_lr": s1, "forget_lr": fl} for s1, fl in ((0.02, 3e-3), (0.02, 1e-2), (0.05, 3e-3))]
# added after the first random-10 % result showed stage 1 at lr 0.02 wrecks a random forget set (val 63 %)
WSSCL += [{"epochs": 2, "stage1_lr": s1, "forget_lr": 3e-3, "retain_fraction": 0.5} for s1 in (0.005, 0.002)]
BASELINE_SCENARIOS = ("random 10%",)  # the shared CPU was saturated: baselines are tuned on the harder scenario only


def grid() -> list[tuple[str, dict]]:
    points = [(name, {"lr": lr}) for name, lrs in LR.items() for lr in lrs]
    return [("wsscl", point) for point in WSSCL] + points


def validation_proxy(model, dataset, split, device) -> dict:
    """UA, MIA on D_f and their held-out targets, validation and retain-sample accuracy (no test data)."""
    images, labels = dataset.train_images, dataset.train_labels.numpy()

    def outputs(indices):
        out = predict(model, images[torch.as_tensor(indices)], device=device)
        return out.predictions, true_label_confidence(out.probabilities, labels[indices])

    rng = np.random.default_rng(0)
    validation = rng.permutation(split.validation)
    members = split.retain[:1000]
    if split.forget_classes:
        attack_non_members, counterpart = validation, None
    else:
        attack_non_members, counterpart = validation[: len(validation) // 2], validation[len(validation) // 2:]
    forget_pred, forget_conf = outputs(split.forget)
    member_pred, member_conf = outputs(members)
    non_pred, non_conf = outputs(attack_non_members)
    figures = {"UA": 100 - accuracy(forget_pred, labels[split.forget]),
               "MIA": mia_efficacy(member_conf, non_conf, forget_conf),
               "retain_acc": accuracy(member_pred, labels[members])}
    if counterpart is None:
        figures.update(UA_target=100.0, MIA_target=100.0, validation_acc=accuracy(non_pred, labels[validation]))
    else:
        pred, conf = outputs(counterpart)
        figures.update(UA_target=100 - accuracy(pred, labels[counterpart]),
                       MIA_target=mia_efficacy(member_conf, non_conf, conf),
                       validation_acc=accuracy(np.concatenate([non_pred, pred]),
                                               labels[np.concatenate([attack_non_members, counterpart])]))
    return figures


def score(figures: dict, original: dict) -> float:
    return float(np.mean([abs(figures["UA"] - figures["UA_target"]), abs(figures["MIA"] - figures["MIA_target"]),
                          max(0.0, original["validation_acc"] - figures["validation_acc"]),
                          max(0.0, original["retain_acc"] - figures["retain_acc"])]))


def key(scenario: str, name: str, point: dict) -> str:
    return f"{scenario}|{name}|{json.dumps(point, sort_keys=True)}"


def read_caches() -> dict:
    """Every cache file (one per worker process) merged."""
    merged = {}
    for path in sorted(CACHE.parent.glob("results*.json")):
        merged.update(json.loads(path.read_text()))
    return merged


def rejected(cache: dict, point: dict) -> bool:
    """Successive halving for WSS-CL: a point scoring over twice the best on class 3 is not run again."""
    scores = [cache[key("class 3", "wsscl", p)]["score"] for p in WSSCL if key("class 3", "wsscl", p) in cache]
    mine = cache.get(key("class 3", "wsscl", point))
    return bool(scores) and mine is not None and mine["score"] > 2 * min(scores)


def run_grid(methods: list[str] | None, cache_path: Path = CACHE) -> dict:
    cache = read_caches()
    dataset, device = load_dataset("fashion-mini"), torch.device("cpu")
    model, _ = load_original(dataset, device=device)
    for scenario, spec in SCENARIOS.items():
        split = make_split(dataset, spec)
        base = f"{scenario}|original"
        if base not in cache:
            cache[base] = validation_proxy(model, dataset, split, device)
        for name, point in grid():
            if (methods and name not in methods) or key(scenario, name, point) in cache:
                continue
            if name != "wsscl" and scenario not in BASELINE_SCENARIOS:
                continue
            if name == "wsscl" and scenario != "class 3" and rejected(cache, point):
                continue
            result = METHODS[name].unlearn(model, dataset, split, make_config(name, **point), device=device, seed=0)
            figures = validation_proxy(result.model, dataset, split, device)
            figures.update(seconds=result.seconds, score=score(figures, cache[base]))
            cache[key(scenario, name, point)] = figures
            write_json_atomic(cache_path, cache, overwrite=True)
            print(f"{scenario:11s} {name:9s} {point} score {figures['score']:.2f} UA {figures['UA']:.1f} "
                  f"MIA {figures['MIA']:.1f} val {figures['validation_acc']:.1f} {result.seconds:.1f}s", flush=True)
    return cache


def report(cache: dict) -> str:
    lines = ["# Tuning the methods' defaults on fashion-mini", "",
             "Written by `python -m scripts.tune_methods` (see its docstring for the selection score). "
             "Selection uses only the validation hold-out, the forget set and a retain sample — never the test set. "
             "One seed (0); scenarios: class 3 and random 10 % (forget seed 0). Times are on the shared 2-core CPU "
             "(other jobs were running: absolute seconds are inflated, use them only to compare rows).", "",
             "| method | grid point | class 3 score | random 10% score | mean | UA (c / r) | MIA (c / r) | "
             "val acc (c / r) | seconds (c / r) | chosen |", "|---|---|---|---|---|---|---|---|---|---|"]
    chosen = {}
    for name in dict.fromkeys(n for n, _ in grid()):
        rows = []
        for _, point in (p for p in grid() if p[0] == name):
            cells = [cache.get(key(s, name, point)) for s in SCENARIOS]
            if all(c is None for c in cells):
                continue
            rows.append((float(np.mean([c["score"] for c in cells if c])), point, cells))
        needed = list(SCENARIOS) if name == "wsscl" else list(BASELINE_SCENARIOS)
        eligible = [r for r in rows if all(r[2][list(SCENARIOS).index(s)] is not None for s in needed)]
        if not eligible:
            continue
        best = min(eligible, key=lambda r: r[0])
        chosen[name] = best[1]
        for mean, point, cells in rows:
            def pair(field, digits=1):
                return " / ".join("–" if c is None else f"{c[field]:.{digits}f}" for c in cells)
            lines.append(f"| {name} | `{json.dumps(point)}` | {pair('score', 2).replace(' / ', ' | ')} | {mean:.2f} | "
                         f"{pair('UA')} | {pair('MIA')} | {pair('validation_acc')} | {pair('seconds')} | "
                         f"{'**yes**' if point is best[1] else ''} |")
    lines += ["", "A point is eligible only with a score on every scenario its method is tuned on (WSS-CL: both; "
              "baselines: random 10 %). Chosen defaults (written into the config classes in engine/methods/):", ""]
    lines += [f"- `{name}`: `{json.dumps(point)}`" for name, point in chosen.items()]
    for scenario in SCENARIOS:
        base = cache.get(f"{scenario}|original")
        if base:
            lines.append(f"- original model, {scenario}: " + ", ".join(f"{k} {v:.1f}" for k, v in base.items()))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", help="only these methods")
    parser.add_argument("--report", action="store_true", help="only rewrite docs/tuning.md from the cache")
    parser.add_argument("--worker", default="", help="cache-file suffix, so several processes can share the grid")
    args = parser.parse_args()
    start = time.perf_counter()
    if not args.report:
        run_grid(args.methods, CACHE.with_name(f"results{'-' + args.worker if args.worker else ''}.json"))
    cache = read_caches()
    DOC.write_text(report(cache))
    print(f"wrote {DOC} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
