"""How hard stage 3 pushes: the forgotten classes' confidence on D_f against a Retrain's (validation split only).

    OMP_WAIT_POLICY=PASSIVE python -m scripts.calibrate_rows --sets 1+9 8+9 --lrs 0.05 0.1 0.15 0.2 0.3  # several
    OMP_WAIT_POLICY=PASSIVE python -m scripts.calibrate_rows --sets 3 5 --lrs 0.005 0.01 0.02 0.05 0.1  # one class

For each class set: a Retrain (seed 0) on the split with the test set withheld, and one WSS-CL run at the set's
defaults with stage 3 off; then stage 3 (`engine.methods.wsscl.suppress_forgotten_rows`, ``--steps`` full-batch
steps) at each learning rate on a copy of that run — what the method would have done, since stage 3 comes last and
draws no randomness. Printed: φ (logit-scaled confidence in the true label, the per-example audit's statistic,
`engine.audit.logit_scaled_confidence`) over D_f — median and 10 % / 90 % quantiles — for the Retrain and each
pass, and the validation proxy's accuracy (stage 3 can only raise it). The learning rate whose median φ is closest to
the Retrains' over the sets is the one to choose, per setting — one class and several classes have different stages
1–2, so a rate calibrated for one does not hold for the other (docs/tuning.md).
"""
from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from engine import METHODS, load_dataset, load_original, make_config
from engine.audit import logit_scaled_confidence
from engine.methods.wsscl import suppress_forgotten_rows
from engine.training import DeviceImages, predict
from engine.tuning import _no_test_split, validation_proxy, withhold_test


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", required=True, help="class sets such as 3 or 1+9")
    parser.add_argument("--lrs", nargs="+", type=float, default=[0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--targets", nargs="*", type=float, default=[],
                        help="also: each lr followed by the bias shift to this median φ (`rows_target`)")
    args = parser.parse_args(argv)
    full = load_dataset()
    model, _ = load_original(full)
    data, cpu = withhold_test(full), torch.device("cpu")
    labels = full.train_labels.numpy()

    def phi(net, indices):
        out = predict(net, full.train_images[torch.as_tensor(indices)], device=cpu)
        return logit_scaled_confidence(out.logits, labels[indices])

    def quantiles(values):
        return f"{np.median(values):.2f} ({np.quantile(values, 0.1):.2f} / {np.quantile(values, 0.9):.2f})"

    passes = ([(lr, None) for lr in args.lrs] if args.steps else []) + \
        [(lr, target) for target in args.targets for lr in args.lrs]
    distance = {key: [] for key in passes}
    print("| set | model | φ on D_f: median (10 % / 90 %) | validation acc. |\n|---|---|---|---|")
    for text in args.sets:
        classes = tuple(sorted(int(c) for c in text.split("+")))
        split = _no_test_split(full, {"classes": list(classes)}, model)
        retrain = METHODS["retrain"].unlearn(model, data, split, make_config("retrain"), device=cpu, seed=0).model
        target = phi(retrain, split.forget)
        print(f"| {text} | Retrain (seed 0) | {quantiles(target)} | "
              f"{validation_proxy(retrain, data, split, cpu)['validation_acc']:.2f} |", flush=True)
        run = METHODS["wsscl"].unlearn(model, data, split, make_config("wsscl", forget_kind=split.spec.setting,
                                                                        rows_steps=0, rows_target=0.0),
                                       device=cpu, seed=0).model
        forget = DeviceImages.from_indices(full, split.forget, cpu)
        for lr, shift_to in [(0.0, None), *passes]:
            net = copy.deepcopy(run)
            if lr:
                suppress_forgotten_rows(net, forget, classes, args.steps, lr, target=shift_to)
                distance[(lr, shift_to)].append(abs(float(np.median(phi(net, split.forget)) - np.median(target))))
            label = ("WSS-CL, no stage 3" if not lr else "WSS-CL, stage 3 bias only" if not args.steps
                     else f"WSS-CL, stage 3 {args.steps} steps at lr {lr:g}")
            label += f", bias to median φ {shift_to:g}" if shift_to is not None else ""
            print(f"| {text} | {label} | {quantiles(phi(net, split.forget))} | "
                  f"{validation_proxy(net.eval(), data, split, cpu)['validation_acc']:.2f} |", flush=True)
    print("\n| lr | bias to median φ | mean distance of the median φ to the Retrain's, over the sets |\n|---|---|---|")
    for (lr, shift_to), values in distance.items():
        print(f"| {lr:g} | {'—' if shift_to is None else f'{shift_to:g}'} | {np.mean(values):.2f} |")


if __name__ == "__main__":
    main()
