"""Tuning a method's defaults with Optuna, on the validation proxy only — the test set is withheld.

    python -m engine tune --method ga --setting class --trials 24 [--executor ray] [--storage sqlite:///runs/tune.db]

Selection score ("validation gap", lower is better; scripts/tune_methods.py's hand grid used the same one):
a perfect unlearner makes D_f look like data it never saw, so targets come from held-out data —
class-wise UA* = MIA* = 100; random: UA* = 100 − accuracy on half B of the validation hold-out, MIA* =
MIA-Efficacy of B against an attack trained on retain (members) vs half A (non-members), equally many of
each (the larger side subsampled, seeded, as the evaluation's attack is balanced) — plus the drop
of validation and retain-sample accuracy against the original. score = mean of the four.
Hand-picked sets, and WSS-CL's class-wise study (whose stage 3 forgets at every point), are scored against a
Retrain of each scenario instead (`retrain_score`, the validation analogue of Avg. Gap; `against_retrain`).

A study is TPE (seeded) over the method's `SPACES`, stored (sqlite) so a rerun resumes it; a trial runs
the setting's scenarios one by one and reports the running mean after each, so the median pruner can
stop a bad point after its first scenario (class-wise: classes 1 and 3). Class-wise, the choice is the
best trial among those that forget every tuning class (UA ≥ 99 and MIA-Efficacy ≥ 99 on each), as the
grid's was. The objective gets the dataset through `withhold_test`: any read of a test image or label
raises `WithheldDataError`, so "never selected on test" is enforced, not just intended.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from engine.executor import Job, dataset_ref, open_dataset, open_model

SCENARIOS = {"class 1": {"classes": [1]}, "class 3": {"classes": [3]}, "random 10%": {"fraction": 0.1, "seed": 0},
             # several classes at once (validation scenarios; docs/tuning.md): the three footwear classes, which
             # the model confuses with each other, and Pullover + Coat, two confusable tops
             "classes 5,7,9": {"classes": [5, 7, 9]}, "classes 2,4": {"classes": [2, 4]},
             # hand-picked images: `engine.sample_sets` rules drawn with seed 1 (the benchmark's shipped sets are
             # seed 0 and are never tuned on); resolved against the original's predictions on the training pool
             "samples one-class-100@1": {"sample_rule": "one-class-100", "draw_seed": 1},
             "samples mixed-200@1": {"sample_rule": "mixed-200", "draw_seed": 1}}
# The first scenario of a setting is the one the median pruner judges a trial on.
SETTINGS = {"class": ("class 1", "class 3"), "random": ("random 10%",),
            "classes": ("classes 5,7,9", "class 1", "class 3", "classes 2,4"),
            "samples": ("samples mixed-200@1", "samples one-class-100@1")}
# Settings scored against a Retrain of each scenario (trained on its retain set, evaluated on the same
# validation proxy) instead of fixed targets: for a hand-picked set no held-out stand-in says how much of it a
# model that never saw it would still get right (it holds images the original gets wrong).
RETRAIN_TARGETS = ("samples",)
# Method-settings scored against Retrains too: WSS-CL's class-wise runs all end with stage 3, which forgets every
# tuning class completely (UA = MIA-Efficacy = 100 at any point), so the held-out targets only measured the
# accuracy lost against the original and rewarded the point that changes the model least — whereas a Retrain's
# retained-class accuracy rises above the original's (docs/tuning.md, "A one-epoch repair").
RETRAIN_TARGET_METHODS = {("wsscl", "class")}


def against_retrain(method: str, setting: str) -> bool:
    """Whether trials of ``method`` in ``setting`` are scored against a Retrain of each scenario."""
    return setting in RETRAIN_TARGETS or (method, setting) in RETRAIN_TARGET_METHODS


# (kind, low, high) per tuned field; the grid's ranges, widened one step where its choice sat on an edge.
_LR_EPOCHS = {"lr": ("log", 0.005, 0.2), "epochs": ("int", 1, 4)}
SPACES: dict[str, dict[str, tuple]] = {
    "ft": _LR_EPOCHS, "l1_sparse": _LR_EPOCHS,
    "ga": {"lr": ("log", 1e-4, 3e-3), "epochs": ("int", 1, 8)},
    "rl": {"lr": ("log", 1e-3, 0.2), "epochs": ("int", 2, 3), "retain_fraction": ("float", 0.3, 1.0)},
    "salun": {"lr": ("log", 1e-3, 0.2), "epochs": ("int", 2, 3), "retain_fraction": ("float", 0.3, 1.0)},
    "scrub": {"lr": ("log", 3e-4, 3e-2), "epochs": ("int", 1, 4)},
    "wsscl": {"stage1_lr": ("log", 5e-4, 6e-3), "retain_lr": ("log", 0.01, 0.2),
              "retain_weight_decay": ("log", 1e-5, 3e-3), "sparsity": ("float", 0.1, 0.8)},
}
_SAMPLES = {"lr": ("log", 1e-3, 0.1), "epochs": ("int", 1, 3), "retain_fraction": ("float", 0.3, 1.0)}
# A setting whose space differs from the method's (searched in addition or instead).
SETTING_SPACES: dict[tuple[str, str], dict[str, tuple]] = {
    # one class, stage 2 held to one epoch over at most 70 % of D_r (the ≤ 5-s budget, so the range of
    # retain_fraction is the budget): the stage-1 lr may go low enough to leave the forgetting to stages 2–3, and
    # the contrastive lr joins the search (docs/tuning.md, "A one-epoch repair")
    ("wsscl", "class"): {"stage1_lr": ("log", 1e-4, 6e-3), "retain_lr": ("log", 0.01, 0.3),
                         "retain_weight_decay": ("log", 1e-5, 3e-3), "sparsity": ("float", 0.1, 0.9),
                         "forget_lr": ("log", 1e-3, 3e-2), "retain_fraction": ("float", 0.4, 0.7)},
    # several classes at once (SETTINGS["classes"]): the stage-1 KL term kept in the contrastive rounds and
    # the contrastive lr join the search (docs/tuning.md, "Several classes at once")
    ("wsscl", "classes"): {"stage1_lr": ("log", 8e-4, 5e-3), "retain_lr": ("log", 0.02, 0.15),
                           "forget_lr": ("log", 1e-3, 3e-2), "stage2_kl": ("float", 0.0, 3.0),
                           "sparsity": ("float", 0.4, 0.8)},
    # tens to hundreds of images, some the original gets wrong: how hard stage 1 pushes (and whether its batch
    # norm learns from so few images) is open, so both are searched
    ("wsscl", "samples"): {"stage1_lr": ("log", 2e-4, 6e-3), "retain_lr": ("log", 0.01, 0.15),
                           "sparsity": ("float", 0.1, 0.9), "forget_batch_norm": ("categorical", "train", "eval"),
                           "pseudo_label": ("categorical", "uniform", "batch_mean")},
    ("salun", "samples"): _SAMPLES, ("rl", "samples"): _SAMPLES,
}


def space(method: str, setting: str | None = None) -> dict[str, tuple]:
    """The fields a study of ``method`` in ``setting`` searches, with their ranges."""
    return SETTING_SPACES.get((method, setting or ""), SPACES[method])
# Held fixed per setting (the label-aware pseudo-label and frozen batch norm are what make a class forgettable).
# One class: one epoch of stage 2 (over at most 70 % of the retain set: its space), the ≤ 5-s budget on the
# 2-core CPU, now that stage 3 forgets every class (docs/tuning.md, "A one-epoch repair"). Other settings: two
# epochs over the whole retain set.
FIXED = {"wsscl": {"class": {"pseudo_label": "uniform_others", "forget_batch_norm": "eval", "epochs": 1,
                             "retain_batch_size": 128, "retain_schedule": "cosine"},
                   "random": {"pseudo_label": "uniform", "forget_batch_norm": "train", "epochs": 2,
                              "retain_batch_size": 128, "retain_schedule": "cosine"},
                   "classes": {"pseudo_label": "uniform_others", "forget_batch_norm": "eval", "epochs": 2,
                               "retain_batch_size": 128, "retain_schedule": "cosine",
                               "retain_weight_decay": 0.000325},
                   "samples": {"epochs": 2, "retain_batch_size": 128, "retain_schedule": "cosine"}}}


class WithheldDataError(RuntimeError):
    """Raised when tuning code reads the test set."""


class _Withheld(torch.Tensor):
    """A tensor every operation on which raises — including shape, len, indexing and pickling."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise WithheldDataError(f"tuning touched the test set ({getattr(func, '__name__', func)}); "
                               "selection must use validation data only")


