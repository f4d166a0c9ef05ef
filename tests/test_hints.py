"""kdlib.hints: FitNets hint loss, DistilBERT cosine loss, and joint training with hints."""
import pytest
import torch
from torch import nn

from kdlib import data, models
from kdlib.hints import cosine_hidden_loss, distill_with_hints, hint_loss, hint_regressor
from kdlib.training import evaluate, train


def test_hint_loss_hand_computed():
    regressor = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        regressor.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    student = torch.tensor([[1.0, 2.0], [0.0, -1.0]])  # regressed: [1, 2, 3] and [0, -1, -1]
    teacher = torch.tensor([[1.0, 0.0, 3.0], [2.0, -1.0, 0.0]])
    # squared errors: [0, 4, 0] and [4, 0, 1] -> sum 9 over 6 entries; half of the mean = 0.75
    assert hint_loss(student, teacher, regressor).item() == pytest.approx(0.75)


def test_hint_loss_matches_float64_formula_and_1x1_conv_regressor():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(4, 3, 5, 5, generator=generator), torch.randn(4, 6, 5, 5, generator=generator)
    regressor = hint_regressor(3, 6, seed=1, convolutional=True)
    weight, bias = regressor.weight.double().reshape(6, 3), regressor.bias.double()
    regressed = torch.einsum("oc,bchw->bohw", weight, student.double()) + bias[None, :, None, None]
    expected = 0.5 * ((regressed - teacher.double()) ** 2).sum() / teacher.numel()
    assert hint_loss(student, teacher, regressor).item() == pytest.approx(expected.item(), rel=1e-5)


def test_hint_regressor_is_seeded():
    a, b, c = hint_regressor(4, 8, seed=3), hint_regressor(4, 8, seed=3), hint_regressor(4, 8, seed=4)
    assert isinstance(a, nn.Linear) and a.weight.shape == (8, 4)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)


def test_gradient_reaches_student_and_regressor_not_teacher():
    student_net, teacher_net = nn.Linear(5, 3), nn.Linear(5, 7)
    regressor = hint_regressor(3, 7, seed=0)
    x = torch.randn(6, 5)
    hint_loss(student_net(x), teacher_net(x).detach(), regressor).backward()
    assert student_net.weight.grad.abs().sum() > 0 and regressor.weight.grad.abs().sum() > 0
    assert teacher_net.weight.grad is None


def test_hint_loss_detaches_the_teacher_features_itself():
    student_features = torch.randn(4, 3, requires_grad=True)
    teacher_features = torch.randn(4, 6, requires_grad=True)
    regressor = hint_regressor(3, 6, seed=0)
    hint_loss(student_features, teacher_features, regressor).backward()
    assert teacher_features.grad is None
    assert student_features.grad.abs().sum() > 0 and regressor.weight.grad.abs().sum() > 0


def test_cosine_loss_parallel_opposite_orthogonal():
    a = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    assert cosine_hidden_loss(a, 3 * a).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_hidden_loss(a, -2 * a).item() == pytest.approx(2.0, abs=1e-6)
    assert cosine_hidden_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 5.0]])).item() == pytest.approx(1.0)


def test_cosine_loss_matches_float64_over_positions():
    generator = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 4, 8, generator=generator), torch.randn(2, 4, 8, generator=generator)
    s64, t64 = s.double(), t.double()
    cosine = (s64 * t64).sum(-1) / (s64.norm(dim=-1) * t64.norm(dim=-1))  # (2, 4)
    assert cosine_hidden_loss(s, t).item() == pytest.approx((1 - cosine).mean().item(), rel=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same shape"):
        cosine_hidden_loss(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="batch size"):
        hint_loss(torch.randn(2, 3), torch.randn(3, 4), hint_regressor(3, 4))
    with pytest.raises(ValueError, match=r"regressor\(student_features\) has shape"):
        hint_loss(torch.randn(2, 3), torch.randn(2, 5), hint_regressor(3, 4))
    with pytest.raises(TypeError, match="floating-point"):
        cosine_hidden_loss(torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="student_width"):
        hint_regressor(0, 4)
    with pytest.raises(ValueError, match="hint_weight"):
        distill_with_hints(nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Linear(2, 2)),
                           data.Split(torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64)), hint_weight=-1)


def test_short_digits_run_lowers_the_hint_loss_and_learns():
    torch.manual_seed(0)
    splits = data.split_dataset(data.load_digits(), seed=0)
    teacher = models.mlp((1, 8, 8), 10, width=64, depth=1, seed=0)
    train(teacher, splits.train, epochs=10, lr=3e-3, progress=False)
    x = splits.train.x

    def measured_hint(student, regressor):
        with torch.no_grad():
            return hint_loss(models.penultimate(student, x), models.penultimate(teacher, x), regressor).item()

    before = measured_hint(models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1), hint_regressor(16, 64, seed=0))
    student = models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1)
    history, regressor = distill_with_hints(student, teacher, splits.train, hint_weight=1.0, epochs=8, lr=3e-3,
                                            seed=0, progress=False)
    assert measured_hint(student, regressor) < 0.5 * before
    assert history.loss[-1] < history.loss[0]
    assert evaluate(student, splits.test) > 0.8


def test_same_seed_same_student_and_regressor():
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    split = data.Split(x, torch.arange(64) % 10)
    teacher = models.mlp((1, 8, 8), 10, width=12, depth=1, seed=0)
    runs = []
    for _ in range(2):
        student = models.mlp((1, 8, 8), 10, width=6, depth=1, seed=1)
        _, regressor = distill_with_hints(student, teacher, split, epochs=2, seed=5, progress=False)
        runs.append([*student.state_dict().values(), *regressor.state_dict().values()])
    assert all(torch.equal(a, b) for a, b in zip(*runs))
