import pytest
import torch
import torch.nn.functional as F
from torch import nn

from device_probe import follows_meta, on_meta, untouched
from kdlib.data import Split
from kdlib.dataset_distillation import (crop_scale_rotate, distill_dataset, distribution_matching,
                                        distribution_matching_loss, evaluate_synthetic, generator_matching,
                                        gradient_distance, gradient_matching, ImageGenerator, initial_synthetic,
                                        inner_step, poison_labels, random_shift, unrolled_train)
from kdlib.models import cnn, convnet, mlp
from kdlib.training import TrainSettings, evaluate


def tiny_linear():
    torch.manual_seed(0)
    return nn.Linear(3, 2).double()


def hand_sgd_step(weight, bias, x, y, lr):
    """θ − lr ∇CE for a linear softmax classifier: ∇_W = (p − onehot)ᵀ x / N, ∇_b = mean(p − onehot)."""
    p = torch.softmax(x @ weight.T + bias, dim=1)  # (N, classes)
    residual = (p - F.one_hot(y, 2).double()) / len(x)
    return weight - lr * residual.T @ x, bias - lr * residual.sum(0)


def test_inner_step_equals_hand_sgd_step_and_reaches_pixels_and_lr():
    model = tiny_linear()
    params = {k: v.detach().clone().requires_grad_(True) for k, v in model.named_parameters()}
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 1, 0])
    lr = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    new = inner_step(params, x, y, lr, model)
    weight, bias = hand_sgd_step(params["weight"].detach(), params["bias"].detach(), x.detach(), y, 0.3)
    torch.testing.assert_close(new["weight"].detach(), weight)
    torch.testing.assert_close(new["bias"].detach(), bias)
    # the outer loss on real data depends on the pixels and lr only through the inner step
    real_x, real_y = torch.randn(5, 3, dtype=torch.float64), torch.tensor([1, 0, 1, 1, 0])
    outer = F.cross_entropy(real_x @ new["weight"].T + new["bias"], real_y)
    grad_x, grad_lr = torch.autograd.grad(outer, (x, lr))
    assert grad_x.abs().sum() > 0 and grad_lr.abs() > 0

    def outer_of(x_value, lr_value):  # independent float64 computation, no autograd
        w, b = hand_sgd_step(params["weight"].detach(), params["bias"].detach(), x_value, y, lr_value)
        return F.cross_entropy(real_x @ w.T + b, real_y)

    eps = 1e-6
    numeric_x = torch.zeros_like(x)
    for i in range(4):
        for j in range(3):
            step = torch.zeros_like(x)
            step[i, j] = eps
            numeric_x[i, j] = (outer_of(x.detach() + step, 0.3) - outer_of(x.detach() - step, 0.3)) / (2 * eps)
    numeric_lr = (outer_of(x.detach(), 0.3 + eps) - outer_of(x.detach(), 0.3 - eps)) / (2 * eps)
    torch.testing.assert_close(grad_x, numeric_x, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(grad_lr, numeric_lr, rtol=1e-5, atol=1e-8)


def test_distilled_noise_beats_initial_noise_on_fixed_init(digits):
    build = lambda seed: mlp((1, 8, 8), 10, width=32, depth=1, seed=seed)
    noise = initial_synthetic(digits.train, 1, init="noise", seed=0)
    distilled = distill_dataset(build, digits.train, 1, steps=3, iterations=60, image_lr=0.1, initial_lr=0.1,
                                seed=0, progress=False)
    assert distilled.synthetic.x.shape == noise.x.shape and torch.equal(distilled.synthetic.y, noise.y)
    fixed = build(0)
    before = evaluate(unrolled_train(fixed, noise, torch.full((3,), 0.1)), digits.test)
    after = evaluate(unrolled_train(fixed, distilled.synthetic, distilled.learning_rates), digits.test)
    assert after > before + 0.3, (before, after)
    assert (distilled.learning_rates > 0).all()


def test_distribution_matching_loss_is_zero_at_class_means_under_linear_embedding():
    torch.manual_seed(0)
    embed = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))  # linear: mean of embeddings = embedding of mean
    real_x, real_y = torch.randn(12, 1, 2, 2), torch.tensor([0, 1, 2] * 4)
    means = torch.stack([real_x[real_y == c].mean(0) for c in range(3)])
    zero = distribution_matching_loss(embed, real_x, real_y, means, torch.arange(3), 3)
    assert zero.abs() < 1e-10
    # moving one class mean by δ costs ‖W δ‖²
    delta = torch.randn(1, 2, 2)
    moved = means.clone()
    moved[1] += delta
    loss = distribution_matching_loss(embed, real_x, real_y, moved, torch.arange(3), 3)
    expected = ((embed[1].weight @ delta.flatten()) ** 2).sum()
    torch.testing.assert_close(loss, expected)


