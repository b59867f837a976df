"""What Ray costs and buys on this machine: start-up, per-task overhead, and a small bench grid serial vs Ray.

    python -m scripts.bench_executor [--cells 4] [--out docs/scaling.json]

All figures of one run come from the same minutes, so compare them as ratios when the machine is shared.
The grid is real: GA and FT (one epoch) on fashion-mini, class 1 and 3, the shipped original and Retrain
references, run (a) in-process with all threads, (b) in-process with 1 thread per cell, (c) on a local Ray
with 1 CPU per cell (2 cells at a time on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def grid_jobs(cpus: int):
    from engine.cli_bench import reference_for
    from engine.executor import Job, dataset_ref, open_dataset
    from engine.splits import ForgetSpec

    ref = dataset_ref("fashion-mini")
    dataset = open_dataset(ref)
    jobs = []
    for method in ("ga", "ft"):
        for cls in (1, 3):
            spec = ForgetSpec(classes=(cls,))
            reference, _ = reference_for(dataset, spec, 0)
            jobs.append(Job("engine.cli_bench:cell_job", {
                "dataset": ref, "checkpoint": None, "method": method, "forget": spec.to_dict(), "seed": 0,
                "reference": reference["scores"], "overrides": {"epochs": 1}, "split_seed": 0, "device": "cpu"},
                key=f"{method}-{cls}", cpus=cpus))
    return jobs


def timed_run(executor, jobs) -> tuple[float, list]:
    start = time.perf_counter()
    results = list(executor.run(jobs))
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return time.perf_counter() - start, results


def main() -> None:
    import torch

    from engine.executor import InlineExecutor, Job, comparable
    from engine.ray_executor import RayExecutor

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200, help="trivial tasks for the per-task overhead")
    parser.add_argument("--out", type=Path, default=Path("docs/scaling.json"))
    args = parser.parse_args()
    figures = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
               "load_average_start": os.getloadavg()}
    trivial = [Job("tests.scale_env:square", {"x": i}, key=str(i)) for i in range(args.tasks)]
    seconds, _ = timed_run(InlineExecutor(), trivial)
    figures["inline_per_task_ms"] = 1000 * seconds / args.tasks
    ray = RayExecutor(num_cpus=os.cpu_count())
    ray.start()
    figures["ray_start_s"] = ray.start_seconds
    seconds, _ = timed_run(ray, trivial[:2])   # workers warm
    figures["ray_first_tasks_s"] = seconds
    seconds, _ = timed_run(ray, trivial)
    figures["ray_per_task_ms"] = 1000 * seconds / args.tasks
    grid = {}
    serial_s, serial = timed_run(InlineExecutor(), grid_jobs(torch.get_num_threads()))
    grid["inline_all_threads_s"] = serial_s
    one_s, one = timed_run(InlineExecutor(), grid_jobs(1))
    grid["inline_1_thread_s"] = one_s
    ray_s, on_ray = timed_run(ray, grid_jobs(1))
    grid["ray_1_cpu_per_cell_s"] = ray_s
    grid["cells"] = len(serial)
    grid["cell_seconds_1_thread"] = {r.job.key: r.seconds for r in one}
    by_key = {r.job.key: comparable(r.value) for r in one}
    grid["ray_rows_equal_inline_1_thread"] = all(by_key[r.job.key] == comparable(r.value) for r in on_ray)
    grid["speedup_ray_vs_inline_all_threads"] = serial_s / ray_s
    grid["speedup_ray_vs_inline_1_thread"] = one_s / ray_s
    figures["grid"] = grid
    figures["load_average_end"] = os.getloadavg()
    ray.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
