"""Validation check of WSS-CL's whole-class defaults on named class sets (no test data is read).

    OMP_WAIT_POLICY=PASSIVE python -m scripts.check_classes --sets 1+9 8+9 5+7 1+7 \\
        --variants '{"rows_steps": 0}' '{}' --seeds 0

For each set and variant (overrides of the set's defaults — `make_config("wsscl", forget_kind=...)`, "class" for
one class, "classes" for several; `{}` = the defaults) it
prints the tuner's validation proxy (`engine.tuning.validation_proxy`): UA and MIA-Efficacy on D_f, the share of
the forgotten classes' *validation* images still classified right, validation and retain-sample accuracy, and the
run's seconds. The sets named in docs/tuning.md as validation scenarios for the closing rows pass are 1+9 and 8+9
(never in the benchmark's sets).
"""
from __future__ import annotations

import argparse
import json

import torch

from engine import METHODS, load_dataset, load_original, make_config
from engine.tuning import _no_test_split, forgets_all, validation_proxy, withhold_test


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", required=True, help="class sets such as 1+9")
    parser.add_argument("--variants", nargs="+", default=["{}"], help="JSON overrides of the classes defaults")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args(argv)
    full = load_dataset()
    model, _ = load_original(full)
    data, cpu = withhold_test(full), torch.device("cpu")
    print("| set | variant | seed | UA | MIA | forgotten classes' validation acc. | validation acc. | retain acc. "
          "| forgets | s |\n|---|---|---|---|---|---|---|---|---|---|")
    for text in args.sets:
        split = _no_test_split(full, {"classes": sorted(int(c) for c in text.split("+"))}, model)
        for variant in args.variants:
            overrides = json.loads(variant)
            for seed in args.seeds:
                config = make_config("wsscl", forget_kind=split.spec.setting, **overrides)
                result = METHODS["wsscl"].unlearn(model, data, split, config, device=cpu, seed=seed)
                f = validation_proxy(result.model, data, split, cpu)
                print(f"| {text} | `{variant}` | {seed} | {f['UA']:.2f} | {f['MIA']:.2f} | "
                      f"{f['validation_forget_acc']:.2f} | {f['validation_acc']:.2f} | {f['retain_acc']:.2f} | "
                      f"{'yes' if forgets_all(f) else 'no'} | {result.seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
