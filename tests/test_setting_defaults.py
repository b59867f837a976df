"""Per-setting defaults: each method's grid-search choice per forget setting (docs/tuning.md) is what
make_config gives."""
import json
import re
from pathlib import Path

import pytest

from engine import make_config, setting_defaults
from engine.methods import METHODS, SETTING_DEFAULTS


def test_class_setting_overrides_only_its_fields():
    base, classwise = make_config("wsscl"), make_config("wsscl", forget_kind="class")
    assert classwise.pseudo_label == SETTING_DEFAULTS["wsscl"]["class"]["pseudo_label"] != base.pseudo_label
    assert make_config("wsscl", forget_kind="random") == base
    changed = {k for k, v in classwise.to_dict().items() if v != base.to_dict()[k]}
    assert changed == set(setting_defaults("wsscl", "class"))


def test_explicit_values_win_over_setting_defaults():
    assert make_config("wsscl", forget_kind="class", stage1_lr=0.001).stage1_lr == 0.001


def test_setting_defaults_are_valid_configs():
    for method, settings in SETTING_DEFAULTS.items():
        assert method in METHODS
        for kind in settings:
            make_config(method, forget_kind=kind)  # bounds checked at construction


def chosen_in_docs() -> list[tuple[str, str, dict]]:
    """(method, setting, point) from the "Chosen" list that scripts/tune_methods.py writes into docs/tuning.md."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "tuning.md").read_text()
    rows = []
    for method, rest in re.findall(r"^- `(\w+)`: (class .*)$", text, flags=re.M):
        for setting, point in re.findall(r"(classes|class|random|samples) `(\{.*?\})`", rest):
            rows.append((method, setting, json.loads(point)))
    return rows


def test_docs_list_a_choice_for_every_tuned_method_and_setting():
    assert {(m, s) for m, s, _ in chosen_in_docs()} == {(m, s) for m in METHODS if m != "retrain"
                                                        for s in ("class", "random")} | \
        {(m, s) for m in METHODS for s in ("classes", "samples") if s in METHODS[m].config_class.SETTINGS}


@pytest.mark.parametrize("method, setting, point", chosen_in_docs())
def test_config_defaults_are_the_grid_choice(method, setting, point):
    config = make_config(method, forget_kind=setting).to_dict()
    assert {k: config[k] for k in point} == point


def test_app_fast_mode_shrinks_defaults_but_never_enlarges_them(monkeypatch):
    from app import pipeline, settings

    monkeypatch.setattr(settings, "FAST", True)
    fast = pipeline.default_config("wsscl", "class")
    classwise_fraction = make_config("wsscl", forget_kind="class").retain_fraction
    assert fast["epochs"] == 1 and fast["retain_fraction"] == min(0.5, classwise_fraction)   # never more
    classwise = make_config("wsscl", forget_kind="class")
    assert fast["pseudo_label"] == "uniform_others" and fast["retain_lr"] == classwise.retain_lr  # class-wise stays
    assert pipeline.default_config("scrub")["retain_fraction"] == make_config("scrub").retain_fraction  # 0.3 < 0.5
    monkeypatch.setattr(settings, "FAST", False)
    assert pipeline.default_config("wsscl", "class") == make_config("wsscl", forget_kind="class").to_dict()


def test_the_run_form_names_the_defaults_it_starts_from():
    """The form says which setting's tuned defaults it shows: several classes share the class-wise point, and a
    method without a hand-picked entry says it runs its random defaults there."""
    from engine import ForgetSpec
    from app.pipeline import defaults_note

    assert defaults_note("wsscl", ForgetSpec(classes=(0, 2, 6))) == "defaults tuned for several whole classes at once"
    assert defaults_note("wsscl", ForgetSpec(classes=(1,))) == "defaults tuned for a whole class"
    assert "none tuned for several" in defaults_note("salun", ForgetSpec(classes=(0, 2)))
    assert defaults_note("wsscl", ForgetSpec(sample_ids=(1, 2))) == "defaults tuned for hand-picked images"
    assert "none tuned for hand-picked" in defaults_note("ga", ForgetSpec(sample_ids=(1, 2)))
    assert defaults_note("retrain", ForgetSpec(classes=(1,))) == "one set of defaults for every setting"
    assert defaults_note("wsscl", None) == ""


def test_several_classes_have_their_own_setting_and_fall_back_to_one_class():
    """ForgetSpec.setting: "classes" for two or more classes; WSS-CL has its own point there, a method without one
    uses its single-class defaults."""
    from engine import ForgetSpec

    assert ForgetSpec(classes=(3,)).setting == "class" and ForgetSpec(classes=(0, 6)).setting == "classes"
    assert ForgetSpec(fraction=0.1).setting == "random" and ForgetSpec(sample_ids=(4,)).setting == "samples"
    several = make_config("wsscl", forget_kind="classes")
    assert several.stage2_kl > 0 and make_config("wsscl", forget_kind="class").stage2_kl == 0
    # stage 3 acts on whole classes, one or several; sets of images have no forgotten rows
    one = make_config("wsscl", forget_kind="class")
    assert several.rows_steps > 0 and (one.rows_steps > 0 or one.rows_target < 0)
    random = make_config("wsscl", forget_kind="random")
    assert random.rows_steps == 0 and random.rows_target == 0
    assert make_config("salun", forget_kind="classes") == make_config("salun", forget_kind="class")
