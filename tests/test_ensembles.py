"""kdlib.ensembles: ensemble soft targets by hand, the ensemble loss against kd_loss, born-again generations."""
import math

import pytest
import torch

from device_probe import follows_meta, held_by_a_caller, on_meta, trained_in_eval_mode, untouched
from kdlib import data, models
from kdlib.data import UNLABELLED, Split
from kdlib.ensembles import born_again, distill_from_ensemble, ensemble_kd_loss, ensemble_soft_targets
from kdlib.losses import kd_loss, soft_targets
from kdlib.training import TrainSettings, distill, evaluate, train


@pytest.fixture(scope="module")
def teachers(digits):
    nets = []
    for seed in range(3):
        net = models.mlp((1, 8, 8), 10, width=64, depth=1, seed=seed)
        train(net, digits.train, epochs=15, lr=3e-3, seed=seed, progress=False)
        nets.append(net)
    return nets


def student(seed=0):
    return models.mlp((1, 8, 8), 10, width=16, depth=1, seed=seed)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ---- ensemble_soft_targets ----------------------------------------------------------------------

def test_ensemble_soft_targets_on_hand_computed_values():
    # At T = 2, logits 2·ln(r) give softmax ∝ r: [1, 1, 1] → 1/3 each, [1, 2, 1] → [1/4, 1/2, 1/4].
    log2 = math.log(2)
    teacher_a = torch.tensor([[0.0, 0.0, 0.0], [2 * log2, 0.0, 0.0]])  # rows → [1/3]*3, [1/2, 1/4, 1/4]
    teacher_b = torch.tensor([[0.0, 2 * log2, 0.0], [0.0, 0.0, 0.0]])  # rows → [1/4, 1/2, 1/4], [1/3]*3
    got = ensemble_soft_targets([teacher_a, teacher_b], temperature=2.0, weights=[0.75, 0.25])
    expected = torch.tensor([[0.75 / 3 + 0.25 / 4, 0.75 / 3 + 0.25 / 2, 0.75 / 3 + 0.25 / 4],
                             [0.75 / 2 + 0.25 / 3, 0.75 / 4 + 0.25 / 3, 0.75 / 4 + 0.25 / 3]])
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got[0], torch.tensor([0.3125, 0.375, 0.3125]), atol=1e-6)
    assert torch.allclose(got.sum(dim=-1), torch.ones(2), atol=1e-6)


def test_equal_weights_are_the_plain_mean_of_softmaxes():
    torch.manual_seed(0)
    logits = [torch.randn(5, 4, dtype=torch.float64) * 3 for _ in range(3)]
    expected = sum(torch.softmax(t / 3.0, dim=-1) for t in logits) / 3  # float64, by hand
    assert torch.allclose(ensemble_soft_targets(logits, 3.0), expected, atol=1e-12)
    assert torch.allclose(ensemble_soft_targets(logits, 3.0, weights=[1 / 3] * 3), expected, atol=1e-12)
    # probabilities are averaged, not logits: the softmax of the mean logit is a different thing
    assert not torch.allclose(expected, torch.softmax(sum(logits) / 3 / 3.0, dim=-1), atol=1e-3)


def test_a_single_teacher_reduces_to_soft_targets_and_a_zero_weight_drops_a_teacher():
    torch.manual_seed(1)
    t, other = torch.randn(6, 10), torch.randn(6, 10)
    assert torch.allclose(ensemble_soft_targets([t], 4.0), soft_targets(t, 4.0), atol=1e-7)
    assert torch.allclose(ensemble_soft_targets([t, other], 4.0, weights=[1.0, 0.0]), soft_targets(t, 4.0), atol=1e-7)


def test_weights_are_relative_and_divided_by_their_sum():
    # e.g. the teachers' validation accuracies: only their ratios matter
    torch.manual_seed(2)
    logits = [torch.randn(5, 4) for _ in range(3)]
    normalised = ensemble_soft_targets(logits, 2.0, weights=[0.2, 0.3, 0.5])
    assert torch.allclose(ensemble_soft_targets(logits, 2.0, weights=[2.0, 3.0, 5.0]), normalised, atol=1e-7)
    assert torch.allclose(ensemble_soft_targets(logits, 2.0, weights=torch.tensor([0.4, 0.6, 1.0])), normalised,
                          atol=1e-7)
    assert torch.allclose(normalised.sum(dim=1), torch.ones(5), atol=1e-6)


@pytest.mark.parametrize("weights, message", [
    ([0.0, 0.0], r"weights must not all be zero, got \[0.0, 0.0\]"),
    ([1.5, -0.5], r"weights must be finite and non-negative, got \[1.5, -0.5\]"),
    ([1.0], r"weights must have one entry per teacher \(2\), got 1"),
    ([0.5, float("nan")], r"finite and non-negative"),
])
def test_bad_weights_are_rejected_with_what_came(weights, message):
    t = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=message):
        ensemble_soft_targets([t, t], 1.0, weights=weights)


