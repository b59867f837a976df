"""Unit tests of the WSS-CL losses and the baselines' distillation loss, with hand-checkable answers."""
from __future__ import annotations

import math

import pytest
import torch

from engine.methods.scrub import distillation_kl
from engine.methods.wsscl import (contrastive_loss, kl_to_pseudo_label, positive_view, pseudo_label,
                                 uniform_retain_loss)
from engine.saliency import kl_to_uniform


def test_kl_to_uniform_is_zero_for_uniform_predictions():
    logits = torch.full((5, 10), 3.7)  # every class equally likely
    uniform = torch.full((10,), 0.1)
    assert kl_to_pseudo_label(logits, uniform).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_to_uniform(logits, torch.zeros(5, dtype=torch.long)).item() == pytest.approx(0.0, abs=1e-5)


def test_kl_to_uniform_of_a_confident_prediction():
    logits = torch.tensor([[math.log(0.7), math.log(0.1), math.log(0.1), math.log(0.1)]])
    expected = 0.25 * sum(math.log(0.25 / p) for p in (0.7, 0.1, 0.1, 0.1))
    assert kl_to_pseudo_label(logits, torch.full((4,), 0.25)).item() == pytest.approx(expected, rel=1e-5)
    assert kl_to_pseudo_label(logits, torch.full((4,), 0.25)).item() > 0


def test_contrastive_loss_falls_when_the_positive_gets_closer():
    torch.manual_seed(0)
    anchor = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    negatives = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    far = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    losses = [contrastive_loss(anchor, torch.nn.functional.normalize(far + t * (anchor - far), dim=1), negatives)
              for t in (0.0, 0.5, 1.0)]
    assert losses[0] > losses[1] > losses[2]


def test_contrastive_loss_matches_the_formula():
    anchor, positive = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]])
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    expected = -math.log(math.exp(0.5) / (math.exp(0.5) + math.exp(0.0) + math.exp(-1.0)))
    assert contrastive_loss(anchor, positive, negatives).item() == pytest.approx(expected, rel=1e-6)


def test_contrastive_loss_sends_no_gradient_into_the_negatives():
    anchor = torch.randn(3, 4, requires_grad=True)
    negatives = torch.randn(5, 4, requires_grad=True)
    contrastive_loss(anchor, anchor.detach() + 0.1, negatives).backward()
    assert negatives.grad is None and anchor.grad is not None


def test_uniform_retain_loss_is_minimal_when_equally_similar():
    negatives = torch.eye(3)
    equal = torch.ones(1, 3)
    unequal = torch.tensor([[3.0, 0.0, 0.0]])
    assert uniform_retain_loss(equal, negatives).item() == pytest.approx(math.log(3), rel=1e-6)
    assert uniform_retain_loss(unequal, negatives) > uniform_retain_loss(equal, negatives)


def test_distillation_kl_is_zero_for_equal_logits():
    logits = torch.randn(4, 5)
    assert distillation_kl(logits, logits, 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_positive_view_keeps_shape_and_is_seeded():
    images = torch.rand(6, 1, 28, 28)
    first = positive_view(images, hflip=True, generator=torch.Generator().manual_seed(1))
    second = positive_view(images, hflip=True, generator=torch.Generator().manual_seed(1))
    assert first.shape == images.shape and torch.equal(first, second) and not torch.equal(first, images)


def test_pseudo_labels_are_distributions_and_the_others_kinds_drop_the_label():
    torch.manual_seed(0)
    labels, teacher = torch.tensor([0, 2, 2]), torch.randn(3, 4) * 5
    for kind in ("uniform", "batch_mean", "uniform_others", "teacher_others", "batch_mean_others", "uniform_retained"):
        q = pseudo_label(kind, labels, 4, teacher, mix=0.5)
        assert torch.allclose(q.sum(-1), torch.ones(q.shape[:-1])), kind
        assert (q >= 0).all(), kind
    others = pseudo_label("uniform_others", labels, 4)
    assert torch.allclose(others[0], torch.tensor([0.0, 1 / 3, 1 / 3, 1 / 3]))
    nearest = pseudo_label("teacher_others", labels, 4, teacher)
    assert nearest[torch.arange(3), labels].abs().max() == 0
    expected = torch.softmax(teacher[0, 1:], 0)   # the teacher's own ranking of the other classes
    assert torch.allclose(nearest[0, 1:], expected, atol=1e-6)
    assert torch.allclose(pseudo_label("batch_mean_others", labels, 4, teacher), nearest.mean(0))
    with pytest.raises(ValueError, match="original model"):
        pseudo_label("teacher_others", labels, 4)


def test_uniform_retained_leaves_every_forgotten_class_out():
    """Several classes forgotten: q spreads over the kept classes only; one class (or none): uniform_others."""
    labels = torch.tensor([0, 2])
    q = pseudo_label("uniform_retained", labels, 5, forgotten=(0, 2))
    assert torch.allclose(q, torch.tensor([[0.0, 1 / 3, 0.0, 1 / 3, 1 / 3]] * 2))
    assert torch.equal(pseudo_label("uniform_retained", labels, 5, forgotten=()),
                       pseudo_label("uniform_others", labels, 5))
    assert torch.equal(pseudo_label("uniform_retained", torch.tensor([1, 1]), 5, forgotten=(1,)),
                       pseudo_label("uniform_others", torch.tensor([1, 1]), 5))
