"""kdlib's reference functions for the lessons' exercises (the fallbacks of checks.yours_or_kdlib):
soft_term_gradient and soft_cross_entropy_gradient (kdlib.losses), class_spread_ratio (kdlib.metrics)."""
import math

import pytest
import torch

import kdlib
from kdlib import losses, metrics


def autograd_of_kd_loss(s, t, temperature):
    s = s.detach().clone().requires_grad_(True)
    return torch.autograd.grad(kdlib.kd_loss(s, t, temperature), s)[0]


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0])
def test_soft_gradients_are_the_autograd_gradients_of_kd_loss(temperature):
    generator = torch.Generator().manual_seed(0)
    s = torch.randn(6, 10, generator=generator, dtype=torch.float64) * 3
    t = torch.randn(6, 10, generator=generator, dtype=torch.float64) * 3
    expected = autograd_of_kd_loss(s, t, temperature)  # T² · KL, so T² · soft_term_gradient
    torch.testing.assert_close(losses.soft_cross_entropy_gradient(s, t, temperature), expected)
    torch.testing.assert_close(losses.soft_term_gradient(s, t, temperature), expected / temperature**2)


def test_soft_gradients_by_hand():
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3)]])  # q = (1/2, 1/2), p = (1/4, 3/4)
    torch.testing.assert_close(losses.soft_term_gradient(s, t, 1.0), torch.tensor([[0.25, -0.25]]))
    torch.testing.assert_close(losses.soft_term_gradient(2 * s, 2 * t, 2.0), torch.tensor([[0.125, -0.125]]))
    torch.testing.assert_close(losses.soft_cross_entropy_gradient(2 * s, 2 * t, 2.0), torch.tensor([[0.5, -0.5]]))
    batch = losses.soft_cross_entropy_gradient(torch.zeros(2, 2), torch.tensor([[0.0, math.log(3)], [0.0, 0.0]]), 1.0)
    torch.testing.assert_close(batch, torch.tensor([[0.125, -0.125], [0.0, 0.0]]))


def test_soft_gradients_leave_their_inputs_alone_and_carry_no_graph():
    s = torch.randn(3, 4, requires_grad=True)
    g = losses.soft_term_gradient(s, torch.randn(3, 4), 2.0)
    assert s.grad is None and not g.requires_grad


def test_soft_cross_entropy_gradient_tends_to_logit_matching_for_zero_mean_logits():
    generator = torch.Generator().manual_seed(1)
    s = torch.randn(8, 10, generator=generator, dtype=torch.float64)
    t = torch.randn(8, 10, generator=generator, dtype=torch.float64)
    s, t = s - s.mean(-1, keepdim=True), t - t.mean(-1, keepdim=True)
    mse = (s - t) / s.numel()
    gap = (losses.soft_cross_entropy_gradient(s, t, 1000.0) - mse).norm() / mse.norm()
    assert gap < 0.01


@pytest.mark.parametrize("call", [
    lambda: losses.soft_term_gradient(torch.zeros(2, 3), torch.zeros(2, 4), 1.0),
    lambda: losses.soft_term_gradient(torch.zeros(2, 3), torch.zeros(2, 3), 0.0),
    lambda: losses.soft_cross_entropy_gradient(torch.zeros(2, 3), torch.zeros(2, 3), -1.0),
])
def test_soft_gradients_reject_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_class_spread_ratio_by_hand():
    features = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [4.0, 1.0], [4.0, -1.0]])  # within 1, between 4
    labels = torch.tensor([0, 0, 1, 1])
    torch.testing.assert_close(metrics.class_spread_ratio(features, labels), torch.tensor(0.25))
    torch.testing.assert_close(metrics.class_spread_ratio(10 * features, labels), torch.tensor(0.25))
    unequal = torch.tensor([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 4.0]])  # within 0.5 per example, between 5
    torch.testing.assert_close(metrics.class_spread_ratio(unequal, torch.tensor([0, 0, 0, 1])), torch.tensor(0.1))


def test_class_spread_ratio_with_any_class_indices():
    features = torch.tensor([[0.0, 1.0], [0.0, -1.0], [6.0, 1.0], [6.0, -1.0], [3.0, 5.0], [3.0, 3.0]])
    centroids = torch.tensor([[0.0, 0.0], [6.0, 0.0], [3.0, 4.0]])
    got = metrics.class_spread_ratio(features, torch.tensor([7, 7, 2, 2, 9, 9]))
    torch.testing.assert_close(got, 1.0 / torch.pdist(centroids).mean())


@pytest.mark.parametrize("call", [
    lambda: metrics.class_spread_ratio(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)),  # one class
    lambda: metrics.class_spread_ratio(torch.zeros(4, 2), torch.tensor([0, 1, 0])),  # length mismatch
    lambda: metrics.class_spread_ratio(torch.zeros(4), torch.tensor([0, 1, 0, 1])),  # not (N, D)
])
def test_class_spread_ratio_rejects_bad_input(call):
    with pytest.raises(ValueError):
        call()
