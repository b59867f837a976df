"""The registry of unlearning methods: one file per method, one line here.

Every method has the signature
    unlearn(model, dataset, split, config, *, device, seed=0, on_progress=None, should_stop=None) -> UnlearnResult
works on a copy of ``model``, reports through ``on_progress`` only, raises `RunCancelled` when
``should_stop()`` turns true, and is deterministic for a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.methods import finetune
from engine.methods.common import ConfigField, MethodConfig, UnlearnResult, config_fields


@dataclass(frozen=True)
class MethodInfo:
    name: str
    label: str
    summary: str
    config_class: type
    unlearn: Callable[..., UnlearnResult]


METHODS: dict[str, MethodInfo] = {
    "ft": MethodInfo("ft", "FT", "Fine-tune on the retain set only; forgetting comes from catastrophic forgetting.",
                     finetune.FTConfig, finetune.unlearn),
}


def make_config(method_name: str, **overrides) -> MethodConfig:
    """The config of ``method_name`` with ``overrides`` (unknown key or out-of-bounds value → ValueError)."""
    if method_name not in METHODS:
        raise ValueError(f"unknown method {method_name!r}; choose one of {', '.join(METHODS)}")
    cls = METHODS[method_name].config_class
    known = {f.name for f in config_fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{method_name} has no option {unknown[0]!r}; its options are {', '.join(sorted(known))}")
    return cls(**overrides)


__all__ = ["METHODS", "MethodInfo", "MethodConfig", "ConfigField", "UnlearnResult", "config_fields", "make_config"]
