"""Re-tune every method with Optuna and compare each study with the hand grid's choice (today's defaults).

    python -m scripts.tune_all [--methods wsscl salun ...] [--settings class random] [--trials 10] \
        [--storage sqlite:///runs/tune.db] [--out docs/tuning-optuna.json] [--apply] [--docs docs/tuning.md]

For every (method, setting): (1) today's default point — the grid's choice — is scored with the same
validation-only objective a trial uses (`engine.tuning.trial_job`, test set withheld), so both sides are
scored by today's proxy, not by the one the grid ran with; (2) an Optuna study (`engine.tuning.run_study`,
TPE, median pruning, in-process: the same executor and threads as the grid had) of ``--trials`` trials.
Recorded: both scores, the study's wall time and the grid's (the sum of its cells' seconds in
docs/tuning.md), and how long the study took to first match the grid's score.

A study's best point replaces the default (``--apply``: written into the method's config source by
`engine.tuning.record_choice`) only if it beats the default by more than ``ADOPT_MARGIN`` score points and,
class-wise, forgets both tuning classes: a smaller gain on two validation scenarios is not evidence
enough to move a default users meet on other classes. Results are written after each study; a rerun resumes
(finished studies are skipped; an unfinished one continues in its sqlite storage).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ADOPT_MARGIN = 0.1
BEGIN, END = "<!-- optuna:begin -->", "<!-- optuna:end -->"


def default_point(method: str, setting: str) -> dict:
    from engine.tuning import current_point

    return current_point(method, setting)


def grid_figures(method: str, setting: str, doc: Path) -> dict:
    """The grid's points, seconds and chosen score for one study, read from its table in docs/tuning.md."""
    from engine.methods import METHODS

    text = doc.read_text()
    heading = f"## {METHODS[method].label} — {setting}"
    start = text.find(heading)
    if start < 0:
        return {}
    section = text[start + len(heading):]
    section = section[:section.find("\n## ")]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")][1:]
    seconds = sum(float(s) for s in re.findall(r", (\d+(?:\.\d+)?) s\)", section))
    chosen = [line for line in rows if "**" in line]
    score = float(re.findall(r"\*\*([\d.]+)\*\*", chosen[0])[-1]) if chosen else None
    return {"points": len(rows), "seconds": round(seconds, 1), "score_then": score}


def one_study(method: str, setting: str, trials: int, storage: str) -> dict:
    from engine.executor import InlineExecutor, dataset_ref
    import torch

    from engine.tuning import choose, chosen_params, run_study, trial_job

    point = default_point(method, setting)
    t0 = time.perf_counter()
    baseline = trial_job(dataset_ref("fashion-mini"), None, method, setting, point, device="cpu")
    baseline_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the study's trials with this process's threads, like the default's score above: results depend on the count
    study = run_study(method, setting, trials, executor=InlineExecutor(), storage=storage, device="cpu",
                      cpus=torch.get_num_threads())
    wall = time.perf_counter() - t0
    best = choose(study, setting, method)
    elapsed, matched = 0.0, None
    for trial in study.trials:
        if trial.datetime_start and trial.datetime_complete:
            elapsed += (trial.datetime_complete - trial.datetime_start).total_seconds()
        good = trial.value is not None and trial.state.name == "COMPLETE" and (
            setting not in ("class", "classes") or trial.user_attrs.get("forgets"))
        if matched is None and good and trial.value <= baseline["score"]:
            matched = {"trial": trial.number, "seconds": round(elapsed, 1)}
    trial_seconds = round(elapsed, 1)
    gain = baseline["score"] - best.value if best is not None else 0.0
    adopt = bool(best is not None and gain > ADOPT_MARGIN
                 and (setting not in ("class", "classes") or best.user_attrs.get("forgets")))
    return {"method": method, "setting": setting, "default": point, "default_score": baseline["score"],
            "default_forgets": baseline["forgets"], "default_cells": baseline["cells"],
            "default_seconds": round(baseline_s, 1),
            "trials": len(study.trials), "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
            "study_wall_s": round(wall, 1), "trial_seconds": trial_seconds,
            "best": chosen_params(best) if best else None, "best_trial": best.number if best else None,
            "best_score": best.value if best else None,
            "best_forgets": best.user_attrs.get("forgets") if best else None,
            "best_cells": best.user_attrs.get("cells") if best else None,
            "matched_default": matched, "adopt": adopt, "study": study.study_name}


