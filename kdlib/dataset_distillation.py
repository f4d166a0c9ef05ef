"""Dataset distillation: learn a handful of synthetic images that train a network almost as well as the real set.

Knowledge distillation compresses a model; dataset distillation compresses the *data*. Three methods:

- ``distill_dataset``: Wang, Zhu, Torralba & Efros, "Dataset Distillation" (arXiv 1811.10959, 2018).
  Unroll a few SGD steps θ_{i+1} = θ_i − η_i ∇_θ CE(f_θi(x̃), ỹ) on the synthetic images x̃, score the
  final θ on real data, and back-propagate through the unrolled steps into the pixels x̃ and step sizes η.
- ``distribution_matching``: Zhao & Bilen, "Dataset Condensation with Distribution Matching" (WACV 2023).
  Per class, match the mean embedding of real and synthetic images under freshly initialised networks.
- ``gradient_matching``: Zhao, Mopuri & Bilen, "Dataset Condensation with Gradient Matching" (ICLR 2021).
  Per class, make the network's gradient on synthetic images point where its gradient on real images does.

``evaluate_synthetic`` trains fresh networks on a synthetic set (with ``crop_scale_rotate`` in the papers'
recipe) and tests them on real data;
``poison_labels`` flips the synthetic labels to show what a malicious distilled set does to whoever trains on it.
"""
import copy
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.func import functional_call
from tqdm.auto import tqdm

from .data import Split
from .training import _check_split, _fit, evaluate


class Distilled(NamedTuple):
    """Result of ``distill_dataset``: the images, one learned step size per inner step, and the init used."""

    synthetic: Split  # (classes·images_per_class, 1, H, W) images and their labels
    learning_rates: torch.Tensor  # (steps,) learned η_i > 0
    initial_params: dict  # name -> tensor; the fixed initialisation (fixed-init mode) or the first one


# -----------------------------------------------------------------------------
# checks and the synthetic set's starting point

def _check_count(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer >= {low}, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number > 0, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")


def _class_count(real):
    _check_split(real, "real")
    if real.x.dim() != 4:
        raise ValueError(f"real.x must be images (N, channels, H, W), got shape {tuple(real.x.shape)}")
    if (real.y < 0).any():
        raise ValueError("real.y must be class indices >= 0; dataset distillation needs every label")
    return int(real.y.max()) + 1


def initial_synthetic(real, images_per_class, init="real", seed=0):
    """Starting synthetic set, class-sorted: ``images_per_class`` random real images per class, or Gaussian noise."""
    _check_count("images_per_class", images_per_class)
    if init not in ("real", "noise"):
        raise ValueError(f'init must be "real" or "noise", got {init!r}')
    classes = _class_count(real)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(images_per_class)  # (classes·images_per_class,)
    if init == "noise":
        x = torch.randn((len(labels), *real.x.shape[1:]), generator=generator)
        return Split(x, labels)
    picks = []
    for c in range(classes):
        rows = torch.nonzero(real.y == c).flatten()
        if len(rows) < images_per_class:
            raise ValueError(f"class {c} has {len(rows)} real images, fewer than images_per_class={images_per_class}")
        picks.append(rows[torch.randperm(len(rows), generator=generator)[:images_per_class]])
    return Split(real.x[torch.cat(picks)].clone(), labels)


def random_shift(x, max_shift, generator):
    """Translate each image by its own random offset in [−max_shift, max_shift] pixels, zero-padded.

    Differentiable in x (it is only indexing), so it can sit between the pixels and a loss.
    """
    if max_shift == 0:
        return x
    n, _, height, width = x.shape
    padded = F.pad(x, (max_shift,) * 4)  # (n, channels, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
    rows = dy[:, None] + torch.arange(height)  # (n, H)
    cols = dx[:, None] + torch.arange(width)  # (n, W)
    batch = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (n, H, W, channels)
    return out.permute(0, 3, 1, 2)


def crop_scale_rotate(x, generator, max_shift=4, max_scale=0.2, max_degrees=45.0):
    """Per image, one random transform, as the DC/DM papers' code augments MNIST while evaluating:
    a shift of up to ±max_shift pixels, a stretch by 1 ± max_scale (height and width drawn apart),
    or a rotation of up to ±max_degrees; zero-filled outside the image.

    Built from affine_grid and grid_sample, so it is differentiable in x.
    """
    n, _, height, width = x.shape
    kind = torch.randint(0, 3, (n,), generator=generator)  # 0 shift, 1 scale, 2 rotate
    uniform = lambda: 2 * torch.rand(n, generator=generator) - 1  # (n,) in [-1, 1)
    shifts = torch.randint(-max_shift, max_shift + 1, (2, n), generator=generator).float()
    one, zero = torch.ones(n), torch.zeros(n)
    # output pixel (u, v) samples the input at θ·(u, v, 1) in coordinates running from -1 to 1 across the image
    scale_x = torch.where(kind == 1, 1 + max_scale * uniform(), one)
    scale_y = torch.where(kind == 1, 1 + max_scale * uniform(), one)
    angle = torch.where(kind == 2, math.radians(max_degrees) * uniform(), zero)
    shift_x = torch.where(kind == 0, 2 * shifts[0] / width, zero)
    shift_y = torch.where(kind == 0, 2 * shifts[1] / height, zero)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos / scale_x, -sin / scale_x, shift_x], 1),
                         torch.stack([sin / scale_y, cos / scale_y, shift_y], 1)], 1)  # (n, 2, 3)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)  # (n, H, W, 2)
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


