"""kdlib.datafree: metadata on a hand-built network, reconstruction, DeepInversion's BN loss, errors."""
import pytest
import torch
from torch import nn

from device_probe import follows_meta, on_meta, untouched
from kdlib import datafree, models
from kdlib.data import Split
from kdlib.training import predict_logits, train


def hand_built_network():
    """x (1, 1, 2) → ReLU(W x) with W = [[1, 0], [0, -1]] → logits = [[1, 1], [1, -1]] h."""
    first, last = nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        last.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    return nn.Sequential(nn.Flatten(), first, nn.ReLU(), last)


def hand_data():
    x = torch.tensor([[1.0, -2.0], [3.0, 0.0], [-1.0, -1.0], [0.0, 4.0]]).view(4, 1, 1, 2)
    return Split(x, torch.tensor([0, 0, 1, 1]))


@pytest.fixture(scope="module")
def teacher(digits):
    net = models.mlp((1, 8, 8), 10, width=64, depth=2, seed=0)
    train(net, digits.train, epochs=15, progress=False)
    return net


@pytest.fixture(scope="module")
def metadata(teacher, digits):
    return {kind: datafree.record_metadata(teacher, digits.train, kind, components=4) for kind in datafree.KINDS}


# ---- metadata -------------------------------------------------------------------------------------

def test_metadata_on_a_hand_built_network():
    # hidden h = ReLU(x1, -x2): rows (1, 2), (3, 0), (0, 1), (0, 0); logits (h1+h2, h1-h2): (3,-1), (3,3), (1,-1), (0,0)
    all_layers = datafree.record_metadata(hand_built_network(), hand_data(), "all_layers")
    assert all_layers.input_shape == (1, 1, 2) and all_layers.layer_sizes == [2, 2] and all_layers.classes == 2
    torch.testing.assert_close(all_layers.means[0], torch.tensor([[2.0, 1.0], [0.0, 0.5]]))
    torch.testing.assert_close(all_layers.stds[0], torch.tensor([[1.0, 1.0], [0.0, 0.5]]))  # population std
    torch.testing.assert_close(all_layers.means[1], torch.tensor([[3.0, 1.0], [0.5, -0.5]]))
    torch.testing.assert_close(all_layers.stds[1], torch.tensor([[0.0, 2.0], [0.5, 0.5]]))
    top = datafree.record_metadata(hand_built_network(), hand_data(), "top_layer")
    assert len(top.means) == 1 and torch.equal(top.means[0], all_layers.means[1])
    assert top.size_in_bytes() == 2 * 2 * 2 * 4  # means + stds, (classes, units) float32


def test_spectral_metadata_is_the_class_covariance_eigendecomposition(teacher, digits, metadata):
    spectral = metadata["spectral"]
    assert [v.shape for v in spectral.eigenvectors] == [(10, 64, 4), (10, 64, 4), (10, 10, 4)]
    # independent float64 check for class 3, first hidden layer: the top eigenvalue of the covariance
    hidden = torch.relu(teacher[1](digits.train.x[digits.train.y == 3].flatten(1))).double()
    covariance = torch.cov(hidden.T, correction=0)
    top = torch.linalg.eigvalsh(covariance).flip(0)[:4]
    torch.testing.assert_close(spectral.eigenvalues[0][3].double(), top, rtol=1e-4, atol=1e-5)
    vector = spectral.eigenvectors[0][3][:, 0].double()
    torch.testing.assert_close(covariance @ vector, top[0] * vector, rtol=1e-3, atol=1e-4)
    # the diagonal summaries are shared across kinds, and the spectral one costs more bytes
    torch.testing.assert_close(spectral.stds[0][3].double(), hidden.std(0, correction=0), rtol=1e-4, atol=1e-6)
    sizes = [metadata[kind].size_in_bytes() for kind in datafree.KINDS]
    assert sizes == sorted(sizes) and sizes[0] == 2 * 10 * 10 * 4


