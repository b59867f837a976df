"""Static fallback for free hosting: self-contained HTML reports of a few prepared runs and an index.html,
viewable with no server (plotly.js inline in each report; no external URL). A free static Space or any file
host serves the folder as it is.

    python -m scripts.export_static                  # the tour run + 2 runs computed now (real defaults) → site/
    python -m scripts.export_static --fast           # the same with UNLEARNING_LAB_FAST=1 (seconds; not real results)
    python -m scripts.export_static --no-compute     # only runs that exist: the tour run and every --run DIR
    python -m scripts.export_static --run runs/fashion-mini/<run> --out site

The prepared runs: WSS-CL forgetting Trouser (the guided tour's shipped run, app/tour/run), SalUn forgetting
Trouser and WSS-CL forgetting a random 10 % (no Retrain reference for that set: its Retrain column stays empty).
They go through the app's own pipeline (the code a click on Start runs), in a temporary run folder.
≈ 3 minutes on the 2-core CPU with real defaults. Each report is ≈ 5 MB (plotly.js inline).
"""
from __future__ import annotations

import argparse
import html
import os
import re
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOUR = REPO / "app" / "tour" / "run"
PREPARED = [("salun", {"classes": [1], "fraction": None, "sample_ids": [], "seed": 0}),
            ("wsscl", {"classes": [], "fraction": 0.1, "sample_ids": [], "seed": 0})]


def compute_prepared(runs_root: Path, timeout: float = 3600) -> list[Path]:
    """Run PREPARED through the app's pipeline into ``runs_root``; returns the run folders."""
    os.environ["UNLEARNING_LAB_RUNS"] = str(runs_root)
    import engine
    from app import pipeline, store
    from app.jobs import manager

    folders = []
    for method, spec in PREPARED:
        # unlearn_work queues no background Retrain for sets that lack one
        forget = engine.ForgetSpec.from_dict(spec)
        request = pipeline.run_request(method, pipeline.default_config(method, forget.setting), forget)
        job = manager().submit("export", "unlearn", f"{method} {spec}", request, pipeline.unlearn_work)
        done = manager().wait(job.id, timeout)
        if done["status"] != "finished":
            raise SystemExit(f"{method} on {spec}: {done['status']} {done['error']}")
        folders.append(Path(store.load_run(done["result"]["run_id"])["path"]))
        print(f"computed {folders[-1]}", flush=True)
    return folders


def export(run_dirs: list[Path], out: Path) -> list[Path]:
    """One report per finished run in ``run_dirs`` plus index.html in ``out``; returns the files written."""
    import engine
    from app import pipeline, report, store

    out.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for run_dir in run_dirs:
        run = store.read_record(Path(run_dir))
        if run is None or run.get("status") != "finished":
            raise SystemExit(f"{run_dir} is not a finished run")
        classes = engine.load_dataset(run.get("dataset", "fashion-mini")).classes
        name = _slug(f"{run.get('method')}-{run.get('spec_text', '')}-seed{run.get('seed', 0)}") + ".html"
        (out / name).write_text(report.run_html(run, classes, pipeline.load_insights(run)), encoding="utf-8")
        written.append(out / name)
        metrics = run["metrics"]
        cells = "".join(f"<td>{metrics[k]:.1f}</td>" for k in report.KEYS)
        gap = run.get("avg_gap")
        rows.append(f"<tr><td><a href=\"{name}\">{html.escape(run.get('label', run.get('method', '')))}</a></td>"
                    f"<td>{html.escape(run.get('spec_text', ''))}</td>{cells}"
                    f"<td>{'—' if gap is None else f'{gap:.2f}'}</td><td>{run.get('seconds', 0):.0f}</td>"
                    f"<td>{'fast (not real)' if run.get('fast') else 'defaults'}</td></tr>")
    index = f"""<!doctype html><html><head><meta charset="utf-8"><title>Unlearning Lab · prepared runs</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#212529}}
table{{border-collapse:collapse}}td,th{{border:1px solid #dee2e6;padding:4px 10px}}</style></head><body>
<h1>Unlearning Lab — prepared runs</h1>
<p>Machine unlearning on Fashion-MNIST (fashion-mini): each report compares the original model, the unlearned one and
Retrain (exact unlearning) with UA (100 − forget accuracy), RA, TA and MIA-Efficacy, plus per-class accuracy,
weight saliency, a UMAP of the feature space and membership-inference attacks. Static pages: no server; the
interactive lab runs these and your own choices live.</p>
<table><tr><th>method</th><th>forget set</th>{''.join(f'<th>{k}</th>' for k in report.KEYS)}<th>Avg. Gap ↓</th>
<th>seconds</th><th>settings</th></tr>{''.join(rows)}</table></body></html>"""
    (out / "index.html").write_text(index, encoding="utf-8")
    return [out / "index.html", *written]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "site")
    parser.add_argument("--run", type=Path, action="append", default=[], help="an existing finished run folder")
    parser.add_argument("--no-compute", action="store_true", help="export existing runs only")
    parser.add_argument("--no-tour", action="store_true", help="leave out the tour's shipped run")
    parser.add_argument("--fast", action="store_true", help="UNLEARNING_LAB_FAST=1 for the computed runs")
    args = parser.parse_args(argv)
    if args.fast:
        os.environ["UNLEARNING_LAB_FAST"] = "1"
    else:
        os.environ.pop("UNLEARNING_LAB_FAST", None)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    runs = ([TOUR] if TOUR.is_dir() and not args.no_tour else []) + list(args.run)
    if not args.no_compute:
        runs += compute_prepared(Path(tempfile.mkdtemp(prefix="export-runs-")))
    files = export(runs, args.out)
    for path in files:
        print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
    return files


if __name__ == "__main__":
    main()
