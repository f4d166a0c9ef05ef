"""kdlib.contrastive: the InfoNCE form of contrastive representation distillation (Tian et al., ICLR 2020), and
training a student with it."""
import math

import pytest
import torch
import torch.nn.functional as F

from device_probe import TOY, caller_model, hinton_objective64
from kdlib import models
from kdlib.contrastive import contrastive_loss, distill_contrastive, projection_heads
from kdlib.training import distill, evaluate, train


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


def test_one_full_batch_step_records_the_float64_loss():
    """History.loss[0] of a one-batch epoch is (1 − α)·CE + α·T²·KL + β·InfoNCE(g_s(f_s), g_t(f_t), τ),
    recomputed in float64 from copies of the untrained student, the frozen teacher and heads seeded like the run's."""
    alpha, temperature, weight, tau = 0.7, 3.0, 0.5, 0.2
    t64 = caller_model("train", width=6).double().eval()
    s64 = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=1).double()
    student_head, teacher_head = projection_heads(4, 6, width=5, seed=2).double()
    x = TOY.x.double()
    with torch.no_grad():
        f_s, f_t = s64[:-1](x), t64[:-1](x)
        s, t = s64[-1](f_s), t64[-1](f_t)
        expected = (hinton_objective64(s, F.softmax(t / temperature, dim=1), TOY.y, temperature, alpha)
                    + weight * infonce64(student_head(f_s), teacher_head(f_t), tau))
    teacher, student = caller_model("train", width=6), models.mlp((1, 8, 8), 3, width=4, depth=1, seed=1)
    history, heads = distill_contrastive(student, teacher, TOY, contrastive_weight=weight, contrastive_temperature=tau,
                                         width=5, temperature=temperature, alpha=alpha, epochs=1,
                                         batch_size=len(TOY.x), seed=2, progress=False)
    assert history.loss[0] == pytest.approx(expected.item(), rel=1e-5)
    assert [tuple(head.weight.shape) for head in heads] == [(5, 4), (5, 6)]


def test_projection_heads_are_seeded():
    a, b, c = projection_heads(4, 8, seed=3), projection_heads(4, 8, seed=3), projection_heads(4, 8, seed=4)
    assert [tuple(head.weight.shape) for head in a] == [(128, 4), (128, 8)]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_same_seed_same_student_and_heads():
    runs = []
    for _ in range(2):
        student = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=1)
        _, heads = distill_contrastive(student, caller_model("train"), TOY, epochs=2, batch_size=4, seed=5,
                                       progress=False)
        runs.append([*student.state_dict().values(), *heads.state_dict().values()])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_the_student_learns_to_pick_out_each_examples_teacher_embedding(digits):
    """On held-out digits, through the learned heads, each student embedding is nearest (cosine) to the teacher's
    embedding of the same image far more often than by chance, and more than the untrained heads manage; and
    the β = 0 run is plain distill (same student)."""
    teacher = models.mlp((1, 8, 8), 10, width=64, depth=1, seed=0)
    train(teacher, digits.train, epochs=10, lr=3e-3, progress=False)
    x = digits.test.x[:256]

    def picked_out(student, heads):  # fraction of rows whose own teacher embedding scores highest
        with torch.no_grad():
            s = F.normalize(heads[0](models.penultimate(student, x)), dim=1)
            t = F.normalize(heads[1](models.penultimate(teacher, x)), dim=1)
            return ((s @ t.T).argmax(dim=1) == torch.arange(len(x))).float().mean().item()

    before = picked_out(models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1), projection_heads(16, 64, seed=0))
    student = models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1)
    history, heads = distill_contrastive(student, teacher, digits.train, epochs=10, lr=3e-3, seed=0, progress=False)
    assert picked_out(student, heads) > max(0.5, 10 * before) and history.loss[-1] < history.loss[0]
    assert evaluate(student, digits.test) > 0.85
    plain, without = (models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1) for _ in range(2))
    distill(plain, teacher, digits.train, epochs=2, lr=3e-3, seed=0, progress=False)
    distill_contrastive(without, teacher, digits.train, contrastive_weight=0.0, epochs=2, lr=3e-3, seed=0,
                        progress=False)
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(plain.parameters(), without.parameters()))
