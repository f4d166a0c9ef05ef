"""kdlib.training, models and metrics: determinism, the teacher cache, failure modes, and the lesson 02 claims."""
import math
import statistics

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlib import data, metrics, models
from kdlib.losses import dkd_loss, kd_loss
from kdlib.training import (NonFiniteLossError, TrainSettings, clip_unit_norms, default_device, distill, evaluate,
                            fit, frozen_outputs, predict_logits, train)


@pytest.fixture(scope="module")
def teacher(digits):
    net = models.mlp((1, 8, 8), 10, width=256, depth=2, seed=0)
    train(net, digits.train, epochs=30, progress=False)
    return net


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ---- models and metrics -------------------------------------------------------------------------

@pytest.mark.parametrize("build", [lambda s: models.mlp(64, 10, width=16, depth=3, seed=s),
                                   lambda s: models.cnn(1, 10, width=4, depth=3, seed=s)])
def test_models_are_seeded_and_leave_the_global_rng_alone(build):
    state = torch.random.get_rng_state()
    assert same_weights(build(1), build(1)) and not same_weights(build(1), build(2))
    assert torch.equal(state, torch.random.get_rng_state())


def test_model_output_shapes_for_digits_and_mnist_sizes():
    for size in (8, 28):
        x = torch.zeros(5, 1, size, size)
        assert models.mlp((1, size, size), 10, width=8, depth=0)(x).shape == (5, 10)
        assert models.cnn(1, 10, width=4, depth=3)(x).shape == (5, 10)
    with pytest.raises(ValueError, match="width must be an integer >= 1, got 0"):
        models.mlp(64, 10, width=0)


def test_metrics_on_hand_computed_values():
    layer = nn.Linear(3, 2)  # 3·2 weights + 2 biases, float32
    assert metrics.parameter_count(layer) == 8
    assert metrics.size_in_bytes(layer) == 32
    assert metrics.size_in_bytes(nn.BatchNorm1d(4)) == (8 + 4 + 4) * 4 + 8  # buffers count, int64 counter too
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 0.0], [0.0, 1.0]])
    assert metrics.accuracy(logits, torch.tensor([0, 1, 1, 1])) == 0.75
    assert 0 < metrics.inference_latency(layer, torch.zeros(8, 3), repeats=3) < 0.1
    with pytest.raises(ValueError, match=r"got \(4, 2\) and \(2,\)"):
        metrics.accuracy(logits, torch.tensor([0, 1]))


# ---- training loop ------------------------------------------------------------------------------

def test_default_device_is_the_cpu_here():
    assert default_device().type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert default_device() == torch.device("cpu")


def test_train_learns_digits(digits):
    net = models.mlp((1, 8, 8), 10, width=32, depth=1, seed=0)
    history = train(net, digits.train, epochs=20, val=digits.val, progress=False)
    assert history.loss[-1] < history.loss[0] / 4
    assert len(history.val_accuracy) == 20 and history.val_accuracy[-1] > history.val_accuracy[0]
    assert evaluate(net, digits.test) > 0.9


def test_same_seed_gives_bit_identical_runs(digits, teacher):
    runs = []
    for _ in range(2):
        student = models.mlp((1, 8, 8), 10, width=16, depth=1, seed=3)
        distill(student, teacher, digits.train, epochs=2, seed=5, progress=False)
        runs.append(student)
    other = models.mlp((1, 8, 8), 10, width=16, depth=1, seed=3)
    distill(other, teacher, digits.train, epochs=2, seed=6, progress=False)  # only the batch order differs
    assert same_weights(*runs) and not same_weights(runs[0], other)


def test_a_val_function_is_scored_every_epoch_and_leaves_the_run_unchanged(digits):
    plain, scored = (models.mlp((1, 8, 8), 10, width=16, depth=1, seed=2) for _ in range(2))
    train(plain, digits.train, epochs=3, seed=1, progress=False)
    seen = []

    def val(model):  # called after every epoch, in train mode: the function must not change the weights
        seen.append(model.training)
        return torch.tensor(evaluate(model, digits.val))  # a one-element tensor is read as its number
    history = train(scored, digits.train, epochs=3, seed=1, val=val, progress=False)
    assert same_weights(plain, scored) and seen == [True] * 3
    assert history.val_accuracy == pytest.approx([evaluate(scored, digits.val)] * 3, abs=0.2)
    assert history.val_accuracy[-1] == evaluate(scored, digits.val)


