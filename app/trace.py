"""Server-side timing of script runs, for the load test: off unless ``UNLEARNING_LAB_TRACE`` names a file.

With it set, every full script run of every session appends one JSON line to that file:
``{"session", "page", "t0", "t1", "ended_by", "marks"}`` — wall-clock start and end of the run on the server
(``time.time()``, so a client on the same machine can line them up with its own clicks), what ended it
(``None``: the script ran to its end; else the exception Streamlit stopped it with, e.g. a rerun or a page
switch), and the marks the pages set on the way (``mark("start", how=...)``: the Start button was handled;
``mark("results_link", run=...)``: the Run page offered this run's results; ``mark("results", run=...)``: the
Results page drew this run — for a shared result Start opens it at once, so that is the offer).
``scripts/load_test.py`` reads it to time the server's side of each page apart from the browser's (on one machine
the browsers and the server share the CPU).

The cost when off is one dictionary lookup per run; when on, one small write per run.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path

_LOCK = threading.Lock()
_CURRENT = threading.local()      # Streamlit runs each session's script on a thread of its own


def path() -> str | None:
    return os.environ.get("UNLEARNING_LAB_TRACE") or None


@contextlib.contextmanager
def script_run(session: str, page: str):
    """Around one full script run: times it and writes its line (even when Streamlit stops it early)."""
    target = path()
    if target is None:
        yield
        return
    entry = {"session": session, "page": page, "t0": time.time(), "marks": []}
    _CURRENT.entry = entry
    ended_by = None
    try:
        yield
    except BaseException as stop:          # RerunException, StopException (st.stop, st.switch_page): re-raised
        ended_by = type(stop).__name__
        raise
    finally:
        _CURRENT.entry = None
        entry["t1"], entry["ended_by"] = time.time(), ended_by
        line = json.dumps(entry, default=str) + "\n"
        with _LOCK, open(target, "a", encoding="utf-8") as out:
            out.write(line)


def mark(name: str, **fields) -> None:
    """A named point in the current script run (nothing when tracing is off or outside a traced run)."""
    entry = getattr(_CURRENT, "entry", None)
    if entry is not None:
        entry["marks"].append({"name": name, "t": time.time(), **fields})


def read(target) -> list[dict]:
    """The lines written so far (a torn last line, from a server stopped mid-write, is skipped)."""
    rows = []
    try:
        text = Path(target).read_text(encoding="utf-8")
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