def test_bad_teacher_lists_are_rejected():
    with pytest.raises(ValueError, match="at least one teacher"):
        ensemble_soft_targets([], 1.0)
    with pytest.raises(TypeError, match="must be a list"):
        ensemble_soft_targets(torch.zeros(2, 3), 1.0)
    with pytest.raises(ValueError, match=r"got \(2, 3\) for teacher 0 and \(2, 4\) for teacher 1"):
        ensemble_soft_targets([torch.zeros(2, 3), torch.zeros(2, 4)], 1.0)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got 0"):
        ensemble_soft_targets([torch.zeros(2, 3)], 0)
    with pytest.raises(TypeError, match="weights must be a list of numbers"):
        ensemble_soft_targets([torch.zeros(2, 3)], 1.0, weights="1")


# ---- ensemble_kd_loss ---------------------------------------------------------------------------

def test_ensemble_loss_of_identical_teachers_is_kd_loss_and_matches_float64_by_hand():
    torch.manual_seed(2)
    s, t, temperature = torch.randn(4, 5), torch.randn(4, 5), 3.0
    targets = ensemble_soft_targets([t, t, t], temperature)
    loss = ensemble_kd_loss(s, targets, temperature)
    assert torch.allclose(loss, kd_loss(s, t, temperature), atol=1e-6)
    # independent: T² · mean_rows Σ_c p_c (log p_c − log q_c), p and q softmaxes computed with math in float64
    total = 0.0
    for s_row, t_row in zip(s.double().tolist(), t.double().tolist()):
        zp = sum(math.exp(v / temperature) for v in t_row)
        zq = sum(math.exp(v / temperature) for v in s_row)
        for sv, tv in zip(s_row, t_row):
            p, q = math.exp(tv / temperature) / zp, math.exp(sv / temperature) / zq
            total += p * (math.log(p) - math.log(q))
    assert loss.item() == pytest.approx(temperature**2 * total / 4, rel=1e-5)


def test_ensemble_loss_gradient_is_t_times_q_minus_p_and_zero_probabilities_are_safe():
    torch.manual_seed(3)
    s = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)
    temperature = 2.0
    loss = ensemble_kd_loss(s, p, temperature)
    loss.backward()
    q = torch.softmax(s.detach() / temperature, dim=-1)
    # d/ds of T²·KL(p‖softmax(s/T)) = T·(q − p), divided by the batch for the mean
    assert torch.allclose(s.grad, temperature * (q - p) / 3, atol=1e-12)
    assert torch.isfinite(loss) and loss > 0
    assert ensemble_kd_loss(p.log().clamp(min=-50) * temperature, p, temperature).abs() < 1e-9  # q = p → 0


def test_ensemble_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"same shape \(batch, classes\), got \(2, 3\) and \(2, 4\)"):
        ensemble_kd_loss(torch.zeros(2, 3), torch.full((2, 4), 0.25), 1.0)


# ---- distill_from_ensemble ----------------------------------------------------------------------

def test_one_teacher_ensemble_trains_like_distill(digits, teachers):
    a, b = student(4), student(4)
    distill_from_ensemble(a, teachers[:1], digits.train, epochs=2, seed=7, progress=False)
    distill(b, teachers[0], digits.train, epochs=2, seed=7, progress=False)
    # same loss value by another formula: equal up to float rounding, not bit for bit
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-4)


def test_distill_from_ensemble_is_deterministic_and_weights_matter(digits, teachers):
    runs = []
    for weights in ([0.2, 0.3, 0.5], [0.2, 0.3, 0.5], [0.5, 0.3, 0.2]):
        net = student(5)
        distill_from_ensemble(net, teachers, digits.train, weights=weights, epochs=1, seed=3, progress=False)
        runs.append(net)
    assert same_weights(runs[0], runs[1]) and not same_weights(runs[0], runs[2])


def test_ensemble_student_beats_a_labels_only_student_with_5_percent_labels(digits, teachers):
    # Transfer regime: the teachers saw every label; the students see 5% of them (51 images).
    hidden = Split(digits.train.x, data.hide_labels(digits.train.y, 0.05, seed=0))
    labelled = hidden.y != UNLABELLED
    baseline = student(0)  # 300 epochs of 1 step each: trained to convergence on its 51 labels
    train(baseline, Split(hidden.x[labelled], hidden.y[labelled]), epochs=300, lr=3e-3, progress=False)
    distilled = student(0)
    distill_from_ensemble(distilled, teachers, hidden, epochs=15, lr=3e-3, progress=False)
    baseline_accuracy, distilled_accuracy = evaluate(baseline, digits.test), evaluate(distilled, digits.test)
    # measured on these seeds: 0.813 alone, 0.911 distilled; uniform targets instead give 0.688
    assert distilled_accuracy > baseline_accuracy + 0.05, (baseline_accuracy, distilled_accuracy)


# ---- born-again networks ------------------------------------------------------------------------

