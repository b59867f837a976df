"""Build the guided tour's prepared runs: app/tour/run (WSS-CL with its defaults forgetting class 1, Trouser)
and app/tour/compare/<method>/ (a baseline, SalUn by default, on the same forget set with the same seed), each
with Retrain as reference and every insight, so a first visitor takes the tour, comparison step included, at once.

    python -m scripts.build_tour_run --overwrite              # both runs (what to do after new checkpoints)
    python -m scripts.build_tour_run --only compare --overwrite   # only the baseline(s), the WSS-CL run kept

≈ 30 s per run on the 2-core CPU with bf16 when the Retrain reference is shipped (60 s for both, 6 Dec). Uses the app's own pipeline (the same
code a click on Start runs), in a temporary run directory. Both runs share the seed, so their insights sample
the same points and place them in the same UMAP frame (fitted on the original model): the side-by-side view
can draw them in one picture.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

TOUR_ROOT = Path(__file__).resolve().parent.parent / "app" / "tour"
TOUR = TOUR_ROOT / "run"
COMPARE = TOUR_ROOT / "compare"


def spec():
    import engine

    return engine.ForgetSpec(classes=(1,))


def build(method: str, target: Path) -> dict:
    """One run through the app's pipeline, copied to ``target`` as a finished record owned by "tour"."""
    import engine
    from app import pipeline, store
    from app.jobs import manager

    request = pipeline.run_request(method, pipeline.default_config(method, "class"), spec())
    job = pipeline.submit_run("tour", request)
    done = manager().wait(job.id, 3600)
    assert done["status"] == "finished", done["error"]
    run = store.load_run(done["result"]["run_id"])
    assert run["insights"] == "ready", run.get("insights_error")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run["path"], target)
    record = engine.read_record(target)       # finished and settled: it carries no process details
    record.owner = "tour"
    engine.write_record(target, record)
    print(f"{target}: {method} UA {run['metrics']['UA']:.1f} RA {run['metrics']['RA']:.1f} "
          f"TA {run['metrics']['TA']:.1f} MIA {run['metrics']['MIA']:.1f} gap {run.get('avg_gap')} "
          f"in {run['seconds']:.1f} s")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--only", choices=("both", "tour", "compare"), default="both",
                        help="which prepared runs to build (default both: they must come from the same checkpoints)")
    parser.add_argument("--baselines", nargs="+", default=["salun"], help="methods for the comparison step")
    args = parser.parse_args()
    targets = ([("wsscl", TOUR)] if args.only in ("both", "tour") else []) + (
        [(m, COMPARE / m) for m in args.baselines] if args.only in ("both", "compare") else [])
    existing = [str(t) for _, t in targets if t.exists()]
    if existing and not args.overwrite:
        raise SystemExit(f"{', '.join(existing)} exist(s); pass --overwrite to rebuild")
    os.environ["UNLEARNING_LAB_RUNS"] = tempfile.mkdtemp(prefix="tour-runs-")
    os.environ.pop("UNLEARNING_LAB_FAST", None)
    from app import pipeline
    from app.jobs import manager

    reference = pipeline.submit_reference("tour", spec())       # None when a Retrain already exists
    if reference is not None:
        print("training the Retrain reference first …")
        assert manager().wait(reference.id, 3600)["status"] == "finished"
    if args.only == "both" and COMPARE.exists():
        shutil.rmtree(COMPARE)              # baselines from older checkpoints must not sit beside the new run
    for method, target in targets:
        build(method, target)
    manager().shutdown()


if __name__ == "__main__":
    main()