def test_sampled_spectral_targets_follow_the_recorded_statistics(metadata):
    spectral = metadata["spectral"]
    labels = torch.full((20000,), 7)
    hidden = datafree.sample_targets(spectral, labels, torch.Generator().manual_seed(0))[0]  # (N, 64)
    torch.testing.assert_close(hidden.mean(0), spectral.means[0][7], atol=0.05, rtol=0)
    vectors, values = spectral.eigenvectors[0][7], spectral.eigenvalues[0][7]
    projected_variance = ((hidden - spectral.means[0][7]) @ vectors).var(0)  # variance along each direction
    torch.testing.assert_close(projected_variance, values, rtol=0.05, atol=1e-4)
    # diagonal kinds: each unit is its own Gaussian with the recorded mean and std
    diagonal = metadata["all_layers"]
    logits = datafree.sample_targets(diagonal, labels, torch.Generator().manual_seed(0))[-1]  # (N, 10)
    torch.testing.assert_close(logits.mean(0), diagonal.means[-1][7], atol=0.1, rtol=0)
    torch.testing.assert_close(logits.std(0), diagonal.stds[-1][7], rtol=0.05, atol=1e-4)


# ---- reconstruction -------------------------------------------------------------------------------

def test_reconstruction_step_lowers_the_matching_loss():
    teacher = hand_built_network()
    teacher.requires_grad_(False)
    inputs = torch.tensor([[[[0.5, 0.5]]]], requires_grad=True)  # hidden (0.5, 0), logits (0.5, 0.5)
    targets = [torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])]  # reached exactly by x = (1, 0)
    optimizer = torch.optim.Adam([inputs], lr=0.05)
    losses = [datafree.reconstruction_step(teacher, inputs, targets, "all_layers", optimizer) for _ in range(60)]
    assert losses[0] == pytest.approx(0.375)  # (0.25 + 0)/2 + (0.25 + 0.25)/2
    assert losses[-1] < 0.01 * losses[0]
    assert inputs.min() >= 0 and inputs.max() <= 1  # clipped to a valid image


@pytest.mark.parametrize("kind", datafree.KINDS)
def test_reconstruction_matches_the_class_statistics_better_than_noise(teacher, metadata, kind):
    recorded = metadata[kind]
    rebuilt = datafree.reconstruct(teacher, recorded, count_per_class=10, steps=60, lr=0.05, seed=0, progress=False)
    assert rebuilt.x.shape == (100, 1, 8, 8) and torch.equal(rebuilt.y, torch.arange(10).repeat_interleave(10))
    assert rebuilt.x.min() >= 0 and rebuilt.x.max() <= 1
    noise = Split(torch.rand(100, 1, 8, 8, generator=torch.Generator().manual_seed(0)), rebuilt.y)

    def mismatch(split):  # distance of the per-class mean activations from the recorded ones
        again = datafree.record_metadata(teacher, split, kind)
        return sum((a - b).pow(2).mean() for a, b in zip(again.means, recorded.means)).item()

    assert mismatch(rebuilt) < 0.5 * mismatch(noise)
    hits = (predict_logits(teacher, rebuilt.x).argmax(1) == rebuilt.y).float().mean()
    noise_hits = (predict_logits(teacher, noise.x).argmax(1) == noise.y).float().mean()
    assert hits > 0.8 and hits > noise_hits + 0.5


def test_reconstruction_is_deterministic_and_leaves_the_teacher_as_it_was(teacher, metadata):
    teacher.train()
    weights = [p.clone() for p in teacher.parameters()]
    first = datafree.reconstruct(teacher, metadata["spectral"], count_per_class=2, steps=5, seed=3, progress=False)
    second = datafree.reconstruct(teacher, metadata["spectral"], count_per_class=2, steps=5, seed=3, progress=False)
    other = datafree.reconstruct(teacher, metadata["spectral"], count_per_class=2, steps=5, seed=4, progress=False)
    assert torch.equal(first.x, second.x) and not torch.equal(first.x, other.x)
    start = datafree.reconstruct(teacher, metadata["top_layer"], count_per_class=2, steps=1, lr=1e-6,
                                 noise_scale=0.1, progress=False)
    assert start.x.max() < 0.1 + 1e-4 and start.x.max() > 0.05  # one tiny step from noise in [0, 0.1)
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(p, w) for p, w in zip(teacher.parameters(), weights))
    teacher.eval()


# ---- DeepInversion --------------------------------------------------------------------------------

