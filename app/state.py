"""Per-session state: the only module that touches `st.session_state`.

The forget selection is kept as plain values (mode, classes, sample ids, fraction), the widgets' own, and
read as one `engine.ForgetSpec` value (frozen, hashable) by `forget_spec()`. Jobs and runs live in the job manager and on disk; a session only
remembers which ones it owns and which run it is looking at.
"""
from __future__ import annotations

import uuid

import streamlit as st

import engine

MODES = ("classes", "samples", "fraction")

_DEFAULTS = {
    "forget_mode": "classes",
    "forget_classes": [],
    "forget_samples": [],
    "forget_fraction": 0.1,
    "job_ids": [],
    "run_id": None,
    "teaching_step": 0,
    "seen_done": [],
    "compare_ids": None,        # runs ticked for the side-by-side view (None: none ticked yet)
    "original_upload": None,    # path of the user's own original model (app/uploads.py), None = the shipped one
    "shared_runs": [],          # runs this session was given as shared results (identical runs, app/sharing.py)
    "panel_cache": None,        # the job panel's last {key: (fingerprint, snapshots)}: a poll with no change reuses it
}


def _init() -> None:
    if "session_id" not in st.session_state:
        st.session_state["session_id"] = uuid.uuid4().hex[:10]
    for key, value in _DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = list(value) if isinstance(value, list) else value


def session_id() -> str:
    _init()
    return st.session_state["session_id"]


def get(key: str):
    _init()
    return st.session_state[key]


def put(key: str, value) -> None:
    _init()
    st.session_state[key] = value


# ---------------------------------------------------------------------------------------------- forget set
def forget_mode() -> str:
    return get("forget_mode")


def set_forget_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown forget mode {mode!r}")
    put("forget_mode", mode)


def forget_classes() -> list[int]:
    return list(get("forget_classes"))


def set_forget_classes(classes) -> None:
    put("forget_classes", sorted({int(c) for c in classes}))
    put("forget_mode", "classes")


def forget_samples() -> list[int]:
    return list(get("forget_samples"))


def add_forget_samples(ids) -> None:
    put("forget_samples", sorted(set(get("forget_samples")) | {int(i) for i in ids}))
    put("forget_mode", "samples")


def remove_forget_samples(ids) -> None:
    put("forget_samples", sorted(set(get("forget_samples")) - {int(i) for i in ids}))


def clear_forget_samples() -> None:
    put("forget_samples", [])


def forget_fraction() -> float:
    return float(get("forget_fraction"))


def set_forget_fraction(value: float) -> None:
    put("forget_fraction", float(value))
    put("forget_mode", "fraction")


def forget_spec() -> engine.ForgetSpec | None:
    """The current selection as a ForgetSpec, or None while it is empty."""
    mode = forget_mode()
    if mode == "classes" and forget_classes():
        return engine.ForgetSpec(classes=tuple(forget_classes()))
    if mode == "samples" and forget_samples():
        return engine.ForgetSpec(sample_ids=tuple(forget_samples()))
    if mode == "fraction":
        return engine.ForgetSpec(fraction=forget_fraction())
    return None


# ---------------------------------------------------------------------------------------------- jobs and runs
def job_ids() -> list[str]:
    return list(get("job_ids"))


def add_job(job_id: str) -> None:
    put("job_ids", [*get("job_ids"), job_id])


def add_shared_run(run_id: str) -> None:
    if run_id not in get("shared_runs"):
        put("shared_runs", [*get("shared_runs"), run_id])


def shared_runs() -> list[str]:
    return list(get("shared_runs"))


def current_run() -> str | None:
    return get("run_id")


def set_current_run(run_id: str | None) -> None:
    put("run_id", run_id)


def teaching_step() -> int:
    return int(get("teaching_step"))


def set_teaching_step(step: int) -> None:
    put("teaching_step", int(step))


def reset_widgets(prefix: str) -> None:
    """Forget the values of widgets whose key starts with ``prefix`` (they return to their defaults)."""
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]


def form_generation(method: str) -> int:
    """How many times the Run form of ``method`` was reset: part of its widgets' keys (see `reset_form`)."""
    _init()
    return int(st.session_state.get(f"form_generation-{method}", 0))


def reset_form(method: str) -> None:
    """Back to the defaults (a button callback): the next run renders new widgets, under a new key generation,
    which the browser shows with their default values; the old ones' values are forgotten."""
    generation = form_generation(method)
    reset_widgets(f"cfg-{method}-")
    reset_widgets(f"seed-{method}")
    st.session_state[f"form_generation-{method}"] = generation + 1