def test_gradient_distance_hand_case():
    same = [torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([5.0, 1.0])]
    assert gradient_distance(same, [g * 3 for g in same]) < 1e-6  # scale does not matter, bias skipped
    opposite = [torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([5.0, 1.0])]
    flipped = [torch.tensor([[-1.0, 0.0], [0.0, 1.0]]), torch.tensor([0.0, 0.0])]
    torch.testing.assert_close(gradient_distance(opposite, flipped), torch.tensor(2.0))  # (1 − (−1)) + (1 − 1)


def test_distribution_matching_lowers_held_out_loss_and_raises_accuracy(digits):
    build = lambda seed: cnn(1, 10, width=8, depth=2, seed=seed)
    start = initial_synthetic(digits.train, 1, seed=0)
    matched = distribution_matching(build, digits.train, 1, iterations=60, max_shift=1, seed=0, progress=False)

    def held_out_loss(synthetic):  # embedding networks the matching never drew (seeds 1..60 were used)
        with torch.no_grad():
            return sum(distribution_matching_loss(build(1000 + s)[:-1], digits.train.x, digits.train.y,
                                                  synthetic.x, synthetic.y, 10) for s in range(5))

    assert held_out_loss(matched) < 0.7 * held_out_loss(start)
    evaluate_with = lambda seed: build(100 + seed)  # fresh inits, never used for matching
    before = evaluate_synthetic(start, evaluate_with, digits.test, runs=2, epochs=100, seed=0, lr=1e-2,
                                progress=False)
    after = evaluate_synthetic(matched, evaluate_with, digits.test, runs=2, epochs=100, seed=0, lr=1e-2,
                               progress=False)
    assert sum(after) > sum(before), (before, after)


def test_gradient_matching_runs_and_moves_images(digits):
    build = lambda seed: cnn(1, 10, width=8, depth=2, seed=seed)
    start = initial_synthetic(digits.train, 1, seed=0)
    matched = gradient_matching(build, digits.train, 1, iterations=2, outer_loop=2, inner_loop=1, seed=0,
                                progress=False)
    assert matched.x.shape == start.x.shape and (matched.x - start.x).abs().max() > 0


def test_poisoned_labels_are_a_permutation_and_hurt(digits):
    synthetic = initial_synthetic(digits.train, 3, seed=0)
    poisoned = poison_labels(synthetic, shift=1)
    assert torch.equal(poisoned.y, (synthetic.y + 1) % 10) and torch.equal(poisoned.x, synthetic.x)
    assert sorted(torch.unique(poisoned.y).tolist()) == list(range(10))
    swapped = poison_labels(synthetic, mapping={3: 8, 8: 3})
    assert torch.equal(swapped.y[synthetic.y == 3], torch.full((3,), 8))
    assert torch.equal(swapped.y[synthetic.y == 5], synthetic.y[synthetic.y == 5])
    build = lambda seed: mlp((1, 8, 8), 10, width=32, depth=1, seed=seed)
    clean = evaluate_synthetic(synthetic, build, digits.test, runs=1, epochs=100, lr=1e-2, progress=False)
    bad = evaluate_synthetic(poisoned, build, digits.test, runs=1, epochs=100, lr=1e-2, progress=False)
    assert clean[0] > 0.5 and bad[0] < 0.2, (clean, bad)