def withhold_test(dataset):
    """``dataset`` with its test images and labels replaced by tensors that raise on any use."""
    return dataclasses.replace(dataset, test_images=torch.empty(0).as_subclass(_Withheld),
                               test_labels=torch.empty(0).as_subclass(_Withheld))


def _no_test_split(dataset, spec: dict, model=None):
    """The split of ``spec`` computed on a copy of ``dataset`` that has no test set at all (a sample rule is
    drawn first, with ``model``'s predictions on the training pool)."""
    from engine.splits import ForgetSpec, make_split

    if "sample_rule" in spec:
        spec = {"sample_ids": list(drawn_ids(dataset, spec["sample_rule"], spec["draw_seed"], model))}
    empty = dataclasses.replace(dataset, test_images=dataset.train_images[:0], test_labels=dataset.train_labels[:0])
    return make_split(empty, ForgetSpec.from_dict(spec))


def drawn_ids(dataset, rule: str, seed: int, model) -> tuple[int, ...]:
    """A hand-picked set drawn by `engine.sample_sets.draw` from the training pool (split seed 0)."""
    from engine import sample_sets
    from engine.splits import training_indices
    from engine.training import predict

    predictions = predict(model, dataset.train_images, device=next(model.parameters()).device).predictions
    return tuple(sample_sets.draw(rule, training_indices(dataset, 0), dataset.train_labels.numpy(), predictions,
                                  seed))