def test_a_val_function_must_return_a_number(digits):
    net = models.mlp((1, 8, 8), 10, width=16, depth=1, seed=2)
    with pytest.raises(TypeError, match="val must return a number"):
        train(net, digits.train, epochs=1, val=lambda model: "0.9", progress=False)


def test_distill_with_alpha_zero_is_plain_training(digits, teacher):
    a, b = (models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1) for _ in range(2))
    train(a, digits.train, epochs=2, seed=0, progress=False)
    distill(b, teacher, digits.train, alpha=0.0, epochs=2, seed=0, progress=False)
    assert same_weights(a, b)


def test_teacher_logits_are_computed_once_when_cached(digits, teacher):
    calls = []
    handle = teacher.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    try:
        cached, recomputed = (models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1) for _ in range(2))
        distill(cached, teacher, digits.train, epochs=3, progress=False)
        assert calls[0] == 1  # one example, to read how many classes the teacher scores
        assert sum(calls[1:]) == len(digits.train.x)  # then one pass over the data, not one per epoch
        assert max(calls) == 64  # in the training batch size (distill's default)
        calls.clear()
        distill(recomputed, teacher, digits.train, epochs=3, cache_teacher=False, progress=False)
        assert sum(calls[1:]) == 3 * len(digits.train.x)
    finally:
        handle.remove()
    for p, q in zip(cached.parameters(), recomputed.parameters()):
        assert torch.allclose(p, q, atol=1e-5)


def test_non_finite_inputs_are_refused_before_training_and_a_non_finite_loss_names_epoch_and_step(digits):
    x = digits.train.x.clone()
    x[100] = float("nan")
    net = models.mlp((1, 8, 8), 10, width=8, depth=1)
    with pytest.raises(ValueError, match="data.x must be finite, got 64 NaN"):
        train(net, data.Split(x, digits.train.y), epochs=2, progress=False)
    steps = []

    def batch_loss(model, x, y):  # finite for three steps, then NaN: as a diverging run would be
        steps.append(1)
        return F.cross_entropy(model(x), y) * (float("nan") if len(steps) == 4 else 1.0)

    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 1, step 4"):
        fit(net, digits.train, batch_loss, epochs=2, progress=False)


def test_cosine_schedule_follows_the_half_cosine_and_constant_stays_put(digits, teacher):
    # 1078 training images in batches of 539: 2 steps per epoch, 8 steps over 4 epochs; the rate at the
    # start of epoch k (step 2k) is lr · (1 + cos(π · 2k / 8)) / 2, computed here independently in float64
    lr, epochs, steps_per_epoch = 0.01, 4, 2
    assert len(digits.train.y) == 1078
    expected = [lr * (1 + math.cos(math.pi * steps_per_epoch * k / (steps_per_epoch * epochs))) / 2
                for k in range(epochs)]
    net = models.mlp((1, 8, 8), 10, width=8, depth=1)
    cosine = train(net, digits.train, epochs=epochs, lr=lr, batch_size=539, lr_schedule="cosine", progress=False)
    assert cosine.lr == pytest.approx(expected, rel=1e-9)
    net = models.mlp((1, 8, 8), 10, width=8, depth=1)
    student = distill(net, teacher, digits.train, epochs=epochs, lr=lr, batch_size=539, lr_schedule="cosine",
                      progress=False)
    assert student.lr == pytest.approx(expected, rel=1e-9)
    net = models.mlp((1, 8, 8), 10, width=8, depth=1)
    assert train(net, digits.train, epochs=epochs, lr=lr, batch_size=539, progress=False).lr == [lr] * epochs
    net = models.mlp((1, 8, 8), 10, width=8, depth=1)
    step = train(net, digits.train, epochs=epochs, lr=lr, batch_size=539, lr_schedule="step", progress=False)
    assert step.lr == pytest.approx([lr, lr, lr / 10, lr / 10], rel=1e-9)  # ÷ 10 after half of the 8 steps
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        train(net, digits.train, lr_schedule="linear", progress=False)