def test_deterministic(digits):
    build = lambda seed: cnn(1, 10, width=8, depth=1, seed=seed)
    runs = [distribution_matching(build, digits.train, 1, iterations=3, seed=1, progress=False) for _ in range(2)]
    assert torch.equal(runs[0].x, runs[1].x)
    runs = [distill_dataset(build, digits.train, 1, steps=2, iterations=3, seed=1, progress=False) for _ in range(2)]
    assert torch.equal(runs[0].synthetic.x, runs[1].synthetic.x)
    assert torch.equal(runs[0].learning_rates, runs[1].learning_rates)


def test_random_shift_moves_pixels_and_keeps_gradient():
    x = torch.zeros(1, 1, 5, 5, requires_grad=True)
    out = random_shift(x + torch.eye(5)[None, None], 2, torch.Generator().manual_seed(0))
    assert out.shape == (1, 1, 5, 5)
    out.sum().backward()
    assert x.grad.abs().sum() > 0


def test_crop_scale_rotate_is_identity_at_zero_strength_and_shifts_by_whole_pixels():
    x = torch.rand(6, 1, 9, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    same = crop_scale_rotate(x, torch.Generator().manual_seed(1), max_shift=0, max_scale=0.0, max_degrees=0.0)
    assert torch.allclose(same, x, atol=1e-12)
    # with scaling and rotation off, every image is either unchanged or moved by whole pixels (zero-filled)
    shifted = crop_scale_rotate(x, torch.Generator().manual_seed(2), max_shift=2, max_scale=0.0, max_degrees=0.0)
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        windows = [padded[i, :, 2 + dy : 11 + dy, 2 + dx : 11 + dx] for dy in range(-2, 3) for dx in range(-2, 3)]
        assert any(torch.allclose(shifted[i], w, atol=1e-12) for w in windows), i
    assert not torch.allclose(shifted, x)  # 6 images: at least one moved (fixed seed)


def test_crop_scale_rotate_rotates_about_the_centre_and_passes_gradients():
    # a centred disc is unchanged by rotation; an off-centre dot is not
    side = torch.arange(15, dtype=torch.float64) - 7
    disc = ((side[:, None] ** 2 + side[None, :] ** 2) <= 16).double()[None, None].repeat(8, 1, 1, 1)
    rotated = crop_scale_rotate(disc, torch.Generator().manual_seed(0), max_shift=0, max_scale=0.0)
    assert (rotated - disc).abs().mean() < 0.05
    dot = torch.zeros(8, 1, 15, 15, dtype=torch.float64)
    dot[:, :, 2, 7] = 1.0
    moved = crop_scale_rotate(dot, torch.Generator().manual_seed(0), max_shift=0, max_scale=0.0)
    assert (moved - dot).abs().sum() > 1.0
    images = torch.rand(2, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: crop_scale_rotate(x, torch.Generator().manual_seed(3), max_shift=1),
                                    (images,))


def test_papers_recipe_trains_fresh_networks(digits):
    build = lambda seed: convnet(1, 10, 8, width=16, depth=2, seed=seed)
    five_per_class = initial_synthetic(digits.train, 5, seed=0)
    papers = evaluate_synthetic(five_per_class, build, digits.test, runs=2, epochs=100, lr=1e-2, recipe="papers",
                                progress=False)
    assert min(papers) > 0.5, papers  # chance is 0.1
    # lr defaults to the recipe's own rate: 0.01 for the papers' SGD
    assert evaluate_synthetic(five_per_class, build, digits.test, runs=2, epochs=100, recipe="papers",
                              progress=False) == papers
    with pytest.raises(ValueError, match="recipe"):
        evaluate_synthetic(five_per_class, build, digits.test, recipe="sgd")
    with pytest.raises(ValueError, match="max_shift belongs to"):
        evaluate_synthetic(five_per_class, build, digits.test, recipe="papers", max_shift=2)


def test_errors(digits):
    build = lambda seed: mlp((1, 8, 8), 10, width=8, depth=1, seed=seed)
    with pytest.raises(ValueError, match="images_per_class"):
        initial_synthetic(digits.train, 0)
    with pytest.raises(ValueError, match="init"):
        initial_synthetic(digits.train, 1, init="zeros")
    with pytest.raises(ValueError, match="same length"):
        distribution_matching(build, Split(digits.train.x, digits.train.y[:-1]), 1, iterations=1)
    with pytest.raises(ValueError, match="same shape"):
        distribution_matching_loss(nn.Flatten(), torch.zeros(2, 1, 8, 8), torch.tensor([0, 1]),
                                   torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="class 1 has no synthetic"):
        distribution_matching_loss(nn.Flatten(), torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]),
                                   torch.zeros(1, 1, 2, 2), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="image_lr"):
        distill_dataset(build, digits.train, 1, image_lr=-1.0)
    with pytest.raises(ValueError, match="steps"):
        distill_dataset(build, digits.train, 1, steps=0)
    with pytest.raises(ValueError, match="same shape"):
        evaluate_synthetic(Split(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1])), build, digits.test)
    with pytest.raises(ValueError, match="permute"):
        poison_labels(initial_synthetic(digits.train, 1), mapping={3: 8})
    with pytest.raises(ValueError, match="shapes differ"):
        gradient_distance([torch.zeros(2, 2)], [torch.zeros(3, 2)])
    with pytest.raises(TypeError, match="iterations"):
        distribution_matching(build, digits.train, 1, iterations=2.5)