def markdown(rows: list[dict], grid: dict, storage: str, trials: int) -> str:
    from engine.methods import METHODS
    from engine.tuning import STARTUP_TRIALS

    def short(params):
        return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())

    methods = sorted({row["method"] for row in rows})
    has_grid = any(grid.get(f"{row['method']}/{row['setting']}") for row in rows)
    lines = [BEGIN, "", "## Optuna re-tune (this is what chose the defaults of the methods below)", "",
             f"`python -m scripts.tune_all --methods {' '.join(methods)} --trials {trials} --apply` — per method and "
             f"setting one study (TPE, {STARTUP_TRIALS} random start-up trials, median pruning after class 1; "
             f"in-process, 2 threads; storage `{storage}`), beside the default it started from, scored by the same "
             "validation-only objective. A study's best replaces the default only if it is better by more "
             f"than {ADOPT_MARGIN} score points (and, class-wise, forgets both classes). The study's seconds are the "
             "sum of its trials' run times" + ("; the grid's, the sum of its cells in this file's grid tables."
                                              if has_grid else "."), "",
             "| method | setting | default before | its score now | " + ("grid: points, s | " if has_grid else "")
             + "Optuna best | its score | trials (pruned), s | first ≤ default's score | adopted |",
             "|---|---|---|---|" + ("---|" if has_grid else "") + "---|---|---|---|---|"]
    for row in rows:
        g = grid.get(f"{row['method']}/{row['setting']}", {})
        matched = row["matched_default"]
        lines.append(
            f"| {METHODS[row['method']].label} | {row['setting']} | {short(row['default'])} | "
            f"{row['default_score']:.2f}{'' if row['default_forgets'] or row['setting'] != 'class' else ' (does not forget)'} | "
            + (f"{g.get('points', '—')}, {g.get('seconds', '—')} | " if has_grid else "")
            + f"{short(row['best']) if row['best'] else '—'} | "
            f"{row['best_score']:.2f} | {row['trials']} ({row['pruned']}), {row['trial_seconds']:.0f} | "
            f"{'trial %d, %.0f s' % (matched['trial'], matched['seconds']) if matched else 'never'} | "
            f"{'**yes**' if row['adopt'] else 'no'} |")
    total_grid = sum(g.get("seconds", 0) for g in grid.values())
    total_study = sum(r["trial_seconds"] for r in rows)
    lines += ["", f"All studies: {total_study / 60:.1f} min of trials"
              + (f"; the grid: {total_grid / 60:.1f} min (its cells' seconds)." if has_grid else "."), "", END]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from engine.tuning import SETTINGS, SPACES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(SPACES), choices=list(SPACES))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--storage", default="sqlite:///runs/tune.db")
    parser.add_argument("--out", type=Path, default=Path("docs/tuning-optuna.json"))
    parser.add_argument("--docs", type=Path, default=Path("docs/tuning.md"))
    parser.add_argument("--apply", action="store_true", help="write adopted points into the methods' sources")
    args = parser.parse_args(argv)
    Path(args.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    done = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": []}
    rows = {f"{r['method']}/{r['setting']}": r for r in done["rows"]}
    grid = {f"{m}/{s}": grid_figures(m, s, args.docs) for m in args.methods for s in args.settings}
    for method in args.methods:
        for setting in args.settings:
            key = f"{method}/{setting}"
            if key in rows and rows[key]["trials"] >= args.trials:
                print(f"{key}: done already", flush=True)
                continue
            rows[key] = one_study(method, setting, args.trials, args.storage)
            r = rows[key]
            print(f"{key}: default {r['default_score']:.2f}, best {r['best_score']:.2f} {r['best']} "
                  f"({r['trials']} trials, {r['trial_seconds']:.0f} s) adopt={r['adopt']}", flush=True)
            args.out.write_text(json.dumps({"rows": list(rows.values()), "grid": grid}, indent=1) + "\n")
    ordered = [rows[f"{m}/{s}"] for m in args.methods for s in args.settings if f"{m}/{s}" in rows]
    text = args.docs.read_text()
    section = markdown(ordered, grid, args.storage, args.trials)
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END) + 1:]
    else:
        text = text.replace("## Chosen\n", section + "\n## Chosen\n", 1)
    args.docs.write_text(text)
    if args.apply:
        # random first (it moves the field defaults), each in a fresh interpreter that imports the edited source
        for row in sorted(ordered, key=lambda r: r["setting"] != "random"):
            if row["adopt"]:
                code = ("import json, sys; from engine.tuning import record_choice; "
                        "print(record_choice(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))")
                subprocess.run([sys.executable, "-c", code, row["method"], row["setting"], json.dumps(row["best"])],
                               check=True)
                print(f"applied {row['method']}/{row['setting']}: {row['best']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
