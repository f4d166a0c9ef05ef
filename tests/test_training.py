"""kdlib.training, models and metrics: determinism, the teacher cache, failure modes, and the lesson 02 claims."""
import math
import statistics

import pytest
import torch
from torch import nn

from kdlib import data, metrics, models
from kdlib.training import NonFiniteLossError, default_device, distill, evaluate, predict_logits, train


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
        assert sum(calls) == len(digits.train.x)  # one pass over the data, not one per epoch
        assert max(calls) == 64  # in the training batch size (distill's default)
        calls.clear()
        distill(recomputed, teacher, digits.train, epochs=3, cache_teacher=False, progress=False)
        assert sum(calls) == 3 * len(digits.train.x)
    finally:
        handle.remove()
    for p, q in zip(cached.parameters(), recomputed.parameters()):
        assert torch.allclose(p, q, atol=1e-5)


def test_non_finite_loss_stops_with_epoch_and_step(digits):
    x = digits.train.x.clone()
    x[100] = float("nan")  # lands in some batch of the first epoch
    net = models.mlp((1, 8, 8), 10, width=8, depth=1)
    with pytest.raises(NonFiniteLossError, match=r"at epoch 1, step \d+"):
        train(net, data.Split(x, digits.train.y), epochs=2, progress=False)


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