def test_train_augments_every_batch_and_only_with_augment(digits):
    seen = []

    def flip(x):  # (batch, 1, 8, 8): mirror left-right, and note the batch size
        seen.append(len(x))
        return x.flip(-1)

    plain, augmented, mirrored = (models.mlp((1, 8, 8), 10, width=8, depth=1, seed=0) for _ in range(3))
    train(plain, digits.train, epochs=2, progress=False)
    train(augmented, digits.train, epochs=2, augment=flip, progress=False)
    assert sum(seen) == 2 * len(digits.train.x)  # every example, every epoch
    # augmenting with a flip equals training on the flipped images
    train(mirrored, data.Split(digits.train.x.flip(-1), digits.train.y), epochs=2, progress=False)
    assert same_weights(augmented, mirrored) and not same_weights(augmented, plain)


def test_bad_training_arguments_raise(digits, teacher):
    net = models.mlp((1, 8, 8), 10, width=8, depth=1)
    with pytest.raises(ValueError, match="alpha"):
        distill(net, teacher, digits.train, alpha=1.5, progress=False)
    with pytest.raises(ValueError, match="temperature"):
        distill(net, teacher, digits.train, temperature=0, progress=False)
    with pytest.raises(ValueError, match="needs every label"):
        train(net, data.Split(digits.train.x, data.hide_labels(digits.train.y, 0.1)), progress=False)
    with pytest.raises(ValueError, match="same length"):
        train(net, data.Split(digits.train.x, digits.train.y[:10]), progress=False)


def test_predict_logits_restores_training_mode(digits, teacher):
    net = models.mlp((1, 8, 8), 10, width=8, depth=1).train()
    assert predict_logits(net, digits.val.x).shape == (len(digits.val.x), 10) and net.training


# ---- the claims lesson 02 makes, over fixed seeds ------------------------------------------------

def test_soft_targets_on_a_transfer_set_beat_few_labels(digits, teacher):
    """5% of the labels: the student with the teacher's soft targets on the rest wins clearly (Hinton 2015)."""
    baseline, distilled = [], []
    for seed in range(3):
        labels = data.hide_labels(digits.train.y, 0.05, seed=seed)
        known = labels != data.UNLABELLED
        net = models.mlp((1, 8, 8), 10, width=32, depth=1, seed=seed)
        train(net, data.Split(digits.train.x[known], labels[known]), epochs=100, seed=seed, progress=False)
        baseline.append(evaluate(net, digits.test))
        net = models.mlp((1, 8, 8), 10, width=32, depth=1, seed=seed)
        distill(net, teacher, data.Split(digits.train.x, labels), epochs=30, seed=seed, progress=False)
        distilled.append(evaluate(net, digits.test))
    assert statistics.mean(distilled) > statistics.mean(baseline) + 0.08, (baseline, distilled)


# ---- one loop, one set of settings, pluggable losses --------------------------------------------

def test_settings_are_held_once_and_given_either_way(digits):
    a, b = (models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1) for _ in range(2))
    settings = TrainSettings(epochs=2, lr=3e-3, batch_size=32, seed=5, lr_schedule="cosine", progress=False)
    history = train(a, digits.train, settings=settings)
    train(b, digits.train, epochs=2, lr=3e-3, batch_size=32, seed=5, lr_schedule="cosine", progress=False)
    assert same_weights(a, b) and len(history.loss) == 2
    assert TrainSettings.of(settings, seed=6) == TrainSettings(epochs=2, lr=3e-3, batch_size=32, seed=6,
                                                               lr_schedule="cosine", progress=False)
    with pytest.raises(TypeError, match=r"unknown training setting\(s\) \['epoch'\]"):
        train(a, digits.train, epoch=3)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainSettings(optimizer="lbfgs")


def test_fit_is_the_loop_train_uses(digits):
    a, b = (models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1) for _ in range(2))
    train(a, digits.train, epochs=2, progress=False)
    fit(b, digits.train, lambda model, x, y: F.cross_entropy(model(x), y), epochs=2, progress=False)
    assert same_weights(a, b) and not b.training


