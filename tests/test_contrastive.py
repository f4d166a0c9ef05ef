"""kdlib.contrastive: the InfoNCE form of contrastive representation distillation (Tian et al., ICLR 2020)."""
import math

import pytest
import torch

from kdlib.contrastive import contrastive_loss


def infonce64(s, t, temperature):
    """The formula written out in float64, one row at a time: −mean_i log(exp(a_ii) / Σ_j exp(a_ij))."""
    s, t = s.double(), t.double()
    s = s / s.pow(2).sum(dim=1, keepdim=True).sqrt()
    t = t / t.pow(2).sum(dim=1, keepdim=True).sqrt()
    total = 0.0
    for i in range(len(s)):
        scores = [(s[i] * t[j]).sum() / temperature for j in range(len(t))]
        total = total - (scores[i] - torch.stack(scores).exp().sum().log())
    return total / len(s)


@pytest.mark.parametrize("batch, width, temperature", [(2, 3, 1.0), (8, 16, 0.1), (5, 4, 0.5), (16, 2, 2.0)])
def test_value_and_gradients_match_a_float64_computation(batch, width, temperature):
    generator = torch.Generator().manual_seed(batch)
    s = (3 * torch.randn(batch, width, generator=generator)).requires_grad_(True)
    t = (0.5 * torch.randn(batch, width, generator=generator)).requires_grad_(True)
    loss = contrastive_loss(s, t, temperature)
    grad_s, grad_t = torch.autograd.grad(loss, (s, t))
    s64, t64 = s.detach().double().requires_grad_(True), t.detach().double().requires_grad_(True)
    expected = infonce64(s64, t64, temperature)
    expected_s, expected_t = torch.autograd.grad(expected, (s64, t64))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(grad_s.double(), expected_s, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grad_t.double(), expected_t, rtol=1e-4, atol=1e-6)


def test_hand_computed_values():
    # identical teacher rows: every candidate scores the same, the loss is log B whatever the student says
    assert contrastive_loss(torch.randn(4, 3), torch.ones(4, 3), 0.1).item() == pytest.approx(math.log(4), rel=1e-6)
    # orthonormal pairs matched row by row: a_ii = 1/τ, a_ij = 0, loss = log(1 + (B − 1)·exp(−1/τ))
    eye = torch.eye(3)
    assert contrastive_loss(eye, 2 * eye, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2.0)), rel=1e-6)
    # the same pairs shuffled: student i points at a wrong teacher row (score 2), its own scores 0: log(exp(2) + 2)
    shifted = eye[[1, 2, 0]]
    assert contrastive_loss(shifted, eye, 0.5).item() == pytest.approx(math.log(math.exp(2.0) + 2), rel=1e-6)


def test_lengths_do_not_matter_and_the_teacher_side_gets_gradients():
    generator = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    scale = torch.rand(6, 1, generator=generator) + 0.5
    assert contrastive_loss(scale * s, t).item() == pytest.approx(contrastive_loss(s, t).item(), rel=1e-5)
    t.requires_grad_(True)
    contrastive_loss(s, t).backward()
    assert t.grad.abs().sum() > 0  # CRD learns a head on the teacher's side: the loss does not detach it


def test_lower_temperature_sharpens_a_correct_match():
    eye = torch.eye(4)
    assert contrastive_loss(eye, eye, 0.05) < contrastive_loss(eye, eye, 0.5) < contrastive_loss(eye, eye, 5.0)