def test_born_again_generations_are_train_then_distill_from_the_previous(digits):
    result = born_again(student, digits.train, digits.val, generations=2, epochs=2, seed=10, progress=False)
    assert len(result.models) == 3 and len(result.accuracy) == 3
    generation_0, generation_1 = student(10), student(11)  # new seed each generation
    train(generation_0, digits.train, epochs=2, seed=10, progress=False)
    distill(generation_1, generation_0, digits.train, epochs=2, seed=11, progress=False)
    assert same_weights(result.models[0], generation_0) and same_weights(result.models[1], generation_1)
    assert result.accuracy[1] == evaluate(generation_1, digits.val)
    with pytest.raises(ValueError, match="generations must be an integer >= 0, got -1"):
        born_again(student, digits.train, digits.val, generations=-1)


def test_born_again_generation_0_uses_only_the_labelled_rows(digits):
    hidden = Split(digits.train.x, data.hide_labels(digits.train.y, 0.1, seed=0))
    result = born_again(student, hidden, digits.val, generations=0, epochs=2, progress=False)
    labelled = hidden.y != UNLABELLED
    alone = student(0)
    train(alone, Split(hidden.x[labelled], hidden.y[labelled]), epochs=2, progress=False)
    assert same_weights(result.models[0], alone)
    nothing = Split(digits.train.x, torch.full_like(digits.train.y, UNLABELLED))
    with pytest.raises(ValueError, match="needs some labelled rows"):
        born_again(student, nothing, digits.val, generations=1, epochs=1, progress=False)


def test_born_again_settings_object_is_the_keyword_run(digits):
    by_keywords = born_again(student, digits.train, digits.val, generations=1, epochs=1, seed=4, progress=False)
    by_settings = born_again(student, digits.train, digits.val, generations=1,
                             settings=TrainSettings(epochs=1, seed=4, progress=False))
    assert all(same_weights(a, b) for a, b in zip(by_keywords.models, by_settings.models))
    assert by_keywords.accuracy == by_settings.accuracy


# ---- the hard term and the loss of a whole run, in float64 -------------------------------------

def test_distill_from_ensemble_loss_is_the_float64_formula_by_hand():
    # one batch of all 12 rows: History.loss[0] is the loss at the initial weights
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 1, 8, 8, generator=generator, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, UNLABELLED, 1, UNLABELLED, 0, 2, UNLABELLED, 1, 0, 2])
    teachers_ = [models.mlp((1, 8, 8), 3, width=8, depth=1, seed=seed).double() for seed in (1, 2)]
    net = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=3).double()
    with torch.no_grad():
        s, t = net(x), [teacher(x) for teacher in teachers_]
    temperature, alpha, weights = 2.0, 0.3, [1.0, 3.0]
    history = distill_from_ensemble(net, teachers_, Split(x, y), temperature=temperature, alpha=alpha,
                                    weights=weights, epochs=1, batch_size=12, progress=False)
    p = 0.25 * torch.softmax(t[0] / temperature, dim=1) + 0.75 * torch.softmax(t[1] / temperature, dim=1)
    log_q = torch.log_softmax(s / temperature, dim=1)
    labelled = y != UNLABELLED  # the hard term is the mean over the 9 labelled rows only
    hard = -torch.log_softmax(s, dim=1)[labelled, y[labelled]].mean()
    soft = temperature**2 * (p * (p.log() - log_q)).sum(dim=1).mean()
    assert history.loss[0] == pytest.approx(((1 - alpha) * hard + alpha * soft).item(), rel=1e-12)


# ---- device policy: teachers are left as found, students end in eval mode, everything runs where the model is --

TOY = Split(torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(24) % 10)
QUICK = dict(epochs=1, progress=False)


def caller_model(frozen_layer, seed=0):
    return held_by_a_caller(student(seed), frozen_layer)


@pytest.mark.parametrize("frozen_layer", [False, True])
def test_distill_from_ensemble_leaves_the_teachers_as_found(frozen_layer):
    team = [caller_model(frozen_layer, seed) for seed in range(2)]
    before = [untouched(teacher) for teacher in team]
    net = caller_model(frozen_layer, 5)
    distill_from_ensemble(net, team, TOY, **QUICK)
    assert [untouched(teacher) for teacher in team] == before
    assert trained_in_eval_mode(net)


def test_distill_from_ensemble_follows_models_on_meta():
    metas = [on_meta(student(seed)) for seed in range(3)]
    follows_meta(lambda: distill_from_ensemble(metas[0][0], [meta for meta, _ in metas[1:]], TOY, **QUICK))
    seen = [device for _, devices in metas for device in devices]
    assert seen and set(seen) == {"meta"}


def test_born_again_trains_and_scores_where_its_models_are_built():
    result = born_again(student, TOY, TOY, generations=1, **QUICK)
    assert all(trained_in_eval_mode(model) for model in result.models)
    seen = []

    def build_on_meta(seed):
        meta, devices = on_meta(student(seed))
        seen.append(devices)
        return meta

    follows_meta(lambda: born_again(build_on_meta, TOY, TOY, generations=1, **QUICK))
    seen = [device for devices in seen for device in devices]
    assert seen and set(seen) == {"meta"}
