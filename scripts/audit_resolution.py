"""What the audit metrics can resolve with N models: the score of a *perfect* unlearner (U and R drawn from
the same distribution) and of a fully distinguishable one, for several N. Writes a JSON table.

    python -m scripts.audit_resolution --json docs/audit-resolution.json

A perfect unlearner scores below 1 at small N because the best of many threshold rules on 2N samples
finds chance differences; this table is the ceiling a real method can be compared against.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from engine.audit import epsilon_limit, forgetting_quality, largest_finite_epsilon, lira_audit


def _null_lira_auc(num_shadows: int, num_examples: int, rng) -> float:
    """AUC of the LiRA test when the unlearned model's φ is drawn like a never-trained shadow's."""
    centre = rng.normal(0, 3, num_examples)
    shadow_in = rng.random((num_shadows, num_examples)) < 0.5
    shadows = centre + rng.normal(0, 1, shadow_in.shape) + 3.0 * shadow_in
    return lira_audit(centre + rng.normal(0, 1, num_examples), shadows, shadow_in).auc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    for num_runs in (3, 4, 8, 16, 32, 64, 128):
        started = time.perf_counter()
        row = {"N": num_runs, "largest_finite_epsilon": largest_finite_epsilon(num_runs),
               "epsilon_limit": epsilon_limit(num_runs)}
        for scale in (0.3, 1.0, 3.0):        # the rule window is fixed in φ units, so the spread matters
            same = forgetting_quality(rng.normal(0, scale, (num_runs, args.examples)),
                                      rng.normal(0, scale, (num_runs, args.examples)))
            row[f"perfect_unlearner_sigma{scale}"] = same.score
        shape = (num_runs, args.examples)
        apart = forgetting_quality(rng.normal(6, 1, shape), rng.normal(0, 1, shape))
        row["separated_by_6_sigma"] = apart.score
        row["seconds"] = round(time.perf_counter() - started, 2)
        rows.append(row)
    lira = {m: _null_lira_auc(m, args.examples, rng) for m in (4, 8, 16, 64)}
    out = {"rows": rows, "null_lira_auc_by_shadows": lira, "examples": args.examples, "seed": args.seed,
           "machine": platform.processor() or platform.machine(), "numpy": np.__version__}
    with open(args.json, "w") as handle:
        json.dump(out, handle, indent=1)


if __name__ == "__main__":
    main()
