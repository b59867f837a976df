"""WSS-CL in the self-supervised setting (docs/method.md §2, last paragraph), a small honest version on fashion-mini.

    .venv/bin/python -m scripts.bench_selfsupervised                 # ≈ 10 min on the 2-core CPU
    .venv/bin/python -m scripts.bench_selfsupervised --epochs 2 --seeds 0   # a quick look

1. The "original": a SmallCNN backbone trained with SimCLR on the training set D (labels never read), then a
   linear probe fitted on its frozen features of D (`engine.selfsupervised`).
2. Per scenario, the exact answer in this setting — Retrain: SimCLR again from scratch on D_r (same epochs,
   same seed) and a probe fitted on D_r.
3. WSS-CL and SalUn (the strongest saliency baseline) on the SimCLR model, with Avg. Gap to that Retrain; the
   unlearned model is evaluated exactly like the supervised bench (`engine.evaluate`: UA, RA, TA, MIA-Efficacy).
   ``METHOD:ssl`` runs a method with its config's ``SELF_SUPERVISED`` changes on top of its defaults for the forget
   setting (WSS-CL: the repair refits the probe only); a plain name runs the supervised defaults.
Writes docs/selfsupervised.md and docs/selfsupervised.json; trained encoders are cached in runs/ssl/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from engine import (METHODS, avg_gap, device_name, evaluate, fit_linear_probe, load_dataset, make_config, make_split,
                    mean_and_std, resolve_device, train_simclr, training_indices, versions)
from engine.cli_bench import parse_scenario

CACHE = Path("runs/ssl")


def simclr_model(dataset, indices, tag: str, *, epochs: int, device, seed: int = 0):
    """SimCLR backbone + linear probe on ``indices``; (model, seconds). Cached by tag/epochs/seed."""
    path = CACHE / f"{tag}-e{epochs}-s{seed}.pt"
    start = time.perf_counter()
    from engine.models import build_model, spec_for
    model = build_model(spec_for(dataset, "small-cnn")).to(device)
    if path.exists():
        saved = torch.load(path, map_location=device)
        model.load_state_dict(saved["state"])
        return model.eval(), saved["seconds"]
    encoder = train_simclr(dataset, indices, device=device, seed=seed, epochs=epochs)
    model = fit_linear_probe(encoder, dataset, indices, device=device, seed=seed)
    seconds = time.perf_counter() - start
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save({"state": model.state_dict(), "seconds": seconds}, path)
    return model.eval(), seconds


def fmt(values) -> str:
    mean, std = mean_and_std(values)
    return f"{mean:.2f} ± {std:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15, help="SimCLR epochs (original and Retrain alike)")
    parser.add_argument("--scenarios", nargs="+", default=["class:3", "random:0.1"])
    parser.add_argument("--methods", nargs="+", default=["wsscl:ssl", "wsscl", "salun"],
                        help="METHOD (supervised defaults) or METHOD:ssl (with its SELF_SUPERVISED changes)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="docs/selfsupervised")
    args = parser.parse_args()
    device = resolve_device(args.device)
    dataset = load_dataset("fashion-mini")
    start = time.perf_counter()

    original, original_seconds = simclr_model(dataset, training_indices(dataset), "original", epochs=args.epochs,
                                              device=device)
    rows = []
    for text in args.scenarios:
        for spec in parse_scenario(text):
            split = make_split(dataset, spec)
            tag = f"retrain-{spec.kind}-" + ("-".join(map(str, spec.classes)) if spec.classes else f"{spec.fraction}")
            reference_model, reference_seconds = simclr_model(dataset, split.retain, tag, epochs=args.epochs,
                                                              device=device)
            reference = evaluate(reference_model, dataset, split, device=device).scores()
            scenario = spec.describe(dataset.classes)
            rows.append({"scenario": scenario, "method": "Retrain (SimCLR + probe on D_r)", "seed": 0, **reference,
                         "avg_gap": 0.0, "seconds": reference_seconds})
            before = evaluate(original, dataset, split, device=device).scores()
            rows.append({"scenario": scenario, "method": "original (no unlearning)", "seed": 0, **before,
                         "avg_gap": avg_gap(before, reference), "seconds": 0.0})
            for entry in args.methods:
                method, _, variant = entry.partition(":")
                info = METHODS[method]
                changes = info.config_class.SELF_SUPERVISED if variant == "ssl" else {}
                label = info.label + (f" — SSL setting ({', '.join(f'{k}={v}' for k, v in changes.items())})"
                                      if variant == "ssl" else " — supervised defaults" if
                                      info.config_class.SELF_SUPERVISED else "")
                for seed in args.seeds:
                    config = make_config(method, forget_kind=spec.setting, **changes)
                    result = info.unlearn(original, dataset, split, config, device=device, seed=seed)
                    scores = evaluate(result.model, dataset, split, device=device).scores()
                    rows.append({"scenario": scenario, "method": label, "seed": seed, **scores,
                                 "avg_gap": avg_gap(scores, reference), "seconds": result.seconds,
                                 "config": config.to_dict()})
                    print(f"{scenario} {entry} seed {seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items())
                          + f", gap {rows[-1]['avg_gap']:.2f}, {result.seconds:.1f} s", flush=True)

    command = "python -m scripts.bench_selfsupervised " + " ".join(sys.argv[1:])
    lines = ["# WSS-CL in the self-supervised setting (fashion-mini, SimCLR + linear probe)", "",
             f"Written by `{command.strip()}` on {device_name(device)}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"versions {json.dumps(versions())}. See the script's docstring for the protocol. The SimCLR original "
             f"took {original_seconds:.0f} s to train ({args.epochs} epochs + probe).", "",
             "| scenario | method | UA | RA | TA | MIA-Efficacy | Avg. Gap ↓ | seconds | runs |",
             "|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["method"]), []).append(row)
    for (scenario, method), group in groups.items():
        cells = [fmt([r[k] for r in group]) for k in ("UA", "RA", "TA", "MIA", "avg_gap")]
        lines.append(f"| {scenario} | {method} | " + " | ".join(cells) +
                     f" | {fmt([r['seconds'] for r in group])} | {len(group)} |")
    out = Path(args.out)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"command": command, "device": device_name(device),
                                                    "epochs": args.epochs, "rows": rows}, indent=1))
    print("\n".join(lines))
    print(f"wrote {out.with_suffix('.md')} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