def hand_built_batchnorm_network(x):
    """Linear → BatchNorm1d → ReLU → Linear whose BN running statistics are those of batch x."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        hidden = net[1](x.flatten(1)).double()  # (batch, 3), the BN input
        net[2].running_mean.copy_(hidden.mean(0))
        net[2].running_var.copy_(hidden.var(0, correction=0))
    return net.eval()


def test_batchnorm_loss_is_zero_when_batch_statistics_equal_the_running_ones():
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0], [2.0, 1.0]])
    net = hand_built_batchnorm_network(x)
    loss, logits = datafree.batchnorm_statistics_loss(net, x)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(logits, net(x))
    # shift the running mean by (3, 4, 0): the mean term is ‖(3, 4, 0)‖₂ = 5
    with torch.no_grad():
        net[2].running_mean += torch.tensor([3.0, 4.0, 0.0])
    assert datafree.batchnorm_statistics_loss(net, x)[0].item() == pytest.approx(5.0, abs=1e-5)


def test_batchnorm_loss_averages_over_spatial_dimensions_for_convolutions():
    net = models.cnn(1, 10, width=3, depth=1, seed=0, batch_norm=True).eval()
    x = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        maps = net[0](x).double()  # (4, 3, 6, 6): the BN input
        net[1].running_mean.copy_(maps.mean((0, 2, 3)))
        net[1].running_var.copy_(maps.var((0, 2, 3), correction=0))
    assert datafree.batchnorm_statistics_loss(net, x)[0].item() == pytest.approx(0.0, abs=1e-6)


def test_deep_inversion_images_are_classified_as_their_targets(digits):
    teacher = models.mlp((1, 8, 8), 10, width=64, depth=2, seed=0, batch_norm=True)
    train(teacher, digits.train, epochs=10, progress=False)
    made = datafree.deep_inversion(teacher, (1, 8, 8), 10, count_per_class=5, steps=60, lr=0.05, seed=0,
                                   batch_size=25, progress=False)
    assert made.x.shape == (50, 1, 8, 8) and torch.bincount(made.y).tolist() == [5] * 10
    hits = (predict_logits(teacher, made.x).argmax(1) == made.y).float().mean()
    assert hits > 0.9
    again = datafree.deep_inversion(teacher, (1, 8, 8), 10, count_per_class=5, steps=60, lr=0.05, seed=0,
                                    batch_size=25, progress=False)
    assert torch.equal(made.x, again.x) and torch.equal(made.y, again.y)
    # the BN term pulls the batch statistics towards the running ones: lower than on noise
    noise = torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    teacher.eval()
    with torch.no_grad():
        assert datafree.batchnorm_statistics_loss(teacher, made.x)[0] < datafree.batchnorm_statistics_loss(teacher, noise)[0]


# ---- errors ---------------------------------------------------------------------------------------

def test_errors_name_what_was_expected(teacher, digits, metadata):
    with pytest.raises(ValueError, match="kind must be one of"):
        datafree.record_metadata(teacher, digits.train, "middle_layer")
    with pytest.raises(TypeError, match="Split"):
        datafree.record_metadata(teacher, digits.train.x, "top_layer")
    with pytest.raises(ValueError, match="at least 2 examples each"):
        datafree.record_metadata(teacher, Split(digits.train.x[:5], digits.train.y[:5]), "top_layer")
    with pytest.raises(ValueError, match=r"class indices in \[0, 9\] for 10 classes"):
        datafree.record_metadata(teacher, Split(digits.train.x, torch.full_like(digits.train.y, -1)), "top_layer")
    with pytest.raises(TypeError, match="int64"):
        datafree.record_metadata(teacher, Split(digits.train.x, digits.train.y.float()), "top_layer")
    with pytest.raises(ValueError, match="components must be an integer >= 1"):
        datafree.record_metadata(teacher, digits.train, "spectral", components=0)
    with pytest.raises(ValueError, match="count_per_class must be an integer >= 1, got 0"):
        datafree.reconstruct(teacher, metadata["top_layer"], count_per_class=0, progress=False)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        datafree.reconstruct(teacher, metadata["top_layer"], steps=0, progress=False)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        datafree.reconstruct(teacher, metadata["top_layer"], lr=-1.0, progress=False)
    with pytest.raises(ValueError, match=r"noise_scale must be in \(0, 1\]"):
        datafree.reconstruct(teacher, metadata["top_layer"], noise_scale=2.0, progress=False)
    with pytest.raises(TypeError, match="record_metadata"):
        datafree.reconstruct(teacher, {"means": []}, progress=False)
    wider = models.mlp((1, 8, 8), 10, width=32, depth=2, seed=0)
    with pytest.raises(ValueError, match=r"sizes \[32, 32, 10\] but the metadata has \[64, 64, 10\]"):
        datafree.reconstruct(wider, metadata["all_layers"], steps=1, progress=False)
    with pytest.raises(ValueError, match="needs a teacher with BatchNorm layers"):
        datafree.deep_inversion(teacher, (1, 8, 8), 10, count_per_class=1, steps=1, progress=False)
    with pytest.raises(ValueError, match="teacher has 10 classes but classes=3"):
        bn_teacher = models.mlp((1, 8, 8), 10, width=8, depth=1, batch_norm=True)
        datafree.deep_inversion(bn_teacher, (1, 8, 8), 3, count_per_class=1, steps=1, progress=False)
    with pytest.raises(TypeError, match="nn.Sequential"):
        datafree.activations(nn.Linear(2, 2), torch.zeros(1, 2))


# ---- device policy (kdlib.devices) ----------------------------------------------------------------

def bn_teacher_in(modes):
    """A small BatchNorm MLP teacher whose modes are: "train", or "mixed" (training, but its first BatchNorm in
    eval mode, as a caller may freeze one), or "mixed eval" (eval, but that BatchNorm in training mode)."""
    net = models.mlp((1, 8, 8), 10, width=8, depth=2, seed=0, batch_norm=True)
    net.train(modes != "mixed eval")
    net[2].train(modes == "mixed eval")
    return net


def state(model):
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


@pytest.fixture(scope="module")
def device_calls(digits):
    """{name: call(teacher)} for every public datafree function that takes a model; CPU inputs throughout."""
    recorded = datafree.record_metadata(bn_teacher_in("train").eval(), digits.train, "all_layers")
    x, labels = digits.train.x[:6], digits.train.y[:6]
    return {
        "activations": lambda t: datafree.activations(t, x),
        "record_metadata": lambda t: datafree.record_metadata(t, digits.train, "spectral", components=2),
        "reconstruction_step": lambda t: datafree.reconstruction_step(
            t, x.clone().requires_grad_(True), [torch.zeros(6, 8), torch.zeros(6, 8), torch.zeros(6, 10)], "all_layers",
            torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)),
        "reconstruct": lambda t: datafree.reconstruct(t, recorded, count_per_class=1, steps=2, progress=False),
        "batchnorm_statistics_loss": lambda t: datafree.batchnorm_statistics_loss(t, x),
        "deep_inversion_loss": lambda t: datafree.deep_inversion_loss(t, x, labels),
        "deep_inversion": lambda t: datafree.deep_inversion(t, (1, 8, 8), 10, count_per_class=1, steps=2, batch_size=4,
                                                            progress=False),
        # student and generator on the CPU, the teacher wherever it is: its logits come back to the student
        "dafl": lambda t: datafree.dafl(models.mlp((1, 8, 8), 10, width=4, depth=1), t,
                                        datafree.dafl_generator(2, (1, 8, 8), width=4), codes=8, epochs=1, batch_size=4,
                                        progress=False),
    }


TAKES_A_MODEL = ["activations", "record_metadata", "reconstruction_step", "reconstruct", "batchnorm_statistics_loss",
                 "deep_inversion_loss", "deep_inversion", "dafl"]


@pytest.mark.parametrize("modes", ["train", "mixed", "mixed eval"])
@pytest.mark.parametrize("name", TAKES_A_MODEL)
def test_the_teacher_is_left_as_found(device_calls, name, modes):
    teacher = bn_teacher_in(modes)
    teacher[1].weight.requires_grad_(False)  # a caller's own frozen layer stays frozen, the rest trainable
    before, flags, values = untouched(teacher), [p.requires_grad for p in teacher.parameters()], state(teacher)
    device_calls[name](teacher)
    assert untouched(teacher) == before
    assert [p.requires_grad for p in teacher.parameters()] == flags
    assert all(p.grad is None for p in teacher.parameters())  # only the pixels get gradients
    assert all(torch.equal(values[k], v) for k, v in teacher.state_dict().items())  # BN running statistics too


@pytest.mark.parametrize("name", TAKES_A_MODEL)
def test_the_teachers_device_is_followed(device_calls, name):
    meta, seen = on_meta(bn_teacher_in("train").eval())
    follows_meta(lambda: device_calls[name](meta))
    assert seen and set(seen) == {"meta"}, seen


def test_reconstruct_and_deep_inversion_return_where_the_teacher_is(metadata, teacher):
    rebuilt = datafree.reconstruct(teacher, metadata["top_layer"], count_per_class=1, steps=1, progress=False)
    assert rebuilt.x.device == rebuilt.y.device == torch.device("cpu")
    made = datafree.deep_inversion(on_meta(bn_teacher_in("train"))[0].eval(), (1, 8, 8), 10, count_per_class=1,
                                   steps=1, progress=False)
    assert made.x.device.type == made.y.device.type == "meta"  # DeepInversion runs through on meta: shapes only


def test_batchnorm_loss_of_a_training_teacher_is_its_eval_loss_and_updates_nothing():
    # float64: on a teacher left in training mode, the loss reads the running statistics (eval mode) and the
    # batch does not overwrite them; before, BatchNorm normalised with the batch and moved its running mean
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0], [2.0, 1.0]], dtype=torch.float64)
    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)).double().eval()
    with torch.no_grad():
        hidden = net[1](x)  # (4, 3), the BN input
        net[2].running_mean.copy_(hidden.mean(0) + torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64))
        net[2].running_var.copy_(hidden.var(0, correction=0))
        expected_logits = net(x)  # eval mode
    running = net[2].running_mean.clone()
    net.train()
    loss, logits = datafree.batchnorm_statistics_loss(net, x)
    assert loss.item() == pytest.approx(5.0, abs=1e-12)  # ‖(3, 4, 0)‖₂, as in eval mode
    torch.testing.assert_close(logits, expected_logits, rtol=0, atol=1e-12)
    assert torch.equal(net[2].running_mean, running) and net.training and net[2].training


# ---- DAFL -------------------------------------------------------------------------------------------

def dafl_loss64(logits, features, activation_weight, entropy_weight):
    """DAFL's generator loss written out in float64 from the paper's three terms, one example at a time."""
    logits, features = logits.double(), features.double()
    one_hot = sum(-torch.log_softmax(z, dim=0)[z.argmax()] for z in logits) / len(logits)
    activation = -sum(f.abs().sum() for f in features) / features.numel()
    p = sum(torch.softmax(z, dim=0) for z in logits) / len(logits)
    return one_hot + activation_weight * activation + entropy_weight * (p * p.log()).sum()


def test_dafl_generator_loss_value_and_gradients_match_float64():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=generator, requires_grad=True)
    features = torch.randn(6, 5, generator=generator, requires_grad=True)
    logits64, features64 = (t.detach().double().requires_grad_(True) for t in (logits, features))
    loss = datafree.dafl_generator_loss(logits, features, activation_weight=0.3, entropy_weight=2.0)
    expected = dafl_loss64(logits64, features64, 0.3, 2.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(logits.grad.double(), logits64.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(features.grad.double(), features64.grad, rtol=1e-4, atol=1e-6)


def test_dafl_entropy_term_prefers_a_batch_that_covers_the_classes():
    """Two batches of equally confident logits: the one spread over all classes scores lower by its entropy term;
    with the other terms weighted 0, the balanced batch reaches −log(classes)."""
    confident = 10 * torch.eye(4)  # (4, 4): one sure prediction per class
    collapsed = confident[[0, 0, 0, 0]]  # four sure predictions of class 0
    features = torch.zeros(4, 3)
    balanced, one_class = (datafree.dafl_generator_loss(z, features, 0.0, 1.0) for z in (confident, collapsed))
    assert balanced < one_class
    zero_one_hot = datafree.dafl_generator_loss(confident, features, 0.0, 1.0) - \
        torch.nn.functional.cross_entropy(confident, torch.arange(4))
    assert zero_one_hot.item() == pytest.approx(-torch.log(torch.tensor(4.0)).item(), abs=1e-3)


def test_dafl_trains_generator_and_student_leaves_the_teacher_and_repeats_bit_for_bit(teacher):
    def run():
        student = models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1)
        generator = datafree.dafl_generator(8, (1, 8, 8), width=32, seed=2)
        history = datafree.dafl(student, teacher, generator, codes=64, epochs=2, batch_size=32, seed=3, progress=False)
        return student, generator, history

    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    for p in teacher.parameters():
        p.grad = None  # training the fixture left its last gradients: DAFL must not write new ones
    student, generator, history = run()
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters()) and all(p.requires_grad for p in teacher.parameters())
    assert len(history.loss) == 2 and not student.training and not generator.training
    fresh_student = models.mlp((1, 8, 8), 10, width=16, depth=1, seed=1)
    fresh_generator = datafree.dafl_generator(8, (1, 8, 8), width=32, seed=2)
    assert not torch.equal(student[-1].weight, fresh_student[-1].weight)
    assert not torch.equal(generator[0].weight, fresh_generator[0].weight)
    again_student, again_generator, again = run()
    assert again.loss == history.loss
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), again_student.state_dict().values()))
    images = generator(torch.randn(5, 8))
    assert images.shape == (5, 1, 8, 8) and images.min() > 0 and images.max() < 1
