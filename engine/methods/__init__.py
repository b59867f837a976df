"""The registry of unlearning methods: one file per method, one line here.

Every method has the signature
    unlearn(model, dataset, split, config, *, device, seed=0, on_progress=None, should_stop=None) -> UnlearnResult
works on a copy of ``model``, reports through ``on_progress`` only, raises `RunCancelled` when
``should_stop()`` turns true, and is deterministic for a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.methods import (finetune, gradient_ascent, l1_sparse, random_label, retrain, salun, scrub,
                            wsscl)
from engine.methods.common import ConfigField, MethodConfig, UnlearnResult, config_fields


@dataclass(frozen=True)
class MethodInfo:
    name: str
    label: str
    summary: str
    config_class: type
    unlearn: Callable[..., UnlearnResult]


METHODS: dict[str, MethodInfo] = {
    "wsscl": MethodInfo("wsscl", "WSS-CL (ours)", "Saliency-guided KL forgetting to a pseudo-label, then contrastive "
                        "forget rounds and retain repair, every update scaled by soft guidance weights.",
                        wsscl.WSSCLConfig, wsscl.unlearn),
    "retrain": MethodInfo("retrain", "Retrain", "Train from scratch on the retain set: exact unlearning, the gold "
                          "standard and the slowest.", retrain.RetrainConfig, retrain.unlearn),
    "ft": MethodInfo("ft", "FT", "Fine-tune on the retain set only; forgetting comes from catastrophic forgetting.",
                     finetune.FTConfig, finetune.unlearn),
    "ga": MethodInfo("ga", "GA", "Gradient ascent on the forget set's cross-entropy.",
                     gradient_ascent.GAConfig, gradient_ascent.unlearn),
    "rl": MethodInfo("rl", "RL", "Train on the forget set with random labels, then repair on the retain set.",
                     random_label.RLConfig, random_label.unlearn),
    "salun": MethodInfo("salun", "SalUn", "Random labelling with only the most forget-salient half of the weights "
                        "allowed to move.", salun.SalUnConfig, salun.unlearn),
    "l1_sparse": MethodInfo("l1_sparse", "ℓ1-sparse", "Fine-tune on the retain set with a decaying ℓ1 penalty "
                            "that sparsifies the weights.", l1_sparse.L1SparseConfig, l1_sparse.unlearn),
    "scrub": MethodInfo("scrub", "SCRUB", "Student moves away from the original teacher on the forget set and "
                        "stays close to it on the retain set.", scrub.SCRUBConfig, scrub.unlearn),
}


def _check_defaults(info: MethodInfo) -> None:
    """A config's SETTINGS / FAST / SELF_SUPERVISED may only name its own fields: a renamed field fails here, at
    import."""
    known = {f.name for f in config_fields(info.config_class)}
    named = set(info.config_class.FAST) | set(info.config_class.SELF_SUPERVISED) | \
        {k for values in info.config_class.SETTINGS.values() for k in values}
    if named - known:
        raise TypeError(f"{info.config_class.__name__}: SETTINGS/FAST/SELF_SUPERVISED name {sorted(named - known)}, "
                        "not fields")


for _info in METHODS.values():
    _check_defaults(_info)


# name → setting → overrides: a read-only view gathered from the config classes (their SETTINGS are the home).
SETTING_DEFAULTS: dict[str, dict[str, dict]] = {name: info.config_class.SETTINGS for name, info in METHODS.items()
                                                if info.config_class.SETTINGS}


def setting_defaults(method_name: str, forget_kind: str | None) -> dict:
    """The overrides of ``method_name``'s defaults for a forget setting (`ForgetSpec.setting`); {} if none. Several
    classes at once ("classes") fall back to the single-class defaults when a method has none of their own."""
    if method_name not in METHODS:
        return {}
    settings = METHODS[method_name].config_class.SETTINGS
    if forget_kind == "classes" and "classes" not in settings:
        forget_kind = "class"
    return dict(settings.get(forget_kind or "", {}))


def form_defaults(method_name: str, forget_kind: str | None = None, *, fast: bool = False) -> dict:
    """A form's starting values: the method's defaults for the forget setting; with ``fast``, numbers capped by
    the config's FAST values (shrunk, never enlarged, kept within the field's bounds)."""
    cls = METHODS[method_name].config_class
    setting = setting_defaults(method_name, forget_kind)
    values = {}
    for f in config_fields(cls):
        value = setting.get(f.name, f.default)
        if fast and f.name in cls.FAST and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = min(value, type(f.default)(cls.FAST[f.name]))
            if f.min is not None:
                value = max(value, f.min)
            if f.max is not None:
                value = min(value, f.max)
        values[f.name] = value
    return values


def make_config(method_name: str, *, forget_kind: str | None = None, **overrides) -> MethodConfig:
    """The config of ``method_name``: its defaults for ``forget_kind`` (its config's SETTINGS), then ``overrides``.

    Raises:
        ValueError: an unknown method or key, or a value out of bounds.
    """
    if method_name not in METHODS:
        raise ValueError(f"unknown method {method_name!r}; choose one of {', '.join(METHODS)}")
    cls = METHODS[method_name].config_class
    known = {f.name for f in config_fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{method_name} has no option {unknown[0]!r}; its options are {', '.join(sorted(known))}")
    return cls(**{**setting_defaults(method_name, forget_kind), **overrides})


__all__ = ["METHODS", "MethodInfo", "MethodConfig", "ConfigField", "UnlearnResult", "config_fields", "make_config",
           "setting_defaults", "form_defaults", "SETTING_DEFAULTS"]
