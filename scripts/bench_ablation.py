"""What each stage of WSS-CL does, per forget setting: the ablation table of docs/benchmarks-ablation.md.

    .venv/bin/python -m scripts.bench_ablation                      # ≈ 25 min on the 2-core CPU
    .venv/bin/python -m scripts.bench_ablation --settings class --variants default guidance=none

Every variant is WSS-CL at its defaults for the setting with one part switched off (``--set`` of
``python -m engine bench``, which this runs once per setting × variant; its cell cache makes a rerun resume):

- ``guidance=none``: no saliency guidance, every weight moves fully;
- ``stage1_lr=0``: no stage 1 (the KL-to-pseudo-label pass over D_f);
- ``contrastive_weight=0``: the contrastive loss dropped from the stage-2 forget rounds (what is left of them is
  the KL term, where the setting's defaults carry one);
- ``contrastive_weight=0,stage2_kl=0``: no stage-2 forget rounds at all;
- ``retain_lr=0``: no repair (the retain rounds skipped);
- ``rows_steps=0``: no stage 3 (the forgotten classes' head rows; whole classes only) — also ``rows_target=0``,
  since one class's stage 3 is a bias shift rather than a rows pass.

Settings and their forget sets (run seeds 0–2): single class (classes 1, 3, 6 paired with the seeds), several
classes (0+6, 0+2+6, 1+5+8 paired with the seeds — none of them a tuning scenario), random 10 % (forget seed
0), hand-picked samples (the two shipped sets × the three seeds). Mean ± std over the runs, Avg. Gap against each
forget set's Retrain.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SETTINGS = {
    "class": (["class:1,3,6"], True),
    "classes": (["class:0+6,0+2+6,1+5+8"], True),
    "random": (["random:0.1"], False),
    "samples": (["samples:one-class-100,mixed-200"], False),
}
LABELS = {"class": "single class", "classes": "several classes", "random": "random 10 %", "samples": "samples"}
VARIANTS = {
    "default": [],
    "guidance=none": ["guidance=none"],
    "stage1_lr=0": ["stage1_lr=0"],
    "contrastive_weight=0": ["contrastive_weight=0"],
    "contrastive_weight=0,stage2_kl=0": ["contrastive_weight=0", "stage2_kl=0"],
    "retain_lr=0": ["retain_lr=0"],
    # stage 3 off: no rows pass and no bias shift (one class's stage 3 is the shift, `rows_target`)
    "rows_steps=0": ["rows_steps=0", "rows_target=0"],
}
# variants that switch off something only some settings' defaults have
ONLY = {"rows_steps=0": ("class", "classes")}
MEANING = {
    "default": "WSS-CL, the setting's defaults",
    "guidance=none": "no saliency guidance",
    "stage1_lr=0": "no stage 1",
    "contrastive_weight=0": "no contrastive loss",
    "contrastive_weight=0,stage2_kl=0": "no stage-2 forget rounds",
    "retain_lr=0": "no repair",
    "rows_steps=0": "no stage 3 (forgotten rows)",
}


def run(setting: str, variant: str, seeds: list[int], out: Path) -> dict:
    scenarios, paired = SETTINGS[setting]
    command = [sys.executable, "-m", "engine", "bench", "--methods", "wsscl", "--device", "cpu",
               "--scenarios", *scenarios, "--seeds", *map(str, seeds), "--out", str(out), "--force"]
    command += ["--paired"] if paired else []
    for item in VARIANTS[variant]:
        command += ["--set", f"wsscl.{item}"]
    print("$ " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.with_suffix(".json").read_text())


def fmt(values) -> str:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return "—"
    return f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, default=Path("runs/bench/ablation"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks-ablation"))
    args = parser.parse_args()
    start = time.perf_counter()
    # a partial rerun (some settings or variants) replaces its cells in the last full table and keeps the rest
    previous = json.loads(args.out.with_suffix(".json").read_text()) if args.out.with_suffix(".json").is_file() \
        else {"device": "", "results": {}}
    results, device = dict(previous["results"]), previous["device"]
    for setting in args.settings:
        for variant in args.variants:
            if setting not in ONLY.get(variant, (setting,)):
                continue
            report = run(setting, variant, args.seeds, args.runs / f"{setting}-{variant}")
            device = report["device"]
            rows = [r for r in report["rows"] if r["method"] == "wsscl"]
            results[f"{variant}/{setting}"] = {"command": report["command"], "rows": rows,
                                               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    lines = ["# What each stage of WSS-CL does — ablation per forget setting", "",
             f"Written by `{' '.join(['python -m scripts.bench_ablation', *sys.argv[1:]])}` on {device}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({time.perf_counter() - start:.0f} s with the "
             "cells it ran; cached cells are reused; rows it did not rerun are kept from the previous table, each "
             "row's command and time are in the JSON). Protocol: the script's docstring. Mean ± std over the runs; "
             "Avg. Gap against each forget set's Retrain; forgotten-class test accuracy only for whole classes.", "",
             "| setting | variant | UA | RA | TA | MIA | forgotten-class test acc. | Avg. Gap ↓ | s | runs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for setting in SETTINGS:
        for variant in VARIANTS:
            if f"{variant}/{setting}" not in results:
                continue
            rows = results[f"{variant}/{setting}"]["rows"]
            cells = [fmt([r[k] for r in rows]) for k in ("UA", "RA", "TA", "MIA")]
            forgotten = fmt([r.get("forget_test_acc", float("nan")) for r in rows]) if setting in ("class", "classes") \
                else "—"
            gap = fmt([r["avg_gap"] for r in rows])
            bold = "**" if variant == "default" else ""
            lines.append(f"| {LABELS[setting]} | {MEANING[variant]} (`{variant}`) | " + " | ".join(cells)
                         + f" | {forgotten} | {bold}{gap}{bold} | {fmt([r['seconds'] for r in rows])} | {len(rows)} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"device": device, "results": results}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
