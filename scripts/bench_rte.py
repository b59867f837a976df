"""Run time of WSS-CL against Retrain on the same machine, one process, nothing else running (issue 3's RTE bars).

    OMP_WAIT_POLICY=PASSIVE python -m scripts.bench_rte

Prints WSS-CL's seconds (its defaults for each setting, saliency pass included) for class 3 and random 10 %,
seeds 0 and 1, then one Retrain on the random-10 % retain set (9,000 images, the recipe of the original model).
"""
import time

import torch

from engine import ForgetSpec, METHODS, load_dataset, load_original, make_config, make_split, retrain


def main() -> None:
    data = load_dataset()
    model, _ = load_original(data)
    cpu = torch.device("cpu")
    for spec in (ForgetSpec(classes=(3,)), ForgetSpec(fraction=0.1)):
        split = make_split(data, spec)
        for seed in (0, 1):
            result = METHODS["wsscl"].unlearn(model, data, split, make_config("wsscl", forget_kind=spec.setting),
                                              device=cpu, seed=seed)
            print(f"wsscl {spec.describe()} seed {seed}: {result.seconds:.2f} s", flush=True)
    split = make_split(data, ForgetSpec(fraction=0.1))
    start = time.perf_counter()
    retrain(data, split, device=cpu, seed=0)
    print(f"retrain random 10%: {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