def _class_batch(real, c, batch_size, generator):
    """Random real images of class c (without replacement), at most batch_size of them."""
    rows = torch.nonzero(real.y == c).flatten()
    return real.x[rows[torch.randperm(len(rows), generator=generator)[:batch_size]]]


# -----------------------------------------------------------------------------
# Wang et al. 2018: back-propagation through unrolled training steps

def inner_step(params, synthetic_x, synthetic_y, lr, model):
    """One SGD step on the synthetic set that stays differentiable: θ' = θ − lr · ∇_θ CE(f_θ(x̃), ỹ).

    create_graph=True keeps the graph of the gradient itself, so a loss on θ' can be differentiated
    back through this step into synthetic_x and lr (Wang, Zhu, Torralba & Efros 2018).
    params: dict name -> tensor for ``model`` (used only as a function through functional_call).
    """
    logits = functional_call(model, params, (synthetic_x,))  # (synthetic, classes)
    loss = F.cross_entropy(logits, synthetic_y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}


def _params(model):
    return {name: p.detach().clone().requires_grad_(True) for name, p in model.named_parameters()}


def unrolled_train(model, synthetic, learning_rates):
    """Copy of ``model`` after the inner steps θ_{i+1} = θ_i − η_i ∇CE on the synthetic set (no graph kept)."""
    params = _params(model)
    for lr in learning_rates.detach():
        params = {name: p.detach().requires_grad_(True) for name, p in
                  inner_step(params, synthetic.x, synthetic.y, lr, model).items()}
    trained = copy.deepcopy(model)
    trained.load_state_dict({**trained.state_dict(), **{k: v.detach() for k, v in params.items()}})
    return trained.eval()