# ------------------------------------------------------------------------------------------ objective
def validation_proxy(model, dataset, split, device) -> dict:
    """UA, MIA on D_f and their held-out targets, validation and retain-sample accuracy (no test data)."""
    from engine.metrics import accuracy
    from engine.privacy import balanced_positions, mia_efficacy, true_label_confidence
    from engine.training import predict

    images, labels = dataset.train_images, dataset.train_labels.numpy()

    def outputs(indices):
        out = predict(model, images[torch.as_tensor(indices)], device=device)
        return out.predictions, true_label_confidence(out.probabilities, labels[indices])

    rng = np.random.default_rng(0)
    validation = rng.permutation(split.validation)
    members = split.retain[:1000]
    figures = {}
    if split.forget_classes:
        attack_non_members, counterpart = validation, None
        forgotten_pred, _ = outputs(split.validation_forget)
        # the analogue of the forgotten classes' test accuracy (a Retrain: 0)
        figures["validation_forget_acc"] = accuracy(forgotten_pred, labels[split.validation_forget])
    else:
        attack_non_members, counterpart = validation[: len(validation) // 2], validation[len(validation) // 2:]
    forget_pred, forget_conf = outputs(split.forget)
    member_pred, member_conf = outputs(members)
    non_pred, non_conf = outputs(attack_non_members)
    # The attack fits on as many members as non-members (class-wise 1,000 retain vs the whole validation
    # hold-out otherwise), like the evaluation's; accuracies still use every sample.
    member_at, non_at = balanced_positions(len(member_conf), len(non_conf), seed=0)
    attack_members, attack_non = member_conf[member_at], non_conf[non_at]
    figures.update({"UA": 100 - accuracy(forget_pred, labels[split.forget]),
                    "MIA": mia_efficacy(attack_members, attack_non, forget_conf),
                    "retain_acc": accuracy(member_pred, labels[members])})
    if counterpart is None:
        figures.update(UA_target=100.0, MIA_target=100.0, validation_acc=accuracy(non_pred, labels[validation]))
    else:
        pred, conf = outputs(counterpart)
        figures.update(UA_target=100 - accuracy(pred, labels[counterpart]),
                       MIA_target=mia_efficacy(attack_members, attack_non, conf),
                       validation_acc=accuracy(np.concatenate([non_pred, pred]),
                                               labels[np.concatenate([attack_non_members, counterpart])]))
    return figures


def score(figures: dict, original: dict) -> float:
    return float(np.mean([abs(figures["UA"] - figures["UA_target"]), abs(figures["MIA"] - figures["MIA_target"]),
                          max(0.0, original["validation_acc"] - figures["validation_acc"]),
                          max(0.0, original["retain_acc"] - figures["retain_acc"])]))


def retrain_score(figures: dict, retrain: dict) -> float:
    """The validation analogue of Avg. Gap: mean |difference| to a Retrain's UA, MIA, validation and retain-sample
    accuracy."""
    return float(np.mean([abs(figures[k] - retrain[k]) for k in ("UA", "MIA", "validation_acc", "retain_acc")]))


@functools.lru_cache(maxsize=8)
def _original_proxy(ref_json: str, checkpoint: Optional[str], scenario: str, device: str) -> dict:
    data = withhold_test(open_dataset(json.loads(ref_json)))
    model = open_model(ref_json, checkpoint, device)
    return validation_proxy(model, data, _no_test_split(open_dataset(json.loads(ref_json)), SCENARIOS[scenario],
                                                        model), torch.device(device))


RETRAIN_CACHE = Path("runs/tune-retrains")


@functools.lru_cache(maxsize=8)
def _retrain_proxy(ref_json: str, checkpoint: Optional[str], scenario: str, device: str) -> dict:
    """The validation proxy of a Retrain (seed 0) of ``scenario``; kept on disk per original and scenario."""
    import hashlib

    from engine.methods import METHODS, make_config

    key = hashlib.sha1(json.dumps([ref_json, checkpoint, scenario]).encode()).hexdigest()[:12]
    path = RETRAIN_CACHE / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())["figures"]
    full = open_dataset(json.loads(ref_json))
    data = withhold_test(full)
    model = open_model(ref_json, checkpoint, device)
    split = _no_test_split(full, SCENARIOS[scenario], model)
    result = METHODS["retrain"].unlearn(model, data, split, make_config("retrain"), device=torch.device(device),
                                        seed=0)
    figures = validation_proxy(result.model, data, split, torch.device(device))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"scenario": scenario, "checkpoint": checkpoint, "seconds": result.seconds,
                                "figures": figures}, indent=1))
    return figures


