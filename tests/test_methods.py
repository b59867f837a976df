"""Contract test over the method registry, on a tiny model and tiny data (CPU, seconds)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine import METHODS, ForgetSpec, RunCancelled, config_fields, make_config, make_split, run_unlearning

CPU = torch.device("cpu")


def fast_config(name: str):
    """The smallest config of each method (one epoch where there is an epoch count)."""
    names = {field.name for field in config_fields(METHODS[name].config_class)}
    overrides = {key: 1 for key in ("epochs",) if key in names}
    if name == "scrub":
        overrides["max_epochs"] = 1
    return make_config(name, **overrides)


def state_of(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", list(METHODS))
def test_method_contract(name, tiny):
    dataset, split, model = tiny
    before = state_of(model)
    model.train()  # the method must not even flip the input's mode
    calls = []
    result = METHODS[name].unlearn(model, dataset, split, fast_config(name), device=CPU, seed=3,
                                   on_progress=calls.append)
    # input model unchanged (weights, buffers, mode)
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), f"{name} changed the input's {key}"
    # same architecture back, eval mode, something learned
    assert type(result.model) is type(model) and result.model is not model
    assert not result.model.training
    assert result.model.state_dict().keys() == model.state_dict().keys()
    assert any(not torch.equal(v, before[k]) for k, v in result.model.state_dict().items())
    # progress went through the callback and into the history
    assert calls and all(0 < p.step <= p.total for p in calls)
    assert result.history and result.method == name and result.seconds > 0
    assert result.config == dataclasses.asdict(fast_config(name))


@pytest.mark.parametrize("name", list(METHODS))
def test_method_is_deterministic(name, tiny):
    dataset, split, model = tiny
    first = METHODS[name].unlearn(model, dataset, split, fast_config(name), device=CPU, seed=5)
    second = METHODS[name].unlearn(model, dataset, split, fast_config(name), device=CPU, seed=5)
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), f"{name}: {key} differs between equal seeds"


@pytest.mark.parametrize("name", list(METHODS))
def test_method_honours_cancel(name, tiny):
    dataset, split, model = tiny
    calls = []

    def stop_after_first_report():
        return len(calls) >= 1

    with pytest.raises(RunCancelled):
        METHODS[name].unlearn(model, dataset, split, fast_config(name), device=CPU, seed=0,
                              on_progress=calls.append, should_stop=stop_after_first_report)
    assert len(calls) == 1  # it stopped at the first check after the first report


def test_registry_entries_are_complete():
    assert {"wsscl", "retrain", "ft", "ga", "rl", "salun", "l1_sparse", "scrub"} <= set(METHODS)
    for name, info in METHODS.items():
        assert info.name == name and info.label and info.summary.endswith(".")
        for field in config_fields(info.config_class):
            assert field.help, f"{name}.{field.name} has no help text"
            assert field.type in ("int", "float", "str", "bool")
            if field.choices:
                assert field.default in field.choices
        info.config_class()  # defaults validate


def test_make_config_rejects_bad_values():
    assert make_config("wsscl", epochs=2).epochs == 2
    with pytest.raises(ValueError, match="no option 'learning_rate'"):
        make_config("ft", learning_rate=0.1)
    with pytest.raises(ValueError, match="lr"):
        make_config("ft", lr=-1.0)
    with pytest.raises(ValueError, match="guidance"):
        make_config("wsscl", guidance="fuzzy")
    with pytest.raises(ValueError, match="epochs"):
        make_config("ga", epochs=1.5)
    with pytest.raises(ValueError, match="unknown method"):
        make_config("nope")


def test_run_unlearning_builds_a_record(tiny):
    dataset, split, model = tiny
    reference = {"UA": 100.0, "RA": 50.0, "TA": 50.0, "MIA": 100.0}
    outcome = run_unlearning("ft", model, dataset, split, {"epochs": 1}, device=CPU, seed=1, reference=reference)
    record = outcome.record
    assert record["method"] == "ft" and record["seed"] == 1 and record["status"] == "finished"
    assert record["forget"]["classes"] == [1] and record["config"]["epochs"] == 1
    assert outcome.avg_gap == pytest.approx(np.mean([abs(outcome.evaluation.scores()[k] - reference[k])
                                                     for k in reference]))
    assert {"UA", "RA", "TA", "MIA"} <= set(record["metrics"]) and record["versions"]["torch"]


def test_wsscl_ablation_switches_skip_their_stage(tiny):
    """The ablation options switch a stage off exactly: no stage 1 and no stage-2 forget rounds and a head-only
    repair move only the head; no repair (retain_lr 0) leaves no retain step in the history."""
    dataset, split, model = tiny
    before = state_of(model)
    only_head = METHODS["wsscl"].unlearn(model, dataset, split, make_config(
        "wsscl", epochs=1, stage1_lr=0.0, contrastive_weight=0.0, stage2_kl=0.0, scope="repair_head",
        guidance="none"), device=CPU, seed=0)
    after = state_of(only_head.model)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("head.") for k in moved), moved   # batch-norm statistics untouched too
    assert {h["stage"] for h in only_head.history} == {"stage 2 · retain (CE)"}
    no_repair = METHODS["wsscl"].unlearn(model, dataset, split, make_config("wsscl", epochs=1, retain_lr=0.0,
                                                                             stage2_kl=1.0), device=CPU, seed=0)
    stages = {h["stage"] for h in no_repair.history}
    assert stages == {"stage 1 · forget (KL)", "stage 2 · forget (contrastive)"}
    assert any("kl" in h["losses"] for h in no_repair.history if h["stage"].startswith("stage 2"))
    probe = METHODS["wsscl"].unlearn(model, dataset, split, make_config("wsscl", epochs=1, scope="head",
                                                                         stage2_kl=1.0), device=CPU, seed=0)
    after = state_of(probe.model)       # every stage ran, on the head alone: the encoder is exactly the original's
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"head.weight", "head.bias"}
    assert {h["stage"] for h in probe.history} == {"stage 1 · forget (KL)", "stage 2 · forget (contrastive)",
                                                   "stage 2 · retain (CE)"}


def test_wsscl_rows_pass_moves_only_the_forgotten_rows(tiny):
    """Stage 3 changes only the forgotten classes' head rows: every image the run without it gives a retained
    class keeps its prediction, and fewer (never more) images are given a forgotten class."""
    from engine.training import predict

    dataset, _, model = tiny
    split = make_split(dataset, ForgetSpec(classes=(1, 2)))
    runs = [METHODS["wsscl"].unlearn(model, dataset, split, make_config("wsscl", epochs=1, rows_steps=steps,
                                                                         rows_lr=1.0), device=CPU, seed=0)
            for steps in (0, 40)]
    without, with_rows = (state_of(run.model) for run in runs)
    moved = {k for k in without if not torch.equal(without[k], with_rows[k])}
    assert moved == {"head.weight", "head.bias"}
    for name in moved:                                   # the retained classes' rows are bit-identical
        assert torch.equal(without[name][[0, 3]], with_rows[name][[0, 3]])
    assert {h["stage"] for h in runs[1].history} - {h["stage"] for h in runs[0].history} == \
        {"stage 3 · forgotten classes' head rows"}
    before, after = (predict(run.model, dataset.train_images, device=CPU) for run in runs)
    kept = ~np.isin(before.predictions, [1, 2])
    assert np.array_equal(before.predictions[kept], after.predictions[kept])
    forgotten = np.isin(after.predictions, [1, 2])
    assert forgotten.sum() <= (~kept).sum() and forgotten[~kept].sum() < (~kept).sum()
    # a set of images (no whole class) has no rows to push: the pass is skipped
    samples = make_split(dataset, ForgetSpec(sample_ids=tuple(split.retain[:8].tolist())))
    plain = METHODS["wsscl"].unlearn(model, dataset, samples, make_config("wsscl", epochs=1), device=CPU, seed=0)
    pushed = METHODS["wsscl"].unlearn(model, dataset, samples, make_config("wsscl", epochs=1, rows_steps=40),
                                      device=CPU, seed=0)
    assert all(torch.equal(v, state_of(pushed.model)[k]) for k, v in state_of(plain.model).items())


@pytest.mark.parametrize("classes", [(1,), (1, 2)])
def test_wsscl_rows_target_lowers_the_forget_sets_median_confidence(tiny, classes):
    """With `rows_target` (and no rows pass), stage 3 lowers each forgotten class's bias until the median φ of its
    D_f images is the target (several classes: to within the iteration's tolerance); nothing else moves, no
    retained prediction changes, and a bias is never raised (a target above the current median does nothing)."""
    import copy

    from engine.audit import logit_scaled_confidence
    from engine.methods.wsscl import suppress_forgotten_rows
    from engine.training import DeviceImages, predict

    dataset, _, model = tiny
    split = make_split(dataset, ForgetSpec(classes=classes))
    runs = [METHODS["wsscl"].unlearn(model, dataset, split, make_config("wsscl", epochs=1, rows_target=target),
                                     device=CPU, seed=0) for target in (0.0, -6.0)]
    labels = dataset.train_labels.numpy()[split.forget]
    phi = [logit_scaled_confidence(predict(run.model, dataset.train_images[torch.as_tensor(split.forget)],
                                           device=CPU).logits, labels) for run in runs]
    assert all(np.median(phi[0][labels == k]) > -6.0 for k in classes)      # so the target is a push down
    for k in classes:
        assert abs(np.median(phi[1][labels == k]) + 6.0) < 0.01
    plain, shifted = (state_of(run.model) for run in runs)
    moved = {k for k in plain if not torch.equal(plain[k], shifted[k])}
    assert moved == {"head.bias"}
    kept = [c for c in range(plain["head.bias"].shape[0]) if c not in classes]
    assert torch.equal(plain["head.bias"][kept], shifted["head.bias"][kept])
    assert (shifted["head.bias"][list(classes)] < plain["head.bias"][list(classes)]).all()
    before, after = (predict(run.model, dataset.train_images, device=CPU).predictions for run in runs[:2])
    retained = ~np.isin(before, classes)
    assert np.array_equal(before[retained], after[retained])
    assert "stage 3 · forgotten classes' head rows" in {h["stage"] for h in runs[1].history}
    # a target above the medians (now −6) is never reached by raising a bias: the model is left as it was
    again = copy.deepcopy(runs[1].model)
    suppress_forgotten_rows(again, DeviceImages.from_indices(dataset, split.forget, CPU), classes, 0, 0.1,
                            target=-3.0)
    assert all(torch.equal(v, state_of(again)[k]) for k, v in shifted.items())


def test_self_supervised_encoder_probe_and_wsscl(tiny):
    """SimCLR without labels + a linear probe gives a model every method accepts (the paper's SSL setting)."""
    from engine.selfsupervised import fit_linear_probe, nt_xent, train_simclr
    from engine.splits import training_indices

    dataset, split, _ = tiny
    first = torch.randn(4, 6)
    assert nt_xent(first, first, 0.1) < nt_xent(first, torch.randn(4, 6), 0.1)
    scrambled = dataclasses.replace(dataset, train_labels=torch.zeros_like(dataset.train_labels))
    encoder = train_simclr(scrambled, training_indices(dataset), device=CPU, epochs=1, batch_size=64)
    same = train_simclr(dataset, training_indices(dataset), device=CPU, epochs=1, batch_size=64)
    for key, value in encoder.state_dict().items():  # labels were never read
        assert torch.equal(value, same.state_dict()[key])
    model = fit_linear_probe(encoder, dataset, training_indices(dataset), device=CPU, epochs=50)
    from engine.evaluation import evaluate

    assert evaluate(model, dataset, split, device=CPU).RA > 40.0  # the probe learned something on 4 classes
    outcome = run_unlearning("wsscl", model, dataset, split, {"epochs": 1}, device=CPU, seed=0,
                             reference={"UA": 100.0, "RA": 0.0, "TA": 0.0, "MIA": 100.0})
    assert outcome.evaluation.UA > 50.0  # WSS-CL acted on the probe's logits: class 1 mostly forgotten
    assert outcome.result.model.head.weight.shape == model.head.weight.shape
