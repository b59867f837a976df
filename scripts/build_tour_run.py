"""Build the guided tour's prepared run (app/tour/run): WSS-CL with its defaults forgetting class 1 (Trouser),
with Retrain as reference and every insight, so a first visitor can take the tour at once.

    python -m scripts.build_tour_run            # ≈ 1 min on the 2-core CPU when the Retrain reference is shipped
    python -m scripts.build_tour_run --overwrite

Uses the app's own pipeline (the same code a click on Start runs), in a temporary run directory.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

TOUR = Path(__file__).resolve().parent.parent / "app" / "tour" / "run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if TOUR.exists() and not args.overwrite:
        raise SystemExit(f"{TOUR} exists; pass --overwrite to rebuild it")
    os.environ["UNLEARNING_LAB_RUNS"] = tempfile.mkdtemp(prefix="tour-runs-")
    os.environ.pop("UNLEARNING_LAB_FAST", None)
    import engine
    from app import pipeline, store
    from app.jobs import manager

    spec = engine.ForgetSpec(classes=(1,))
    reference = pipeline.submit_reference("tour", spec)       # None when a Retrain already exists
    if reference is not None:
        print("training the Retrain reference first …")
        assert manager().wait(reference.id, 3600)["status"] == "finished"
    job = pipeline.submit_run("tour", pipeline.run_request("wsscl", pipeline.default_config("wsscl", "class"), spec))
    done = manager().wait(job.id, 3600)
    assert done["status"] == "finished", done["error"]
    run = store.load_run(done["result"]["run_id"])
    assert run["insights"] == "ready", run.get("insights_error")
    if TOUR.exists():
        shutil.rmtree(TOUR)
    shutil.copytree(run["path"], TOUR)
    record = engine.read_record(TOUR)       # finished and settled: it carries no process details
    record.owner = "tour"
    engine.write_record(TOUR, record)
    print(f"{TOUR}: UA {run['metrics']['UA']:.1f} RA {run['metrics']['RA']:.1f} TA {run['metrics']['TA']:.1f} "
          f"MIA {run['metrics']['MIA']:.1f} gap {run.get('avg_gap')} in {run['seconds']:.1f} s")
    manager().shutdown()


if __name__ == "__main__":
    main()
