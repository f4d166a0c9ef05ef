"""kdlib.hints: FitNets hint loss, DistilBERT cosine loss, and joint training with hints."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from device_probe import TOY, caller_model, follows_meta, hinton_objective64, on_meta, untouched
from kdlib import data, models
from kdlib.hints import cosine_hidden_loss, distill_with_hints, hint_loss, hint_regressor
from kdlib.training import TrainSettings, evaluate, train

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


def test_one_full_batch_step_records_the_float64_loss():
    """History.loss[0] of a one-batch epoch is (1 − α)·CE(labelled rows) + α·T²·KL + w·½·mean (r(f_s) − f_t)²,
    recomputed here in float64 from copies of the untrained student, the teacher and the default regressor."""
    alpha, temperature, weight = 0.7, 3.0, 2.0
    t64 = caller_model("train", width=6).double().eval()  # the teacher runs frozen, in eval mode
    s64 = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=1).double()
    regressor = hint_regressor(4, 6, seed=5).double()  # the default regressor is seeded with the training seed
    x = TOY.x.double()
    with torch.no_grad():
        f_s, f_t = s64[:-1](x), t64[:-1](x)
        s, t = s64[-1](f_s), t64[-1](f_t)
        hint = 0.5 * ((regressor(f_s) - f_t) ** 2).mean()
        expected = hinton_objective64(s, F.softmax(t / temperature, dim=1), TOY.y, temperature, alpha) + weight * hint
    teacher, student = caller_model("train", width=6), models.mlp((1, 8, 8), 3, width=4, depth=1, seed=1)
    history, _ = distill_with_hints(student, teacher, TOY, hint_weight=weight, temperature=temperature, alpha=alpha,
                                    epochs=1, batch_size=len(TOY.x), seed=5, progress=False)
    assert history.loss[0] == pytest.approx(expected.item(), rel=1e-5)


def test_old_keyword_calls_and_settings_train_the_same():
    runs = []
    for how in (dict(epochs=2, lr=3e-3, seed=4, progress=False),
                dict(settings=TrainSettings(epochs=2, lr=3e-3, seed=4, progress=False)),
                dict(settings=TrainSettings(epochs=5, lr=3e-3, seed=4, progress=False), epochs=2)):
        student = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=1)
        _, regressor = distill_with_hints(student, caller_model("train"), TOY, **how)
        runs.append([*student.state_dict().values(), *regressor.state_dict().values()])
    assert all(torch.equal(a, b) for run in runs[1:] for a, b in zip(runs[0], run))


@pytest.mark.parametrize("mode", ["train", "mixed"])
def test_hint_loss_leaves_the_regressor_as_found_and_follows_it_to_meta(mode):
    regressor = nn.Sequential(nn.Linear(3, 5), nn.Dropout(0.0))
    if mode == "mixed":
        regressor.eval()[1].train()
    before = untouched(regressor)
    hint_loss(torch.randn(4, 3), torch.randn(4, 5), regressor)
    assert untouched(regressor) == before
    meta, seen = on_meta(regressor)
    follows_meta(lambda: hint_loss(torch.randn(4, 3), torch.randn(4, 5), meta))
    assert seen and set(seen) == {"meta"}
