"""Per forget set: a bench JSON's rows (`python -m engine bench --out X` writes X.json) as one line per set ×
method, with the worst run beside the mean — what a bar of the form "every run UA ≥ 99" needs.

    .venv/bin/python -m scripts.bench_sets docs/benchmarks-classes.json [--names]

Columns: UA, RA, TA, MIA-Efficacy, forgotten classes' test accuracy (whole classes only), Avg. Gap (mean ± std over
the set's runs), the lowest UA and highest forgotten-class test accuracy of any run, and run seconds (mean, max).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

def describe(forget: dict, names: tuple[str, ...] | None) -> str:
    if forget.get("classes"):
        return " + ".join(names[c] if names else str(c) for c in forget["classes"])
    if forget.get("fraction"):
        return f"random {forget['fraction']:.0%} (seed {forget.get('seed', 0)})"
    return f"{len(forget.get('sample_ids') or [])} chosen samples"


def fmt(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.2f}"


def table(rows: list[dict], names: tuple[str, ...] | None = None, labels: dict | None = None) -> str:
    """The Markdown table; ``names`` = the dataset's class names (indices when None)."""
    labels = labels or {}
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault((json.dumps(row["forget"], sort_keys=True), row["method"]), []).append(row)
    lines = ["| forget set | method | UA | RA | TA | MIA | forgotten-class TA | Avg. Gap ↓ | lowest UA | "
             "highest forgotten-class TA | s (mean / max) | runs |", "|" + "---|" * 12]
    for (forget, method), group in groups.items():
        forgotten = [r.get("forget_test_acc") for r in group]
        whole_classes = all(v is not None and np.isfinite(v) for v in forgotten)
        seconds = [r["seconds"] for r in group]
        cells = [describe(json.loads(forget), names), labels.get(method, method)]
        cells += [fmt([r[k] for r in group]) for k in ("UA", "RA", "TA", "MIA")]
        cells += [fmt(forgotten) if whole_classes else "—", fmt([r["avg_gap"] for r in group]),
                  f"{min(r['UA'] for r in group):.2f}", f"{max(forgotten):.2f}" if whole_classes else "—",
                  f"{np.mean(seconds):.1f} / {max(seconds):.1f}", str(len(group))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_json", type=Path)
    parser.add_argument("--names", action="store_true", help="class names instead of indices")
    parser.add_argument("--dataset", default="fashion-mini", help="whose class names --names uses")
    args = parser.parse_args()
    from engine import load_dataset
    from engine.methods import METHODS

    report = json.loads(args.bench_json.read_text())
    labels = {name: info.label for name, info in METHODS.items()}
    names = tuple(load_dataset(args.dataset).classes) if args.names else None
    print(table(report["rows"], names, labels), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
