"""Add the per-example audit to finished run folders (runs from before the audit existed, the guided tour's runs).

    python -m scripts.audit_runs app/tour/run                 # the quick audit (seconds): LiRA vs the shadows
    python -m scripts.audit_runs app/tour/run --deep          # and forgetting quality: 7 more seeds (+ Retrains)

The same engine calls the app makes (`engine.audit_live.quick_audit` with the insights, `engine.audit_run` for the
deep audit), so the files are exactly what the app would write.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (run.json + model.safetensors)")
    parser.add_argument("--deep", action="store_true", help="also the deep audit (N runs against Retrains)")
    parser.add_argument("--workspace", type=Path, default=Path("runs"), help="where built populations are kept")
    args = parser.parse_args(argv)

    import engine
    from engine import audit_live
    from engine.checkpoints import load_checkpoint
    from engine.runs import MODEL_NAME

    for run_dir in args.runs:
        record = engine.read_record(run_dir)
        data = engine.load_dataset(record.dataset)
        device = engine.resolve_device(None)
        split = engine.make_split(data, record.forget, split_seed=record.split_seed)
        model = load_checkpoint(run_dir / MODEL_NAME, device=device)[0]
        figures, arrays = audit_live.quick_audit(model, data, split, device=device, run_scores=record.metrics,
                                                 runs_root=args.workspace, split_seed=record.split_seed,
                                                 recipe=audit_live.recipe_of(data.name, record.original))
        audit_live.write_audit(run_dir, figures, arrays)
        lira = figures.get("lira") or {}
        print(f"{run_dir}: LiRA AUC {lira.get('auc')}, noise floor {figures.get('noise_floor')} "
              f"({figures['seconds']:.1f} s)", flush=True)
        if args.deep:
            request = engine.AuditRequest(run_dir=str(run_dir), run=engine.RunRequest(
                method=record.method, config=engine.make_config(record.method, forget_kind=record.forget.setting,
                                                                **record.config),
                forget=record.forget, seed=record.seed, dataset=record.dataset, original=record.original))
            figures = engine.audit_run(request, engine.Workspace(runs=args.workspace))
            deep = figures["deep"]
            print(f"{run_dir}: forgetting quality {deep['forgetting_quality']:.3f} over {deep['runs']} runs vs "
                  f"{deep['population_size']} Retrains ({deep['seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