def trial_job(dataset: dict, checkpoint: Optional[str], method: str, setting: str, params: dict, seed: int = 0,
              device: str = "cpu", storage: Optional[str] = None, study_name: Optional[str] = None,
              trial_id: Optional[int] = None) -> dict:
    """One trial (a job function): unlearn every scenario of ``setting`` with ``params``; figures and score.

    With ``storage``, the trial reports its running score after each scenario and stops when pruned.
    """
    from engine.methods import METHODS, make_config
    from engine.training import resolve_device

    trial = None
    if storage is not None and trial_id is not None:
        import optuna

        study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner())
        trial = optuna.trial.Trial(study, trial_id)
    resolved = str(resolve_device(device))
    ref_json = json.dumps(dataset, sort_keys=True)
    full = open_dataset(dataset)
    data = withhold_test(full)
    model = open_model(ref_json, checkpoint, resolved)
    config = make_config(method, forget_kind=setting,
                         **{**FIXED.get(method, {}).get(setting, {}), **params})
    cells, scores = {}, []
    for step, scenario in enumerate(SETTINGS[setting]):
        split = _no_test_split(full, SCENARIOS[scenario], model)
        result = METHODS[method].unlearn(model, data, split, config, device=torch.device(resolved), seed=seed)
        figures = validation_proxy(result.model, data, split, torch.device(resolved))
        if against_retrain(method, setting):
            figures.update(seconds=result.seconds,
                           score=retrain_score(figures, _retrain_proxy(ref_json, checkpoint, scenario, resolved)))
        else:
            figures.update(seconds=result.seconds,
                           score=score(figures, _original_proxy(ref_json, checkpoint, scenario, resolved)))
        cells[scenario] = figures
        scores.append(figures["score"])
        if trial is not None and step < len(SETTINGS[setting]) - 1:
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                return {"cells": cells, "score": float(np.mean(scores)), "pruned": True, "forgets": False}
    forgets = all(forgets_all(c) for c in cells.values())
    return {"cells": cells, "score": float(np.mean(scores)), "pruned": False, "forgets": forgets}


def forgets_all(cell: dict) -> bool:
    """A class-wise cell forgets: UA ≥ 99, MIA-Efficacy ≥ 99 and ≤ 1 % of the forgotten classes' validation
    images still classified right (the issue's bar on test, checked here on validation)."""
    return cell["UA"] >= 99 and cell["MIA"] >= 99 and cell.get("validation_forget_acc", 0.0) <= 1.0


# ------------------------------------------------------------------------------------------- the study
STARTUP_TRIALS = 4     # random points before TPE models the rest (Optuna's default, 10, is a whole small study)


def pruner():
    """The median pruner, the same in the caller and in every worker (a worker loads the study itself)."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=4)


def current_point(method: str, setting: str) -> dict:
    """The method's default today for ``setting``, on the fields its study searches."""
    from engine.methods import make_config

    config = make_config(method, forget_kind=setting)
    return {name: getattr(config, name) for name in space(method, setting)}


