"""Per-setting defaults: class-wise WSS-CL gets the stronger forgetting stage chosen for it on validation."""
from engine import make_config, setting_defaults
from engine.methods import METHODS, SETTING_DEFAULTS


def test_class_setting_overrides_only_its_fields():
    base, classwise = make_config("wsscl"), make_config("wsscl", forget_kind="class")
    assert classwise.stage1_lr == SETTING_DEFAULTS["wsscl"]["class"]["stage1_lr"] != base.stage1_lr
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