# -----------------------------------------------------------------------------
# kdlib.models.convnet, the evaluation network of the DC/DM papers

def test_convnet_shapes_and_layers():
    from kdlib.models import convnet
    model = convnet(1, 10, 28, width=16, depth=3)
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert model[-1].in_features == 16 * 4 * 4  # one-channel 28×28 (MNIST): padding 3 first, 32 → 16 → 8 → 4
    rgb = convnet(3, 10, 28, width=16, depth=3)  # any other input: padding 1, 28 → 14 → 7 → 3
    assert rgb(torch.zeros(2, 3, 28, 28)).shape == (2, 10) and rgb[-1].in_features == 16 * 3 * 3
    assert sum(isinstance(m, nn.GroupNorm) for m in model) == 3
    assert sum(isinstance(m, nn.AvgPool2d) for m in model) == 3
    small = convnet(3, 4, (8, 8), width=8, depth=3)  # 8 → 4 → 2 → 1
    assert small(torch.zeros(2, 3, 8, 8)).shape == (2, 4)
    assert small[-1].in_features == 8


def test_convnet_is_seeded_and_leaves_global_rng_alone():
    from kdlib.models import convnet
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = convnet(1, 10, 8, width=4, depth=2, seed=3), convnet(1, 10, 8, width=4, depth=2, seed=3), \
        convnet(1, 10, 8, width=4, depth=2, seed=4)
    assert torch.equal(torch.rand(1), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_convnet_normalises_each_image_on_its_own():
    # Instance norm: an image's output does not depend on the rest of the batch (batch norm would), and
    # multiplying an image by a > 0 only scales the first conv's output, which the norm then removes.
    from kdlib.models import convnet
    model = convnet(1, 10, 8, width=4, depth=2, seed=0).double().train()
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    together = model(x)
    alone = torch.cat([model(x[i:i + 1]) for i in range(6)])
    torch.testing.assert_close(together, alone)
    torch.testing.assert_close(model(3.0 * x), together, atol=1e-4, rtol=1e-4)


def test_convnet_rejects_bad_sizes():
    from kdlib.models import convnet
    with pytest.raises(ValueError, match="2\\*\\*depth"):
        convnet(1, 10, 4, depth=3)
    with pytest.raises(ValueError, match="width"):
        convnet(1, 10, 28, width=0)
    with pytest.raises(ValueError, match="classes"):
        convnet(1, 0, 28)
    with pytest.raises(ValueError, match="image_height"):
        convnet(1, 10, (0, 28))


# -----------------------------------------------------------------------------
# device policy (kdlib.devices): the methods run where build_model puts its networks

SMALL = lambda seed: cnn(1, 10, width=4, depth=2, seed=seed)
LEAVES = sum(1 for m in SMALL(0).modules() if not list(m.children()))  # layers one forward pass goes through


def meta_builder(build):
    """build_model on the meta device; the devices every built network's layers see, one list per network."""
    seen_per_network = []

    def build_on_meta(seed):
        meta, seen = on_meta(build(seed))
        seen_per_network.append(seen)
        return meta

    return build_on_meta, seen_per_network


BUILDER_CALLS = {
    "distill_dataset": lambda build, real: distill_dataset(build, real, 1, steps=2, iterations=2, batch_size=16,
                                                           progress=False),
    "distill_dataset random init": lambda build, real: distill_dataset(build, real, 1, steps=2, iterations=2,
                                                                       batch_size=16, fixed_init=False, progress=False),
    "distribution_matching": lambda build, real: distribution_matching(build, real, 1, iterations=2, batch_size=8,
                                                                       max_shift=1, progress=False),
    "gradient_matching": lambda build, real: gradient_matching(build, real, 1, iterations=1, outer_loop=1,
                                                               inner_loop=1, batch_size=8, max_shift=1, progress=False),
    "evaluate_synthetic": lambda build, real: evaluate_synthetic(initial_synthetic(real, 1), build, real, runs=1,
                                                                 epochs=1, max_shift=1, progress=False),
    "evaluate_synthetic papers": lambda build, real: evaluate_synthetic(initial_synthetic(real, 1), build, real,
                                                                        runs=1, epochs=1, recipe="papers",
                                                                        progress=False),
}


@pytest.mark.parametrize("name", BUILDER_CALLS)
def test_methods_run_where_build_model_puts_the_networks(digits, name):
    build, seen_per_network = meta_builder(SMALL)
    follows_meta(lambda: BUILDER_CALLS[name](build, digits.train))
    seen = [device for network in seen_per_network for device in network]
    # more than the one-example class check: the method's own passes ran on meta too
    assert len(seen) > LEAVES and set(seen) == {"meta"}, seen


def test_the_synthetic_set_is_made_where_the_networks_are(digits):
    build, _ = meta_builder(SMALL)
    matched = gradient_matching(build, digits.train, 1, iterations=1, outer_loop=1, inner_loop=1, batch_size=8,
                                progress=False)
    assert matched.x.device.type == matched.y.device.type == "meta" and matched.x.shape == (10, 1, 8, 8)
    start = initial_synthetic(digits.train, 1, init="noise")  # no network: where the real data is
    assert start.x.device == start.y.device == digits.train.x.device


def bn_cnn_in(modes):
    """A BatchNorm CNN in training mode, with its first BatchNorm in eval mode when modes == "mixed"."""
    net = cnn(1, 10, width=4, depth=2, seed=0, batch_norm=True).train()
    net[1].train(modes != "mixed")
    return net


MODEL_CALLS = {  # the public functions that take a model from their caller
    "unrolled_train": lambda model, syn: unrolled_train(model, syn, torch.tensor([0.1, 0.2])),
    "inner_step": lambda model, syn: inner_step({k: v.detach().clone().requires_grad_(True)
                                                 for k, v in model.named_parameters()}, syn.x, syn.y, 0.1, model),
    "distribution_matching_loss": lambda model, syn: distribution_matching_loss(model[:-1], syn.x, syn.y, syn.x,
                                                                                syn.y, 10),
}


@pytest.mark.parametrize("modes", ["train", "mixed"])
def test_unrolled_train_leaves_the_model_as_found(digits, modes):
    # unrolled_train trains a copy: the caller's BatchNorm statistics must not move (they did before)
    model, synthetic = bn_cnn_in(modes), initial_synthetic(digits.train, 1)
    before, values = untouched(model), {k: v.clone() for k, v in model.state_dict().items()}
    trained = unrolled_train(model, synthetic, torch.tensor([0.1, 0.2]))
    assert untouched(model) == before and all(torch.equal(values[k], v) for k, v in model.state_dict().items())
    assert not trained.training and not any(m.training for m in trained.modules())


@pytest.mark.parametrize("modes", ["train", "mixed"])
@pytest.mark.parametrize("name", ["inner_step", "distribution_matching_loss"])
def test_the_differentiable_steps_leave_the_models_modes_and_devices(digits, name, modes):
    model = cnn(1, 10, width=4, depth=2, seed=0).train()
    model[1].train(modes != "mixed")
    before = untouched(model)
    MODEL_CALLS[name](model, initial_synthetic(digits.train, 1))
    assert untouched(model) == before


@pytest.mark.parametrize("name", MODEL_CALLS)
def test_the_model_functions_follow_the_models_device(digits, name):
    meta, seen = on_meta(cnn(1, 10, width=4, depth=2, seed=0))
    follows_meta(lambda: MODEL_CALLS[name](meta, initial_synthetic(digits.train, 1)))
    assert seen and set(seen) == {"meta"}, seen


def test_crop_scale_rotate_and_random_shift_build_on_the_images_device():
    x = torch.zeros(3, 1, 6, 6, device="meta")
    assert crop_scale_rotate(x, torch.Generator().manual_seed(0)).device.type == "meta"
    assert random_shift(x, 1, torch.Generator().manual_seed(0)).device.type == "meta"


def test_evaluation_networks_end_in_eval_mode_where_they_were_built(digits):
    built = []

    def build(seed):
        built.append(bn_cnn_in("train"))
        return built[-1]

    evaluate_synthetic(initial_synthetic(digits.train, 1), build, digits.test, runs=2, epochs=2, progress=False)
    assert len(built) == 2 and not any(m.training for net in built for m in net.modules())
    assert all(p.device.type == "cpu" for net in built for p in net.parameters())


def test_evaluate_synthetic_takes_train_settings(digits):
    synthetic, build = initial_synthetic(digits.train, 2, seed=0), lambda seed: mlp((1, 8, 8), 10, width=8, seed=seed)
    by_keywords = evaluate_synthetic(synthetic, build, digits.test, runs=2, epochs=5, seed=3, progress=False)
    settings = TrainSettings(epochs=5, batch_size=256, seed=3, progress=False)
    assert evaluate_synthetic(synthetic, build, digits.test, runs=2, settings=settings) == by_keywords
    # the rate is evaluate_synthetic's lr (None: the recipe's 1e-3), never settings.lr
    fast = TrainSettings.of(settings, lr=0.5)
    assert evaluate_synthetic(synthetic, build, digits.test, runs=2, settings=fast) == by_keywords
    assert evaluate_synthetic(synthetic, build, digits.test, runs=2, settings=settings, lr=1e-3) == by_keywords
    assert evaluate_synthetic(synthetic, build, digits.test, runs=2, settings=settings, lr=0.05) != by_keywords


def test_poison_labels_takes_a_shift_or_a_mapping(digits):
    synthetic = initial_synthetic(digits.train, 1)
    assert torch.equal(poison_labels(synthetic).y, poison_labels(synthetic, shift=1).y)
    assert torch.equal(poison_labels(synthetic, shift=2, classes=12).y, synthetic.y + 2)  # 12 classes: 9 → 11
    with pytest.raises(ValueError, match="not both"):
        poison_labels(synthetic, shift=1, mapping={3: 8, 8: 3})


def test_image_generator_and_the_matching_loss_through_it_against_float64_by_hand():
    torch.manual_seed(0)
    generator = ImageGenerator(latent_dim=3, classes=2, image_shape=(1, 2, 2), hidden=5, low=-1.0, high=2.0).double()
    codes = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    first, second = generator.layers[0], generator.layers[2]

    def by_hand(z):  # G(z, c) = low + (high − low)·σ(W₂ relu(W₁ [z, onehot(c)] + b₁) + b₂), no kdlib code
        inputs = torch.cat([z, F.one_hot(labels, 2).double()], dim=1)
        hidden = (inputs @ first.weight.T + first.bias).clamp(min=0)
        return (-1.0 + 3.0 / (1 + torch.exp(-(hidden @ second.weight.T + second.bias)))).view(4, 1, 2, 2)

    images = generator(codes, labels)
    torch.testing.assert_close(images, by_hand(codes))
    assert images.min() > -1 and images.max() < 2
    # distribution matching through G: Σ_c ‖mean φ(real_c) − mean φ(G(z_i, c))‖², φ linear; its gradient in the codes
    embed = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
    real_x, real_y = torch.randn(6, 1, 2, 2, dtype=torch.float64), torch.tensor([0, 1, 0, 1, 1, 0])

    def loss_by_hand(z):
        w, b, fake = embed[1].weight.detach(), embed[1].bias.detach(), by_hand(z).flatten(1)
        gaps = [(real_x.flatten(1)[real_y == c] @ w.T + b).mean(0) - (fake[labels == c] @ w.T + b).mean(0)
                for c in range(2)]
        return sum((gap**2).sum() for gap in gaps)

    loss = distribution_matching_loss(embed, real_x, real_y, generator(codes, labels), labels, 2)
    torch.testing.assert_close(loss, loss_by_hand(codes))
    (grad,) = torch.autograd.grad(loss, codes)
    eps, numeric = 1e-6, torch.zeros_like(codes)
    for index in range(codes.numel()):
        step = torch.zeros(codes.numel(), dtype=torch.float64)
        step[index] = eps
        step = step.view_as(codes)
        with torch.no_grad():
            numeric.view(-1)[index] = (loss_by_hand(codes + step) - loss_by_hand(codes - step)) / (2 * eps)
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-8)


