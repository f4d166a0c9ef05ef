"""kdlib.losses against hand-computed values and independent float64 computations."""
import math

import pytest
import torch
import torch.nn.functional as F

from kdlib.data import UNLABELLED
from kdlib.losses import (distillation_loss, dkd_loss, hard_loss, kd_loss, logit_matching_loss, smoothed_cross_entropy,
                          soft_targets)

LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)


def random_logits(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---- soft_targets -------------------------------------------------------------------------------

def test_soft_targets_hand_computed():
    z = torch.tensor([[0.0, LN2, LN4]], dtype=torch.float64)
    # T = 1: exp(z) = 1, 2, 4
    assert torch.allclose(soft_targets(z, 1.0), torch.tensor([[1, 2, 4]], dtype=torch.float64) / 7)
    # T = 2: exp(z / 2) = 1, sqrt 2, 2
    expected = torch.tensor([[1, math.sqrt(2), 2]], dtype=torch.float64) / (3 + math.sqrt(2))
    assert torch.allclose(soft_targets(z, 2.0), expected)


def test_soft_targets_flatten_as_temperature_grows():
    z = random_logits(4, 10) * 5
    entropies = [-(p * p.log()).sum(-1).mean().item() for p in (soft_targets(z, t) for t in (1, 2, 4, 8, 20))]
    assert all(a < b for a, b in zip(entropies, entropies[1:]))
    assert entropies[-1] < math.log(10)
    assert torch.allclose(soft_targets(z, 1e6), torch.full_like(z, 0.1), atol=1e-5)


def test_soft_targets_stable_for_huge_logits():
    z = torch.tensor([[1000.0, 0.0, -1000.0]])
    p = soft_targets(z, 1.0)
    assert torch.isfinite(p).all() and p[0, 0] == 1.0


def test_soft_targets_works_over_last_dimension_of_any_shape():
    z = random_logits(2, 3, 5)
    assert torch.allclose(soft_targets(z, 3.0).sum(-1), torch.ones(2, 3, dtype=torch.float64))


# ---- kd_loss ------------------------------------------------------------------------------------

def test_kd_loss_hand_computed():
    # teacher p = (1/4, 3/4), student q = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2)
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    teacher, student = torch.tensor([[0.0, LN3]]), torch.zeros(1, 2)
    assert kd_loss(student, teacher, 1.0).item() == pytest.approx(kl, rel=1e-6)
    # the same two distributions at T = 2 (logits doubled): the loss is multiplied by T² = 4
    assert kd_loss(student, 2 * teacher, 2.0).item() == pytest.approx(4 * kl, rel=1e-6)


def test_kd_loss_is_batch_mean_of_kl_sum_over_classes():
    s, t = random_logits(6, 10, seed=1), random_logits(6, 10, seed=2)
    T = 3.0
    p, q = F.softmax(t / T, -1), F.softmax(s / T, -1)
    per_example = (p * (p / q).log()).sum(-1)  # independent: ratio, not log-difference
    assert torch.allclose(kd_loss(s, t, T), T * T * per_example.mean())
    # doubling the batch with a copy changes nothing: a mean, not a sum
    assert torch.allclose(kd_loss(torch.cat([s, s]), torch.cat([t, t]), T), kd_loss(s, t, T))


def test_kd_loss_zero_iff_same_distribution_and_not_symmetric():
    s, t = random_logits(5, 7, seed=3), random_logits(5, 7, seed=4)
    assert kd_loss(t + 3.0, t, 2.0).abs().item() < 1e-12  # shift-invariant softmax
    assert kd_loss(s, t, 2.0).item() > 0
    assert not torch.allclose(kd_loss(s, t, 2.0), kd_loss(t, s, 2.0))


def test_kd_loss_gradient_is_T_times_probability_difference():
    s, t = random_logits(4, 10, seed=5).requires_grad_(), random_logits(4, 10, seed=6)
    for T in (1.0, 4.0, 20.0):
        (grad,) = torch.autograd.grad(kd_loss(s, t, T), s)
        expected = T * (F.softmax(s / T, -1) - F.softmax(t / T, -1)) / 4
        assert torch.allclose(grad, expected, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: kd_loss(x, t, 3.0), (s,))


def test_T_squared_keeps_soft_gradient_scale_constant():
    s, t = random_logits(8, 10, seed=7), random_logits(8, 10, seed=8)
    s, t = (s - s.mean(-1, keepdim=True)).requires_grad_(), t - t.mean(-1, keepdim=True)
    norms = []
    for T in (5.0, 10.0, 20.0, 40.0):
        (grad,) = torch.autograd.grad(kd_loss(s, t, T) / T**2, s)  # the soft term without T²
        norms.append(grad.norm().item())
    # without T² the gradient falls as 1/T²: T² · norm tends to a constant (Hinton 2015, section 2.1)
    scaled = [n * T**2 for n, T in zip(norms, (5, 10, 20, 40))]
    assert norms[1] / norms[-1] == pytest.approx(16, rel=0.03)  # T 10 → 40: 4² times smaller
    assert scaled[-1] == pytest.approx(scaled[-2], rel=0.01)
    # with T² included, the limit is the logit-matching gradient (s − t) / (classes · batch)
    (grad,) = torch.autograd.grad(kd_loss(s, t, 1000.0), s)
    assert torch.allclose(grad, (s - t).detach() / (10 * 8), atol=1e-4)  # entries ~1e-2; error O(1/T)


# ---- distillation_loss --------------------------------------------------------------------------

def test_distillation_loss_mixes_hard_and_soft_terms():
    s, t = random_logits(6, 10, seed=9), random_logits(6, 10, seed=10)
    y = torch.tensor([0, 1, 2, 3, 4, 9])
    hard, soft = F.cross_entropy(s, y), kd_loss(s, t, 4.0)
    assert torch.allclose(distillation_loss(s, t, y, 4.0, alpha=0.0), hard)
    assert torch.allclose(distillation_loss(s, t, y, 4.0, alpha=1.0), soft)
    assert torch.allclose(distillation_loss(s, t, y, 4.0, alpha=0.3), 0.7 * hard + 0.3 * soft)


def test_distillation_loss_hand_computed():
    s, t, y = torch.zeros(1, 2), torch.tensor([[0.0, LN3]]), torch.tensor([1])
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    expected = 0.5 * math.log(2) + 0.5 * kl  # CE of (1/2, 1/2) on class 1 is ln 2
    assert distillation_loss(s, t, y, 1.0, 0.5).item() == pytest.approx(expected, rel=1e-6)


# ---- logit matching and label smoothing ---------------------------------------------------------

def test_logit_matching_loss_hand_computed():
    s, t = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    assert logit_matching_loss(s, t).item() == pytest.approx((1 + 4 + 0 + 9) / 4)


def test_smoothed_cross_entropy_matches_pytorch_and_hand_value():
    z, y = random_logits(5, 4, seed=11), torch.tensor([0, 1, 2, 3, 0])
    for eps in (0.0, 0.1, 0.5):
        assert torch.allclose(smoothed_cross_entropy(z, y, eps), F.cross_entropy(z, y, label_smoothing=eps))
    # uniform prediction over K = 4: every target puts mass 1 on log(1/4)
    assert smoothed_cross_entropy(torch.zeros(1, 4), torch.tensor([2]), 0.2).item() == pytest.approx(math.log(4))


# ---- the hard term ------------------------------------------------------------------------------

def test_hard_loss_averages_over_labelled_rows_only():
    z = random_logits(6, 4, seed=3).requires_grad_()
    y = torch.tensor([0, UNLABELLED, 2, 3, UNLABELLED, 1])
    labelled = y != UNLABELLED
    expected = F.cross_entropy(z[labelled], y[labelled])  # the boolean-indexed form, which syncs with the host
    assert torch.allclose(hard_loss(z, y), expected)
    grad, = torch.autograd.grad(hard_loss(z, y), z)
    assert torch.equal(grad[~labelled], torch.zeros(2, 4, dtype=torch.float64))  # transfer rows get no gradient
    assert hard_loss(z, torch.full((6,), UNLABELLED)).item() == 0.0
    assert torch.allclose(hard_loss(z, y.clamp(min=0)), F.cross_entropy(z, y.clamp(min=0)))


# ---- Decoupled KD -------------------------------------------------------------------------------

def dkd_by_hand(s, t, labels, T, alpha, beta):
    """Zhao et al. 2022 term by term, one row at a time, with explicit sums (float64)."""
    total = 0.0
    for row, y in enumerate(labels.tolist()):
        p = [math.exp(v / T) for v in t[row].tolist()]
        q = [math.exp(v / T) for v in s[row].tolist()]
        p, q = [v / sum(p) for v in p], [v / sum(q) for v in q]
        b_t, b_s = (p[y], 1 - p[y]), (q[y], 1 - q[y])
        tckd = sum(bt * math.log(bt / bs) for bt, bs in zip(b_t, b_s))
        rest = [c for c in range(len(p)) if c != y]
        pt_hat = [p[c] / (1 - p[y]) for c in rest]
        qs_hat = [q[c] / (1 - q[y]) for c in rest]
        nckd = sum(a * math.log(a / b) for a, b in zip(pt_hat, qs_hat))
        total += T * T * (alpha * tckd + beta * nckd)
    return total / len(labels)


@pytest.mark.parametrize("T, alpha, beta", [(1.0, 1.0, 8.0), (4.0, 1.0, 8.0), (2.0, 0.5, 2.0)])
def test_dkd_matches_the_paper_term_by_term(T, alpha, beta):
    s, t = random_logits(5, 6, seed=1) * 3, random_logits(5, 6, seed=2) * 3
    y = torch.tensor([0, 5, 2, 2, 1])
    assert math.isclose(dkd_loss(s, t, y, T, alpha, beta).item(), dkd_by_hand(s, t, y, T, alpha, beta), rel_tol=1e-10)


def test_dkd_with_alpha_one_and_beta_one_minus_p_target_is_hinton_kd():
    # Hinton's KD = TCKD + (1 − p_target_teacher) · NCKD, row by row (the paper's eq. 7)
    s, t, T = random_logits(4, 5, seed=4), random_logits(4, 5, seed=5) * 4, 2.0
    y = torch.tensor([1, 0, 4, 2])
    for row in range(4):
        one = slice(row, row + 1)
        p_target = soft_targets(t[one], T)[0, y[row]].item()
        decoupled = dkd_loss(s[one], t[one], y[one], T, 1.0, 0.0) + (1 - p_target) * dkd_loss(s[one], t[one], y[one], T, 0.0, 1.0)
        assert torch.allclose(decoupled, kd_loss(s[one], t[one], T))


def test_dkd_gradient_is_finite_for_a_confident_teacher_and_passes_gradcheck():
    s = random_logits(3, 4, seed=6).requires_grad_()
    t = torch.tensor([[60.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [-5.0, 5.0, 0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1])
    grad, = torch.autograd.grad(dkd_loss(s, t, y, 1.0), s)
    assert torch.isfinite(grad).all()
    assert torch.autograd.gradcheck(lambda z: dkd_loss(z, t, y, 2.0), (s,))