def distill_dataset(build_model, real, images_per_class=1, *, steps=10, iterations=200, batch_size=256,
                    image_lr=0.01, initial_lr=0.02, fixed_init=True, seed=0, progress=True):
    """Wang et al. 2018: learn synthetic images and step sizes η_1..η_steps by unrolled gradient descent.

    Outer loss: CE(f_θ_steps(x_real), y_real) with θ_steps from ``steps`` calls of ``inner_step`` on the
    same synthetic set, starting from build_model(seed) every time (fixed_init=True, the paper's
    ~94% MNIST mode) or from build_model(seed + iteration), a fresh initialisation each outer step.
    Images start as Gaussian noise (as in the paper); images and log η are trained with Adam.
    """
    for name, value in (("images_per_class", images_per_class), ("steps", steps),
                        ("iterations", iterations), ("batch_size", batch_size)):
        _check_count(name, value)
    for name, value in (("image_lr", image_lr), ("initial_lr", initial_lr)):
        _check_positive(name, value)
    synthetic = initial_synthetic(real, images_per_class, init="noise", seed=seed)
    synthetic_x = synthetic.x.clone().requires_grad_(True)
    log_lrs = torch.full((steps,), math.log(initial_lr), requires_grad=True)  # log keeps η > 0
    optimizer = torch.optim.Adam([synthetic_x, log_lrs], lr=image_lr)
    generator = torch.Generator().manual_seed(seed)
    first_model = build_model(seed)
    for iteration in tqdm(range(iterations), desc="distill dataset", disable=not progress, leave=False):
        model = first_model if fixed_init else build_model(seed + 1 + iteration)
        params = _params(model)
        for lr in log_lrs.exp():
            params = inner_step(params, synthetic_x, synthetic.y, lr, model)
        rows = torch.randint(0, len(real.x), (batch_size,), generator=generator)
        loss = F.cross_entropy(functional_call(model, params, (real.x[rows],)), real.y[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return Distilled(Split(synthetic_x.detach(), synthetic.y), log_lrs.detach().exp(), _params(first_model))


# -----------------------------------------------------------------------------
# Zhao & Bilen 2023: distribution matching

def distribution_matching_loss(embed, real_x, real_y, synthetic_x, synthetic_y, classes):
    """Σ_c ‖mean_{x∈real_c} embed(x) − mean_{x̃∈synthetic_c} embed(x̃)‖² (Zhao & Bilen, WACV 2023).

    Classes absent from the real batch are skipped; every class must have synthetic images.
    """
    if real_x.shape[1:] != synthetic_x.shape[1:]:
        raise ValueError(f"real and synthetic images must have the same shape, got {tuple(real_x.shape[1:])} "
                         f"and {tuple(synthetic_x.shape[1:])}")
    if len(real_x) != len(real_y) or len(synthetic_x) != len(synthetic_y):
        raise ValueError(f"images and labels must have the same length, got real {len(real_x)} vs {len(real_y)}, "
                         f"synthetic {len(synthetic_x)} vs {len(synthetic_y)}")
    real_embedding, synthetic_embedding = embed(real_x), embed(synthetic_x)  # (N, features), (M, features)
    loss = synthetic_embedding.new_zeros(())
    for c in range(classes):
        if not (synthetic_y == c).any():
            raise ValueError(f"class {c} has no synthetic images; expected at least one per class")
        if (real_y == c).any():
            gap = real_embedding[real_y == c].mean(dim=0) - synthetic_embedding[synthetic_y == c].mean(dim=0)
            loss = loss + (gap**2).sum()
    return loss


def _learnable_synthetic(real, images_per_class, image_lr, seed):
    """DC and DM both start from real images whose pixels SGD (momentum 0.5) will move, plus a seeded generator."""
    synthetic = initial_synthetic(real, images_per_class, init="real", seed=seed)
    synthetic_x = synthetic.x.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([synthetic_x], lr=image_lr, momentum=0.5)
    return synthetic, synthetic_x, optimizer, torch.Generator().manual_seed(seed)


def distribution_matching(build_model, real, images_per_class=10, *, iterations=1000, batch_size=128,
                          image_lr=1.0, max_shift=2, seed=0, progress=True):
    """Zhao & Bilen 2023: synthetic images (started from real ones) whose per-class mean embeddings match
    the real ones under a fresh random network build_model(seed + iteration) each iteration.

    The embedding is everything but the last layer; both batches get random shifts of up to max_shift
    pixels (a simple stand-in for the paper's differentiable siamese augmentation). SGD, momentum 0.5.
    """
    for name, value in (("iterations", iterations), ("batch_size", batch_size)):
        _check_count(name, value)
    _check_count("max_shift", max_shift, low=0)
    _check_positive("image_lr", image_lr)
    classes = _class_count(real)
    synthetic, synthetic_x, optimizer, generator = _learnable_synthetic(real, images_per_class, image_lr, seed)
    for iteration in tqdm(range(iterations), desc="distribution matching", disable=not progress, leave=False):
        embed = build_model(seed + 1 + iteration)[:-1].requires_grad_(False)  # only the pixels learn
        real_x = torch.cat([_class_batch(real, c, batch_size, generator) for c in range(classes)])
        per_class = torch.bincount(real.y, minlength=classes).clamp(max=batch_size)  # (classes,)
        real_y = torch.arange(classes).repeat_interleave(per_class)
        loss = distribution_matching_loss(embed, random_shift(real_x, max_shift, generator), real_y,
                                          random_shift(synthetic_x, max_shift, generator), synthetic.y, classes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return Split(synthetic_x.detach(), synthetic.y)


# -----------------------------------------------------------------------------
# Zhao, Mopuri & Bilen 2021: gradient matching

def gradient_distance(real_grads, synthetic_grads):
    """Layer-wise distance of Zhao, Mopuri & Bilen (ICLR 2021): Σ_layers Σ_outputs (1 − cos(g_real, g_syn)).

    Each weight's gradient is read as one row per output unit (out, fan_in); biases are skipped, as in the paper.
    """
    if len(real_grads) != len(synthetic_grads):
        raise ValueError(f"expected as many real as synthetic gradients, "
                         f"got {len(real_grads)} and {len(synthetic_grads)}")
    distance = 0.0
    for g_real, g_syn in zip(real_grads, synthetic_grads):
        if g_real.shape != g_syn.shape:
            raise ValueError(f"gradient shapes differ: {tuple(g_real.shape)} vs {tuple(g_syn.shape)}")
        if g_real.dim() == 1:
            continue  # bias
        cosine = F.cosine_similarity(g_real.flatten(1), g_syn.flatten(1), dim=1, eps=1e-6)  # (out,)
        distance = distance + (1 - cosine).sum()
    return distance


def gradient_matching(build_model, real, images_per_class=10, *, iterations=200, outer_loop=5, inner_loop=5,
                      batch_size=128, image_lr=0.1, network_lr=0.01, max_shift=0, seed=0, progress=True):
    """Zhao, Mopuri & Bilen 2021: for a fresh network build_model(seed + iteration), alternate
    ``outer_loop`` times: (a) per class, update the images to minimise gradient_distance between
    ∇_θ CE on a real batch and on the synthetic images; (b) train the network ``inner_loop`` SGD steps
    on the synthetic set, so the matching also covers the network states met along training.
    """
    for name, value in (("iterations", iterations), ("outer_loop", outer_loop), ("inner_loop", inner_loop),
                        ("batch_size", batch_size)):
        _check_count(name, value)
    _check_count("max_shift", max_shift, low=0)
    _check_positive("image_lr", image_lr)
    _check_positive("network_lr", network_lr)
    classes = _class_count(real)
    synthetic, synthetic_x, optimizer, generator = _learnable_synthetic(real, images_per_class, image_lr, seed)
    for iteration in tqdm(range(iterations), desc="gradient matching", disable=not progress, leave=False):
        model = build_model(seed + 1 + iteration)
        weights = list(model.parameters())
        network_optimizer = torch.optim.SGD(weights, lr=network_lr)
        for _ in range(outer_loop):
            loss = 0.0
            for c in range(classes):
                real_x = random_shift(_class_batch(real, c, batch_size, generator), max_shift, generator)
                real_y = torch.full((len(real_x),), c)
                real_grads = torch.autograd.grad(F.cross_entropy(model(real_x), real_y), weights)
                real_grads = [g.detach() for g in real_grads]
                mine = synthetic.y == c
                synthetic_logits = model(random_shift(synthetic_x[mine], max_shift, generator))
                synthetic_grads = torch.autograd.grad(F.cross_entropy(synthetic_logits, synthetic.y[mine]), weights,
                                                      create_graph=True)  # keep graph: pixels learn through it
                loss = loss + gradient_distance(real_grads, synthetic_grads)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for _ in range(inner_loop):  # move the network along, on the (fixed) synthetic images
                network_optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(model(synthetic_x.detach()), synthetic.y).backward()
                network_optimizer.step()
    return Split(synthetic_x.detach(), synthetic.y)


# -----------------------------------------------------------------------------
# evaluation and poisoning

def evaluate_synthetic(synthetic, build_model, real_test, runs=5, epochs=300, seed=0, *, lr=None,
                       batch_size=256, max_shift=0, recipe="adam", progress=True):
    """Accuracies on real_test of ``runs`` fresh networks build_model(seed + run) trained on synthetic.

    The networks never saw the distillation's networks: a different build_model tests cross-architecture
    transfer. recipe "adam": Adam at lr (default 1e-3), with random shifts of up to max_shift pixels (> 0 helps
    a lot with few images). recipe "papers": the DC/DM papers' evaluation, SGD (momentum 0.9, weight decay
    5e-4) at lr (default 0.01, theirs) ÷ 10 after half the epochs, every image crop-, scale- or
    rotate-augmented (``crop_scale_rotate``; max_shift does not apply).
    """
    _check_split(synthetic, "synthetic")
    _check_split(real_test, "real_test")
    _check_count("runs", runs)
    if synthetic.x.shape[1:] != real_test.x.shape[1:]:
        raise ValueError(f"synthetic and real_test images must have the same shape, got "
                         f"{tuple(synthetic.x.shape[1:])} and {tuple(real_test.x.shape[1:])}")
    if recipe not in ("adam", "papers"):
        raise ValueError(f'recipe must be "adam" or "papers", got {recipe!r}')
    papers = recipe == "papers"
    if papers and max_shift:
        raise ValueError(f'max_shift belongs to recipe="adam"; the papers\' recipe has its own augmentation, '
                         f"got max_shift={max_shift}")
    lr = lr if lr is not None else (0.01 if papers else 1e-3)
    generator = torch.Generator().manual_seed(seed)

    def batch_loss(model, x, y):
        # the papers shift MNIST by up to 4 of 28 pixels; keep that share of the side on other image sizes
        x = (crop_scale_rotate(x, generator, max_shift=max(1, round(x.shape[-1] / 7))) if papers
             else random_shift(x, max_shift, generator))
        return F.cross_entropy(model(x), y)

    accuracies = []
    for run in tqdm(range(runs), desc="evaluate synthetic", disable=not progress, leave=False):
        model = build_model(seed + run)
        _fit(model, Split(synthetic.x, synthetic.y), batch_loss, epochs=epochs, lr=lr, batch_size=batch_size,
             seed=seed + run, weight_decay=5e-4 if papers else 0.0, val=None, device=torch.device("cpu"),
             progress=False, desc="fit", optimizer="sgd" if papers else "adam",
             lr_schedule="step" if papers else "constant")
        accuracies.append(evaluate(model, real_test, device=torch.device("cpu")))
    return accuracies


def poison_labels(synthetic, shift=1, classes=None, mapping=None):
    """Same images, flipped labels: c → (c + shift) mod classes, or c → mapping[c] for a {source: target} swap.

    A mapping must be a permutation of the classes (e.g. {3: 8, 8: 3}); unmapped classes keep their label.
    """
    _check_split(synthetic, "synthetic")
    classes = classes or int(synthetic.y.max()) + 1
    table = (torch.arange(classes) + shift) % classes  # (classes,) old label -> new label
    if mapping is not None:
        table = torch.arange(classes)
        for source, target in mapping.items():
            table[source] = target
        if sorted(table.tolist()) != list(range(classes)):
            raise ValueError(f"mapping must permute the classes (each target used once), got {mapping}")
    if (synthetic.y < 0).any() or (synthetic.y >= classes).any():
        raise ValueError(f"synthetic labels must be in [0, {classes}), got range "
                         f"[{int(synthetic.y.min())}, {int(synthetic.y.max())}]")
    return Split(synthetic.x, table[synthetic.y])
