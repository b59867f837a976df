"""The Optuna tuner on the tiny dataset: a study runs, resumes from its sqlite storage, and never reads test data."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.executor import InlineExecutor, dataset_ref, open_dataset
from engine.tuning import WithheldDataError, choose, chosen_params, record_choice, run_study, trials_table, withhold_test
from tests.scale_env import make_tiny_assets


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_tiny_assets(tmp_path_factory.mktemp("tuning-assets"))


def test_withheld_test_set_raises_on_any_use(assets):
    dataset = withhold_test(open_dataset(dataset_ref(str(assets[0]))))
    for touch in (lambda: dataset.test_images[0], lambda: dataset.test_labels.numpy(), lambda: len(dataset.test_images),
                  lambda: dataset.test_images.shape, lambda: torch.as_tensor(dataset.test_labels) + 1):
        with pytest.raises(WithheldDataError):
            touch()
    assert dataset.train_images.shape[0] == 200   # the training pool is untouched


def test_study_runs_resumes_and_never_touches_test(assets, tmp_path, monkeypatch):
    import engine.tuning as tuning

    npz, original = assets
    reads = []
    real = tuning.withhold_test
    monkeypatch.setattr(tuning, "withhold_test", lambda d: reads.append(d.name) or real(d))
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    options = dict(executor=InlineExecutor(), storage=storage, dataset=str(npz), checkpoint=str(original),
                   device="cpu")
    first = [t.params for t in run_study("ga", "class", 3, **options).trials]
    assert len(first) == 3 and reads                    # every trial went through the withheld dataset
    again = run_study("ga", "class", 5, **options)      # resumes: 3 kept, 2 more
    assert len(again.trials) == 5 and [t.params for t in again.trials[:3]] == first
    best = choose(again, "class")
    assert best is not None and "| trial | state | lr | epochs |" in trials_table(again, "ga", "class")
    assert chosen_params(best) == best.user_attrs["params"]


def _config_literals(path, class_name):
    """SETTINGS and each field's option(default, …) as written in a method's source file."""
    import ast

    node = next(n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef) and n.name == class_name)
    settings = next(ast.literal_eval(i.value) for i in node.body if isinstance(i, ast.Assign)
                    and i.targets[0].id == "SETTINGS")
    fields = {i.target.id: ast.literal_eval(i.value.args[0]) for i in node.body if isinstance(i, ast.AnnAssign)}
    return settings, fields


def test_record_choice_writes_the_method_file(tmp_path):
    """A choice lands in the config class's source (a copy here): random → field defaults, class → SETTINGS;
    every other setting keeps its resolved values; comments and everything else stay as they were."""
    import inspect

    from engine.methods import METHODS, make_config

    source = Path(inspect.getsourcefile(METHODS["ga"].config_class))
    before_class = make_config("ga", forget_kind="class")
    random_copy, class_copy = tmp_path / "random.py", tmp_path / "class.py"
    for copy in (random_copy, class_copy):
        copy.write_text(source.read_text())
    record_choice("ga", "random", {"lr": 0.00042, "epochs": 5}, source=random_copy)
    settings, fields = _config_literals(random_copy, "GAConfig")
    assert fields["lr"] == 0.00042 and fields["epochs"] == 5
    class_values = {**fields, **settings.get("class", {})}
    assert class_values["lr"] == before_class.lr and class_values["epochs"] == before_class.epochs
    record_choice("ga", "class", {"lr": 0.0025, "epochs": 3}, source=class_copy)
    settings, fields = _config_literals(class_copy, "GAConfig")
    assert settings == {"class": {"lr": 0.0025, "epochs": 3}}
    changed = [a for a, b in zip(source.read_text().splitlines(), class_copy.read_text().splitlines()) if a != b]
    assert len(changed) == 1 and "SETTINGS" in changed[0]   # only the overrides' line; comments and layout kept
    with pytest.raises(ValueError, match="no option"):
        record_choice("ga", "class", {"nope": 1}, source=copy)


def test_tune_command(assets, tmp_path, capsys):
    npz, original = assets
    out = tmp_path / "best.json"
    assert main(["tune", "--method", "ft", "--setting", "random", "--trials", "2", "--dataset", str(npz),
                 "--checkpoint", str(original), "--device", "cpu", "--storage", f"sqlite:///{tmp_path / 't.db'}",
                 "--report", str(tmp_path / "t.md"), "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["trials"] == 2 and set(payload["params"]) == {"lr", "epochs"}
    assert "random 10%" in (tmp_path / "t.md").read_text()
    assert main(["tune", "--method", "ft", "--setting", "nope", "--trials", "1"]) == 2   # one error: line


def test_settings_spaces_and_the_class_wise_constraint():
    """Several classes tune the class-wise defaults on more scenarios (with their own space); hand-picked sets are
    scored against a Retrain; a class-wise cell forgets only if ≤ 1 % of the forgotten classes' validation
    images are still right."""
    from engine.tuning import (RETRAIN_TARGETS, SCENARIOS, SETTINGS, current_point, forgets_all,
                               new_defaults, retrain_score, space)

    assert set(SETTINGS) >= {"class", "random", "classes", "samples"}
    assert all(name in SCENARIOS for names in SETTINGS.values() for name in names)
    assert "stage2_kl" in space("wsscl", "classes") and "stage2_kl" not in space("wsscl", "class")
    assert space("ga", "classes") == space("ga", "class")
    assert set(current_point("wsscl", "classes")) == set(space("wsscl", "classes"))
    assert "samples" in RETRAIN_TARGETS
    defaults, settings = new_defaults("wsscl", "classes", {"stage2_kl": 0.5})
    assert settings["classes"]["stage2_kl"] == 0.5 and defaults["stage2_kl"] == 0.0   # several classes' own point
    assert "stage2_kl" not in settings["class"]
    cell = {"UA": 100.0, "MIA": 100.0, "validation_forget_acc": 0.5}
    assert forgets_all(cell) and not forgets_all({**cell, "validation_forget_acc": 1.5})
    assert forgets_all({"UA": 99.0, "MIA": 99.5}) and not forgets_all({"UA": 98.9, "MIA": 100.0})
    same = {"UA": 10.0, "MIA": 20.0, "validation_acc": 90.0, "retain_acc": 95.0}
    assert retrain_score(same, same) == 0.0
    assert retrain_score({**same, "UA": 14.0}, same) == 1.0


def test_a_budgeted_space_keeps_the_choice_inside_it():
    """WSS-CL's class-wise study is scored against Retrains, and its space (one epoch over at most 70 % of D_r) is
    the run-time budget: the current default, tried first for comparison, cannot be chosen from outside it."""
    import optuna
    from optuna.distributions import FloatDistribution

    from engine.tuning import against_retrain, current_point, within_space

    assert against_retrain("wsscl", "class") and against_retrain("ga", "samples")
    assert not against_retrain("ga", "class") and not against_retrain("wsscl", "random")
    point = current_point("wsscl", "class")
    assert within_space(point, "wsscl", "class")                      # today's default lies inside the budget
    assert not within_space({**point, "retain_fraction": 1.0}, "wsscl", "class")
    assert not within_space({k: v for k, v in point.items() if k != "sparsity"}, "wsscl", "class")
    study = optuna.create_study()
    for fraction, value in ((1.0, 0.1), (0.5, 0.3), (0.6, 0.2)):
        params = {**point, "retain_fraction": fraction}
        study.add_trial(optuna.trial.create_trial(
            params={"retain_fraction": fraction}, distributions={"retain_fraction": FloatDistribution(0.0, 1.0)},
            value=value, user_attrs={"params": params, "forgets": True}))
    assert choose(study, "class").number == 0                           # without the method: the lowest score
    assert choose(study, "class", "wsscl").number == 2                  # inside the space: the best of those


def test_samples_setting_draws_a_hand_picked_set_and_scores_against_a_retrain(assets, tmp_path, monkeypatch):
    """A samples trial resolves its sample rule on the training pool (never the validation hold-out), trains
    the scenario's Retrain once (cached on disk) and scores the run's validation proxy against it."""
    import engine.tuning as tuning
    from engine.splits import validation_indices

    npz, original = assets
    monkeypatch.setattr(tuning, "RETRAIN_CACHE", tmp_path / "retrains")
    monkeypatch.setitem(tuning.SCENARIOS, "tiny samples", {"sample_rule": "mixed-200", "draw_seed": 1})
    monkeypatch.setitem(tuning.SETTINGS, "samples", ("tiny samples",))
    data = open_dataset(dataset_ref(str(npz)))
    from engine.checkpoints import load_checkpoint

    model = load_checkpoint(original, device="cpu")[0]
    ids = tuning.drawn_ids(data, "mixed-200", 1, model)
    assert ids and not set(ids) & set(validation_indices(data, 0).tolist())
    result = tuning.trial_job(dataset_ref(str(npz)), str(original), "wsscl", "samples",
                              {"stage1_lr": 0.001, "retain_lr": 0.01, "sparsity": 0.5, "forget_batch_norm": "eval",
                               "pseudo_label": "uniform", "epochs": 1})
    cell = result["cells"]["tiny samples"]
    assert cell["score"] >= 0 and len(list((tmp_path / "retrains").glob("*.json"))) == 1
