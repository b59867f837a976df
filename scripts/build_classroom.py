"""Build the classroom's prepared runs: each single class with WSS-CL and SalUn at their defaults (seed 0, the
real settings), so the first student of a lecture gets a shared result at once instead of a queue.

    python -m scripts.build_classroom                         # every class, both methods, into prepared/
    python -m scripts.build_classroom --classes 0 2 --methods wsscl

Runs through the app's own pipeline (the same code a click on Start runs) in a temporary run folder, then copies
each finished run, insights included, to <out>/<dataset>/<method>-class-<c>/ as a record owned by "classroom".
The app reads that folder as an extra read-only run root ($UNLEARNING_LAB_PREPARED, default ./prepared): a
request whose identity (engine.identity) matches a prepared run is served from it. The guided tour's runs (class
Trouser, WSS-CL and SalUn) already are prepared runs; they are skipped here. The Dockerfile runs this script at
image build time (≈ 30 s per run on a 2-core CPU with bf16; ~1.7 MB per run, weights included: the Feature-space page's
click panel loads them), so the runs are never committed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build(method: str, cls: int, out: Path) -> Path | None:
    """One run through the app's pipeline, copied under ``out``; None when a prepared run already has its identity."""
    import engine
    from app import pipeline, settings, sharing, store
    from app.jobs import manager

    spec = engine.ForgetSpec(classes=(cls,))
    request = pipeline.run_request(method, pipeline.default_config(method, spec.setting), spec)
    if sharing.find(request.identity(settings.FAST)) is not None:
        print(f"{method} class {cls}: a prepared run exists, skipped", flush=True)
        return None
    job = pipeline.submit_run("classroom", request)        # a fresh run, never a shared one
    done = manager().wait(job.id, 3 * 3600)
    assert done["status"] == "finished", done["error"]
    run = store.load_run(done["result"]["run_id"])
    assert run["insights"] == "ready", run.get("insights_error")
    target = out / request.dataset / f"{method}-class-{cls}"
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run["path"], target)
    record = engine.read_record(target)       # finished and settled: it carries no process details
    record.owner, record.job = "classroom", None
    engine.write_record(target, record)
    print(f"{target}: UA {run['metrics']['UA']:.1f} RA {run['metrics']['RA']:.1f} TA {run['metrics']['TA']:.1f} "
          f"MIA {run['metrics']['MIA']:.1f} in {run['seconds']:.1f} s", flush=True)
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--methods", nargs="+", default=["wsscl", "salun"])
    parser.add_argument("--out", type=Path, default=None, help="default $UNLEARNING_LAB_PREPARED or ./prepared")
    args = parser.parse_args(argv)
    os.environ["UNLEARNING_LAB_RUNS"] = tempfile.mkdtemp(prefix="classroom-runs-")
    os.environ.pop("UNLEARNING_LAB_FAST", None)            # the real settings: what a student's Start runs
    if args.out is not None:
        os.environ["UNLEARNING_LAB_PREPARED"] = str(args.out.resolve())
    from app import sharing
    from app.jobs import manager

    out = sharing.prepared_root()
    for cls in args.classes:
        for method in args.methods:
            build(method, cls, out)
    manager().shutdown()
    shutil.rmtree(os.environ["UNLEARNING_LAB_RUNS"], ignore_errors=True)


if __name__ == "__main__":
    main()