def test_max_norm_scales_each_units_incoming_weights_back_after_the_step():
    """One SGD step of fit with max_norm against the step and the clipping written out in float64: rows of each
    Linear weight that end above c are scaled to norm c, the others and the biases are the plain step."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.arange(16) % 3
    net = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    reference = {name: p.detach().clone() for name, p in net.named_parameters()}
    F.cross_entropy(net(x), y).backward()
    stepped = {name: reference[name] - 2.0 * p.grad for name, p in net.named_parameters()}  # lr 2, first step
    norms = stepped["0.weight"].pow(2).sum(1).sqrt()  # (6,) one per hidden unit
    c = norms.median().item()  # some units end above c, some below
    expected = {name: (w * (c / w.pow(2).sum(1, keepdim=True).sqrt()).clamp(max=1.0) if name.endswith("weight") else w)
                for name, w in stepped.items()}
    for max_norm, want in ((None, stepped), (c, expected)):
        model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()
        model.load_state_dict(reference)
        fit(model, (x, y), lambda m, xb, yb: F.cross_entropy(m(xb), yb), epochs=1, batch_size=16, lr=2.0,
            optimizer="sgd", max_norm=max_norm, progress=False)
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.detach(), want[name], rtol=1e-9, atol=1e-9)
    assert (norms > c * 1.01).any() and (norms < c * 0.99).any() and not torch.allclose(expected["0.weight"], stepped["0.weight"])


def test_clip_unit_norms_bounds_each_convolution_filter_and_leaves_small_ones_alone():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3)  # filter norms about 0.6: scaled below 1 (0 and 2) and above it (1 and 3)
    with torch.no_grad():
        conv.weight.mul_(torch.tensor([0.1, 10.0, 0.1, 10.0]).view(4, 1, 1, 1))  # (out, in, kh, kw)
    before = conv.weight.detach().clone()
    clip_unit_norms(conv, 1.0)
    norms = conv.weight.detach().flatten(1).norm(dim=1)  # one per filter
    torch.testing.assert_close(norms[[1, 3]], torch.ones(2))
    assert torch.equal(conv.weight[[0, 2]], before[[0, 2]])
    torch.testing.assert_close(conv.weight[[1, 3]], before[[1, 3]] / before[[1, 3]].flatten(1).norm(dim=1).view(2, 1, 1, 1))
    meta = nn.Linear(3, 2, device="meta")
    clip_unit_norms(meta, 1.0)  # no values read: stays where the model is
    assert meta.weight.device.type == "meta"


def test_distill_takes_a_soft_loss_and_the_default_is_hinton(digits, teacher):
    a, b, c = (models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1) for _ in range(3))
    distill(a, teacher, digits.train, epochs=2, progress=False)
    distill(b, teacher, digits.train, epochs=2, progress=False, soft_loss=lambda s, t, y, T: kd_loss(s, t, T))
    assert same_weights(a, b)
    seen = []

    def dkd(s, t, y, T):
        seen.append((s.shape, t.shape, y.shape, T))
        return dkd_loss(s, t, y, T)

    # DKD's β = 8 makes the soft term ~5× Hinton's here: it needs a larger step than the default 1e-3
    distill(c, teacher, digits.train, epochs=10, lr=1e-2, temperature=4.0, progress=False, soft_loss=dkd)
    assert seen[0] == ((64, 10), (64, 10), (64,), 4.0)
    assert evaluate(c, digits.val) > 0.85


def test_frozen_outputs_give_features_and_logits_of_the_last_layer(digits, teacher):
    teacher.train()
    features, logits = frozen_outputs(teacher, digits.val.x, features=True, batch_size=100)
    assert teacher.training  # mode restored
    assert features.shape == (len(digits.val.x), 256) and torch.equal(logits, predict_logits(teacher, digits.val.x))
    assert torch.allclose(teacher.eval()[-1](features), logits)


def test_labels_outside_the_models_classes_are_named(digits, teacher):
    five = models.mlp((1, 8, 8), 5, width=8, depth=1)
    with pytest.raises(ValueError, match=r"data.y must be class indices in \[0, 4\] for 5 classes, got values from 0 to 9"):
        train(five, digits.train, epochs=1, progress=False)
    with pytest.raises(ValueError, match="student and teacher must score the same classes, got 5 and 10"):
        distill(five, teacher, digits.train, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        evaluate(five, digits.val)