def suggest(trial, method: str, setting: str | None = None) -> dict:
    """A trial's point in ``SPACES[method]``; floats rounded to 3 significant digits (what a default is written as,
    so the chosen point is exactly the one that ran), kept as the trial's ``params`` attribute."""
    params = {}
    for name, (kind, *bounds) in space(method, setting).items():
        if kind == "log":
            params[name] = float(f"{trial.suggest_float(name, bounds[0], bounds[1], log=True):.3g}")
        elif kind == "float":
            params[name] = float(f"{trial.suggest_float(name, bounds[0], bounds[1]):.3g}")
        elif kind == "int":
            params[name] = trial.suggest_int(name, bounds[0], bounds[1])
        else:
            params[name] = trial.suggest_categorical(name, list(bounds))
    trial.set_user_attr("params", params)
    return params


def run_study(method: str, setting: str, trials: int, *, executor, storage: Optional[str] = None,
              study_name: Optional[str] = None, seed: int = 0, dataset: str = "fashion-mini",
              data_root: Optional[str] = None, checkpoint: Optional[str] = None, device: str = "cpu",
              parallel: int = 1, cpus: int = 1, on_progress=None, enqueue: tuple[dict, ...] = ()):
    """Run (or resume) a study until it holds ``trials`` finished trials; returns the optuna Study.

    A new study's first trial is the method's current default for the setting (so the choice is always
    compared with it), then the points of ``enqueue`` (partial points: the rest is sampled)."""
    import optuna

    if method not in SPACES:
        raise ValueError(f"no search space for {method!r}; tunable: {', '.join(SPACES)}")
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if trials < 1 or parallel < 1:
        raise ValueError(f"--trials and parallel must be ≥ 1, got {trials} and {parallel}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = study_name or f"{dataset}-{method}-{setting}"
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True, direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS),
                                pruner=pruner())
    from optuna.trial import TrialState

    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # interrupted earlier
        study.tell(stale.number, state=TrialState.FAIL)
    if not study.trials:
        for point in (current_point(method, setting), *enqueue):
            study.enqueue_trial({k: v for k, v in point.items() if k in space(method, setting)},
                                skip_if_exists=True)
    ref = dataset_ref(dataset, data_root)
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    while (left := trials - len(study.get_trials(deepcopy=False, states=finished))) > 0:
        asked = [study.ask() for _ in range(min(parallel, left))]
        jobs = [Job("engine.tuning:trial_job", {
            "dataset": ref, "checkpoint": checkpoint, "method": method, "setting": setting,
            "params": suggest(trial, method, setting), "device": device, "storage": storage, "study_name": name,
            "trial_id": trial._trial_id}, key=str(trial.number), cpus=cpus) for trial in asked]
        by_number = {str(trial.number): trial for trial in asked}
        for result in executor.run(jobs, on_progress=on_progress):
            trial = by_number[result.job.key]
            if not result.ok:
                trial.set_user_attr("error", result.error[:2000])
                study.tell(trial, state=TrialState.FAIL)
                continue
            trial.set_user_attr("cells", result.value["cells"])
            trial.set_user_attr("forgets", result.value["forgets"])
            if result.value["pruned"]:
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, result.value["score"])
    return study


def choose(study, setting: str, method: str | None = None):
    """The chosen trial: lowest score — class-wise among the trials that forget every tuning class, if any.

    With ``method``, only trials inside the study's space count: a study whose space encodes a budget (WSS-CL's
    class-wise `retain_fraction` ≤ 0.7) still runs the current default first for comparison, and that point may
    lie outside it."""
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if method is None or within_space(chosen_params(t), method, setting)]
    if not complete:
        return None
    eligible = [t for t in complete if t.user_attrs.get("forgets")] if setting in ("class", "classes") else complete
    return min(eligible or complete, key=lambda t: t.value)


def within_space(params: dict, method: str, setting: str) -> bool:
    """Whether every searched field of ``params`` lies inside ``space(method, setting)`` (choices or bounds)."""
    for name, (kind, *bounds) in space(method, setting).items():
        value = params.get(name)
        if value is None:
            return False
        if kind == "categorical":
            if value not in bounds:
                return False
        elif not bounds[0] <= value <= bounds[1]:
            return False
    return True