def test_generator_matching_is_seeded_and_lowers_held_out_loss(digits):
    build = lambda seed: mlp((1, 8, 8), 10, width=32, depth=1, seed=seed)
    run = lambda seed, iterations=40: generator_matching(build, digits.train, 1, iterations=iterations, seed=seed,
                                                         progress=False)
    first, again, other = run(0), run(0), run(1)
    assert torch.equal(first.synthetic.x, again.synthetic.x) and torch.equal(first.codes, again.codes)
    assert not torch.equal(first.synthetic.x, other.synthetic.x)
    assert first.synthetic.x.shape == (10, 1, 8, 8) and torch.equal(first.synthetic.y, torch.arange(10))
    assert first.synthetic.x.min() >= digits.train.x.min() and first.synthetic.x.max() <= digits.train.x.max()
    torch.testing.assert_close(first.generator(first.codes, first.synthetic.y), first.synthetic.x)

    def held_out_loss(synthetic):  # embedding networks the matching never drew (seeds 1..40 were used)
        with torch.no_grad():
            return sum(distribution_matching_loss(build(1000 + s)[:-1], digits.train.x, digits.train.y,
                                                  synthetic.x, synthetic.y, 10) for s in range(5))

    assert held_out_loss(first.synthetic) < 0.5 * held_out_loss(run(0, iterations=1).synthetic)


def test_generator_matching_runs_where_build_model_puts_the_networks(digits):
    build, seen_per_network = meta_builder(SMALL)
    follows_meta(lambda: generator_matching(build, digits.train, 1, iterations=2, batch_size=8, progress=False))
    seen = [device for network in seen_per_network for device in network]
    assert len(seen) > LEAVES and set(seen) == {"meta"}, seen  # as for the other methods in BUILDER_CALLS
