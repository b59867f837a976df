"""A guidance weight of 0 freezes a weight through a full WSS-CL run (both stages, momentum and weight decay)."""
from __future__ import annotations

import pytest
import torch

from engine import METHODS, make_config

CPU = torch.device("cpu")


def test_zero_guidance_freezes_weights_through_wsscl(tiny):
    dataset, split, model = tiny
    config = make_config("wsscl", guidance="hard", sparsity=0.3, epochs=2, retain_weight_decay=0.05)
    result = METHODS["wsscl"].unlearn(model, dataset, split, config, device=CPU, seed=0)
    guidance = result.extras["guidance"]
    original = dict(model.named_parameters())
    frozen = moved = 0
    for name, param in result.model.named_parameters():
        zero = guidance[name] == 0
        assert torch.equal(param.detach()[zero], original[name].detach()[zero]), f"{name} moved where w = 0"
        frozen += int(zero.sum())
        moved += int((param.detach()[~zero] != original[name].detach()[~zero]).sum())
    assert frozen > 0 and moved > 0


def test_soft_guidance_is_kept_for_the_insights(tiny):  # noqa: F811
    dataset, split, model = tiny
    result = METHODS["wsscl"].unlearn(model, dataset, split, make_config("wsscl", epochs=1), device=CPU, seed=0)
    guidance, saliency = result.extras["guidance"], result.extras["saliency"]
    assert guidance.keys() == saliency.keys() == dict(model.named_parameters()).keys()
    values = torch.cat([w.flatten() for w in guidance.values()])
    assert values.min() >= 0 and values.max() <= 1 and (values == 1).any() and (values < 1).any()
    assert result.extras["guidance_summary"][0]["name"]


def test_salun_moves_only_masked_weights(tiny):  # noqa: F811
    dataset, split, model = tiny
    result = METHODS["salun"].unlearn(model, dataset, split, make_config("salun", epochs=1), device=CPU, seed=0)
    original = dict(model.named_parameters())
    for name, param in result.model.named_parameters():
        zero = result.extras["guidance"][name] == 0
        assert torch.equal(param.detach()[zero], original[name].detach()[zero])


@pytest.mark.parametrize("options", [{"guidance": "sigmoid"}, {"guidance": "none"}, {"pseudo_label": "batch_mean"},
                                     {"stage1_objective": "maximize"}, {"representation": "logits"},
                                     {"positives": "none"}, {"retain_fraction": 0.5},
                                     {"forget_batch_norm": "eval", "stage1_lr": 0.002}, {"retain_schedule": "constant"},
                                     {"pseudo_label": "teacher_others"}, {"pseudo_label": "batch_mean_others"},
                                     {"stage1_clip": 1.0}])
def test_wsscl_variants_run(tiny, options):  # noqa: F811
    dataset, split, model = tiny
    result = METHODS["wsscl"].unlearn(model, dataset, split, make_config("wsscl", epochs=1, **options), device=CPU)
    assert result.config["guidance"] == options.get("guidance", "soft")
    assert ("guidance" in result.extras) == (options.get("guidance") != "none")
    stages = {entry["stage"] for entry in result.history}
    assert {"stage 1 · forget (KL)", "stage 2 · forget (contrastive)", "stage 2 · retain (CE)"} <= stages


def test_stage1_clip_bounds_the_forgetting_step(tiny):  # noqa: F811
    """A tiny gradient-norm cap makes stage 1 (alone: E = 0) move the weights by at most lr·cap·Σmomentum."""
    dataset, split, model = tiny
    free = METHODS["wsscl"].unlearn(model, dataset, split, make_config("wsscl", epochs=0, stage1_lr=0.05), device=CPU)
    capped = METHODS["wsscl"].unlearn(model, dataset, split, make_config("wsscl", epochs=0, stage1_lr=0.05,
                                                                         stage1_clip=1e-6), device=CPU)
    before = dict(model.named_parameters())

    def moved(result):
        return max((p.detach() - before[n].detach()).abs().max().item() for n, p in result.model.named_parameters())

    steps = -(-len(split.forget) // 64)
    assert moved(free) > 1e-3
    assert moved(capped) <= 0.05 * 1e-6 * steps / (1 - 0.9) + 1e-7