def trials_table(study, method: str, setting: str) -> str:
    """A Markdown table of a study's trials (chosen one in bold), for docs/tuning.md."""
    best = choose(study, setting, method)
    fields = list(space(method, setting))
    scenarios = SETTINGS[setting]
    lines = [f"## {method} — {setting} (Optuna, {len(study.trials)} trials, TPE seed from the study)", "",
             "| trial | state | " + " | ".join(fields) + " | " + " | ".join(scenarios) + " | mean score |",
             "|" + "---|" * (len(fields) + len(scenarios) + 3)]
    for trial in study.trials:
        bold = "**" if best is not None and trial.number == best.number else ""
        values = [_short(chosen_params(trial).get(f)) for f in fields]
        cells = trial.user_attrs.get("cells", {})
        shown = [f"{c['score']:.2f} ({c['UA']:.1f} / {c['MIA']:.1f} / {c['validation_acc']:.1f}, {c['seconds']:.1f} s)"
                 if (c := cells.get(s)) else "—" for s in scenarios]
        value = f"{trial.value:.2f}" if trial.value is not None and math.isfinite(trial.value) else "—"
        lines.append(f"| {bold}{trial.number}{bold} | {trial.state.name.lower()} | " + " | ".join(values + shown)
                     + f" | {bold}{value}{bold} |")
    return "\n".join(lines) + "\n"


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def chosen_params(trial) -> dict:
    """The values a trial ran with (rounded as `suggest` rounds them; older studies: Optuna's raw params)."""
    return dict(trial.user_attrs.get("params") or trial.params)


def _literal(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def new_defaults(method: str, setting: str, params: dict) -> tuple[dict, dict]:
    """(field defaults, SETTINGS) of ``method``'s config once ``params`` (plus FIXED) is its choice for ``setting``.

    The random setting's choice becomes the fields' defaults (they serve every setting without overrides);
    a class-wise choice becomes SETTINGS["class"]. Every other setting keeps its full resolved config, so its
    overrides are recomputed against the new defaults (only the fields that differ are kept).
    """
    from engine.methods import METHODS, config_fields

    cls = METHODS[method].config_class
    fields = {f.name: f.default for f in config_fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValueError(f"{method} has no option {unknown[0]!r}")
    chosen = {**FIXED.get(method, {}).get(setting, {}), **params}
    full = {name: {**fields, **over} for name, over in cls.SETTINGS.items()}
    defaults = dict(fields)
    if setting == "random":
        defaults.update(chosen)
    else:
        full[setting] = {**fields, **cls.SETTINGS.get(setting, {}), **chosen}
    settings = {name: {k: v for k, v in values.items() if v != defaults[k]} for name, values in full.items()}
    return defaults, {name: over for name, over in settings.items() if over}


def record_choice(method: str, setting: str, params: dict, source: Optional[Path] = None) -> Path:
    """Write a chosen point where the method keeps its defaults: its config class's source file (the
    ``option(default, …)`` of each field; ``SETTINGS = {…}`` for class-wise overrides). Returns that file.

    Only literals change (located with ``ast``, so comments and layout stay); ``source`` lets a test edit a copy.
    """
    import ast
    import inspect

    from engine.methods import METHODS, config_fields

    cls = METHODS[method].config_class
    path = Path(source) if source is not None else Path(inspect.getsourcefile(cls))
    text = path.read_text()
    old = {f.name: f.default for f in config_fields(cls)}
    defaults, settings = new_defaults(method, setting, params)
    node = next((n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ClassDef) and n.name == cls.__name__),
                None)
    if node is None:
        raise ValueError(f"{path} does not define {cls.__name__}")
    edits = []                                           # (ast node whose source is replaced, new source)
    for item in node.body:
        if (isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name)
                and item.targets[0].id == "SETTINGS"):
            edits.append((item.value, _literal(settings)))
        elif (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.target.id in old
              and defaults[item.target.id] != old[item.target.id]):
            if not (isinstance(item.value, ast.Call) and item.value.args):
                raise ValueError(f"{cls.__name__}.{item.target.id} is not declared as option(default, …)")
            edits.append((item.value.args[0], _literal(defaults[item.target.id])))
    if not any(isinstance(n, ast.Dict) for n, _ in edits) and settings != cls.SETTINGS:
        raise ValueError(f"{cls.__name__} has no SETTINGS = {{…}} to write")
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(lineno: int, col: int) -> int:          # ast columns count UTF-8 bytes
        return starts[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode())

    for target, new in sorted(edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True):
        text = (text[:offset(target.lineno, target.col_offset)] + new
                + text[offset(target.end_lineno, target.end_col_offset):])
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)
    return path
