"""Dataset distillation: learn a handful of synthetic images that train a network almost as well as the real set.

Knowledge distillation compresses a model; dataset distillation compresses the *data*. Four methods:

- ``distill_dataset``: Wang, Zhu, Torralba & Efros, "Dataset Distillation" (arXiv 1811.10959, 2018).
  Unroll a few SGD steps θ_{i+1} = θ_i − η_i ∇_θ CE(f_θi(x̃), ỹ) on the synthetic images x̃, score the
  final θ on real data, and back-propagate through the unrolled steps into the pixels x̃ and step sizes η.
- ``distribution_matching``: Zhao & Bilen, "Dataset Condensation with Distribution Matching" (WACV 2023).
  Per class, match the mean embedding of real and synthetic images under freshly initialised networks.
- ``gradient_matching``: Zhao, Mopuri & Bilen, "Dataset Condensation with Gradient Matching" (ICLR 2021).
  Per class, make the network's gradient on synthetic images point where its gradient on real images does.
- ``generator_matching``: distribution matching through a small generator G(z, c) (in the spirit of GLaD,
  Cazenavette et al. 2023): the images are generated, not free pixels.

``evaluate_synthetic`` trains fresh networks on a synthetic set (with ``crop_scale_rotate`` in the papers'
recipe) and tests them on real data;
``poison_labels`` flips the synthetic labels to show what a malicious distilled set does to whoever trains on it.

Devices follow ``kdlib.devices``: the methods run where ``build_model``'s networks are, move real batches
there and return the synthetic set there; random draws come from seeded CPU generators (one seed, the
same draws on every device) and are moved to the tensors they meet.
"""
import copy
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from .arguments import (check_choice, check_count, check_labels, check_model, check_number, check_split,
                        check_tensor)
from .data import Split
from .devices import device_of
from .models import seeded
from .training import TrainSettings, class_count, evaluate, fit


class Distilled(NamedTuple):
    """Result of ``distill_dataset``: the images, one learned step size per inner step, and the init used."""

    synthetic: Split  # (classes·images_per_class, 1, H, W) images and their labels
    learning_rates: torch.Tensor  # (steps,) learned η_i > 0
    initial_params: dict  # name -> tensor; the fixed initialisation (fixed-init mode) or the first one


# -----------------------------------------------------------------------------
# checks and the synthetic set's starting point

def _class_count(real):
    check_split(real, "real")
    if real.x.dim() != 4:
        raise ValueError(f"real.x must be images (N, channels, H, W), got shape {tuple(real.x.shape)}")
    if (real.y < 0).any():
        raise ValueError("real.y must be class indices >= 0; dataset distillation needs every label")
    return int(real.y.max()) + 1


def _scored_classes(model, x):
    """How many classes ``model`` scores, from one example of x moved to it (shapes only: works on any device)."""
    return class_count(model, x[:1].to(device_of(model)))


def _first_network(build_model, seed, real, classes):
    """build_model(seed), checked to be a model that scores real's classes: where it is, the method runs."""
    if not callable(build_model):
        raise TypeError(f"build_model must be a function seed -> model, got {type(build_model).__name__}")
    model = build_model(seed)
    check_model(f"build_model({seed})", model)
    scored = _scored_classes(model, real.x)
    if scored != classes:
        raise ValueError(f"build_model's networks must score real's {classes} classes, got {scored}")
    return model


def _class_rows(real, c, count, generator):
    """Indices of ``count`` random real examples of class c (without replacement; all of them if fewer)."""
    rows = torch.nonzero(real.y == c).flatten()  # (N_c,), where the labels are
    return rows[torch.randperm(len(rows), generator=generator)[:count].to(rows.device)]


def initial_synthetic(real, images_per_class, init="real", seed=0):
    """Starting synthetic set, class-sorted: ``images_per_class`` random real images per class, or Gaussian
    noise; where ``real`` is."""
    check_count("images_per_class", images_per_class)
    check_choice("init", init, ("real", "noise"))
    check_count("seed", seed, low=0)
    classes = _class_count(real)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes, device=real.y.device).repeat_interleave(images_per_class)  # (classes·ipc,)
    if init == "noise":
        x = torch.randn((len(labels), *real.x.shape[1:]), generator=generator).to(real.x.device)
        return Split(x, labels)
    for c, available in enumerate(torch.bincount(real.y, minlength=classes).tolist()):
        if available < images_per_class:
            raise ValueError(f"class {c} has {available} real images, fewer than images_per_class={images_per_class}")
    picks = [_class_rows(real, c, images_per_class, generator) for c in range(classes)]
    return Split(real.x[torch.cat(picks)].clone(), labels)


def random_shift(x, max_shift, generator):
    """Translate each image by its own random offset in [−max_shift, max_shift] pixels, zero-padded.

    Differentiable in x (it is only indexing), so it can sit between the pixels and a loss. The offsets are
    drawn from ``generator`` (CPU) and the indexing happens where x is.
    """
    check_tensor("x", x, dims=4, floating=True)
    check_count("max_shift", max_shift, low=0)
    if max_shift == 0:
        return x
    n, _, height, width = x.shape
    padded = F.pad(x, (max_shift,) * 4)  # (n, channels, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).to(x.device)
    rows = dy[:, None] + torch.arange(height, device=x.device)  # (n, H)
    cols = dx[:, None] + torch.arange(width, device=x.device)  # (n, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (n, H, W, channels)
    return out.permute(0, 3, 1, 2)


def crop_scale_rotate(x, generator, max_shift=4, max_scale=0.2, max_degrees=45.0):
    """Per image, one random transform, as the DC/DM papers' code augments MNIST while evaluating:
    a shift of up to ±max_shift pixels, a stretch by 1 ± max_scale (height and width drawn apart),
    or a rotation of up to ±max_degrees; zero-filled outside the image.

    Built from affine_grid and grid_sample, so it is differentiable in x. The draws come from ``generator``
    (CPU); the affine matrices are built where x is.
    """
    check_tensor("x", x, dims=4, floating=True)
    check_count("max_shift", max_shift, low=0)
    check_number("max_scale", max_scale, inclusive=True)
    if max_scale >= 1:
        raise ValueError(f"max_scale must be in [0, 1) so that 1 ± max_scale stays > 0, got {max_scale}")
    check_number("max_degrees", max_degrees, inclusive=True)
    n, _, height, width = x.shape
    device = x.device
    kind = torch.randint(0, 3, (n,), generator=generator).to(device)  # 0 shift, 1 scale, 2 rotate
    uniform = lambda: (2 * torch.rand(n, generator=generator) - 1).to(device)  # (n,) in [-1, 1)
    shifts = torch.randint(-max_shift, max_shift + 1, (2, n), generator=generator).float().to(device)
    one, zero = torch.ones(n, device=device), torch.zeros(n, device=device)
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
    """Random real images of class c (without replacement), at most batch_size of them, where real is."""
    return real.x[_class_rows(real, c, batch_size, generator)]


# -----------------------------------------------------------------------------
# Wang et al. 2018: back-propagation through unrolled training steps

def inner_step(params, synthetic_x, synthetic_y, lr, model):
    """One SGD step on the synthetic set that stays differentiable: θ' = θ − lr · ∇_θ CE(f_θ(x̃), ỹ).

    create_graph=True keeps the graph of the gradient itself, so a loss on θ' can be differentiated
    back through this step into synthetic_x and lr (Wang, Zhu, Torralba & Efros 2018).
    params: dict name -> tensor for ``model`` (used only as a function through functional_call); the
    step runs where the params are (synthetic_x and synthetic_y are moved there).
    """
    if not isinstance(params, dict) or not all(torch.is_tensor(p) for p in params.values()) or not params:
        raise TypeError(f"params must be a non-empty dict name -> tensor (e.g. from model.named_parameters()), "
                        f"got {type(params).__name__}")
    device = next(iter(params.values())).device
    logits = functional_call(model, params, (synthetic_x.to(device),))  # (synthetic, classes)
    loss = F.cross_entropy(logits, synthetic_y.to(device))
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}


def _params(model):
    return {name: p.detach().clone().requires_grad_(True) for name, p in model.named_parameters()}


def unrolled_train(model, synthetic, learning_rates):
    """Copy of ``model`` after the inner steps θ_{i+1} = θ_i − η_i ∇CE on the synthetic set (no graph kept),
    in eval mode, where ``model`` is; ``model`` itself is left as it was."""
    check_model("model", model)
    check_split(synthetic, "synthetic")
    check_tensor("learning_rates", learning_rates, dims=1, floating=True)
    check_labels("synthetic.y", synthetic.y, _scored_classes(model, synthetic.x))
    trained = copy.deepcopy(model)  # the steps run on a copy: the caller's BatchNorm statistics stay as they were
    device = device_of(trained)
    x, y, params = synthetic.x.to(device), synthetic.y.to(device), _params(trained)
    for lr in learning_rates.detach().to(device):
        params = {name: p.detach().requires_grad_(True) for name, p in inner_step(params, x, y, lr, trained).items()}
    trained.load_state_dict({**trained.state_dict(), **{k: v.detach() for k, v in params.items()}})
    return trained.eval()


def distill_dataset(build_model, real, images_per_class=1, *, steps=10, iterations=200, batch_size=256,
                    image_lr=0.01, initial_lr=0.02, fixed_init=True, seed=0, progress=True):
    """Wang et al. 2018: learn synthetic images and step sizes η_1..η_steps by unrolled gradient descent.

    Outer loss: CE(f_θ_steps(x_real), y_real) with θ_steps from ``steps`` calls of ``inner_step`` on the
    same synthetic set, starting from build_model(seed) every time (fixed_init=True, the paper's
    ~94% MNIST mode) or from build_model(seed + iteration), a fresh initialisation each outer step.
    Images start as Gaussian noise (as in the paper); images and log η are trained with Adam.
    Runs where build_model(seed) is; the result is there.
    """
    for name, value in (("images_per_class", images_per_class), ("steps", steps),
                        ("iterations", iterations), ("batch_size", batch_size)):
        check_count(name, value)
    for name, value in (("image_lr", image_lr), ("initial_lr", initial_lr)):
        check_number(name, value)
    check_count("seed", seed, low=0)
    first_model = _first_network(build_model, seed, real, _class_count(real))
    device = device_of(first_model)
    synthetic = initial_synthetic(real, images_per_class, init="noise", seed=seed)
    synthetic_x = synthetic.x.to(device, copy=True).requires_grad_(True)  # (classes·ipc, C, H, W)
    synthetic_y = synthetic.y.to(device)
    log_lrs = torch.full((steps,), math.log(initial_lr), device=device, requires_grad=True)  # log keeps η > 0
    optimizer = torch.optim.Adam([synthetic_x, log_lrs], lr=image_lr)
    generator = torch.Generator().manual_seed(seed)
    for iteration in tqdm(range(iterations), desc="distill dataset", disable=not progress, leave=False):
        model = first_model if fixed_init else build_model(seed + 1 + iteration)
        params = _params(model)
        for lr in log_lrs.exp():
            params = inner_step(params, synthetic_x, synthetic_y, lr, model)
        rows = torch.randint(0, len(real.x), (batch_size,), generator=generator)
        logits = functional_call(model, params, (real.x[rows].to(device),))  # (batch_size, classes)
        loss = F.cross_entropy(logits, real.y[rows].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return Distilled(Split(synthetic_x.detach(), synthetic_y), log_lrs.detach().exp(), _params(first_model))


# -----------------------------------------------------------------------------
# Zhao & Bilen 2023: distribution matching

def distribution_matching_loss(embed, real_x, real_y, synthetic_x, synthetic_y, classes):
    """Σ_c ‖mean_{x∈real_c} embed(x) − mean_{x̃∈synthetic_c} embed(x̃)‖² (Zhao & Bilen, WACV 2023).

    Classes absent from the real batch are skipped; every class must have synthetic images. Computed where
    ``embed`` is (the images and labels are moved there).
    """
    check_model("embed", embed)
    check_count("classes", classes)
    check_tensor("real_x", real_x, floating=True)
    check_tensor("synthetic_x", synthetic_x, floating=True)
    if real_x.shape[1:] != synthetic_x.shape[1:]:
        raise ValueError(f"real and synthetic images must have the same shape, got {tuple(real_x.shape[1:])} "
                         f"and {tuple(synthetic_x.shape[1:])}")
    check_labels("real_y", real_y, classes, batch=len(real_x))
    check_labels("synthetic_y", synthetic_y, classes, batch=len(synthetic_x))
    device = device_of(embed)
    real_y, synthetic_y = real_y.to(device), synthetic_y.to(device)
    real_embedding, synthetic_embedding = embed(real_x.to(device)), embed(synthetic_x.to(device))  # (N, f), (M, f)
    loss = synthetic_embedding.new_zeros(())
    for c in range(classes):
        if not (synthetic_y == c).any():
            raise ValueError(f"class {c} has no synthetic images; expected at least one per class")
        if (real_y == c).any():
            gap = real_embedding[real_y == c].mean(dim=0) - synthetic_embedding[synthetic_y == c].mean(dim=0)
            loss = loss + (gap**2).sum()
    return loss


def _learnable_synthetic(real, images_per_class, image_lr, seed, device):
    """DC and DM both start from real images whose pixels SGD (momentum 0.5) will move, plus a seeded generator.
    The images (a leaf that requires grad) and their labels are put on ``device``."""
    synthetic = initial_synthetic(real, images_per_class, init="real", seed=seed)
    synthetic = Split(synthetic.x.to(device, copy=True).requires_grad_(True), synthetic.y.to(device))
    optimizer = torch.optim.SGD([synthetic.x], lr=image_lr, momentum=0.5)
    return synthetic, optimizer, torch.Generator().manual_seed(seed)


def distribution_matching(build_model, real, images_per_class=10, *, iterations=1000, batch_size=128,
                          image_lr=1.0, max_shift=2, seed=0, progress=True):
    """Zhao & Bilen 2023: synthetic images (started from real ones) whose per-class mean embeddings match
    the real ones under a fresh random network build_model(seed + iteration) each iteration.

    The embedding is everything but the last layer; both batches get random shifts of up to max_shift
    pixels (a simple stand-in for the paper's differentiable siamese augmentation). SGD, momentum 0.5.
    Runs where build_model's networks are; the synthetic set is returned there.
    """
    for name, value in (("images_per_class", images_per_class), ("iterations", iterations),
                        ("batch_size", batch_size)):
        check_count(name, value)
    check_count("max_shift", max_shift, low=0)
    check_number("image_lr", image_lr)
    check_count("seed", seed, low=0)
    classes = _class_count(real)
    device = device_of(_first_network(build_model, seed + 1, real, classes))
    synthetic, optimizer, generator = _learnable_synthetic(real, images_per_class, image_lr, seed, device)
    per_class = torch.bincount(real.y, minlength=classes).clamp(max=batch_size)  # (classes,) real images drawn
    real_y = torch.arange(classes).repeat_interleave(per_class.cpu()).to(device)  # labels of every real batch
    for iteration in tqdm(range(iterations), desc="distribution matching", disable=not progress, leave=False):
        embed = build_model(seed + 1 + iteration)[:-1].requires_grad_(False)  # only the pixels learn
        real_x = torch.cat([_class_batch(real, c, batch_size, generator) for c in range(classes)]).to(device)
        loss = distribution_matching_loss(embed, random_shift(real_x, max_shift, generator), real_y,
                                          random_shift(synthetic.x, max_shift, generator), synthetic.y, classes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return Split(synthetic.x.detach(), synthetic.y)


# -----------------------------------------------------------------------------
# generator-based: distribution matching through a small generator

class ImageGenerator(nn.Module):
    """G(z, c): latent code (latent_dim,) and class c → one image, pixels squeezed into [low, high].

    [z, onehot(c)] → Linear(hidden) → ReLU → Linear(C·H·W) → low + (high − low)·sigmoid → (C, H, W): the sigmoid
    keeps every image in the real pixel range, a crude stand-in for a GAN's image prior.
    """

    def __init__(self, latent_dim, classes, image_shape, hidden, low, high):
        for name, value in (("latent_dim", latent_dim), ("classes", classes), ("hidden", hidden), *(
                (f"image_shape[{i}]", size) for i, size in enumerate(image_shape))):
            check_count(name, value)
        if not high > low:
            raise ValueError(f"the pixel range must have high > low, got low={low}, high={high}")
        super().__init__()
        self.classes, self.image_shape, self.low, self.high = classes, tuple(image_shape), low, high
        self.layers = nn.Sequential(nn.Linear(latent_dim + classes, hidden), nn.ReLU(),
                                    nn.Linear(hidden, math.prod(image_shape)))

    def forward(self, codes, labels):
        one_hot = torch.eye(self.classes, dtype=codes.dtype, device=codes.device)[labels]  # (n, classes); works on meta
        inputs = torch.cat([codes, one_hot], dim=1)  # (n, latent + classes)
        pixels = self.low + (self.high - self.low) * torch.sigmoid(self.layers(inputs))  # (n, C·H·W)
        return pixels.view(len(codes), *self.image_shape)


class Generated(NamedTuple):
    """Result of ``generator_matching``: the synthetic set G(z_i, c_i), the generator and the learned codes z_i."""

    synthetic: Split  # (classes·images_per_class, C, H, W) images and their labels, class-sorted
    generator: ImageGenerator  # call generator(codes, labels) for more images
    codes: torch.Tensor  # (classes·images_per_class, latent_dim)


def generator_matching(build_model, real, images_per_class=1, *, latent_dim=16, hidden=128, iterations=100,
                       batch_size=128, lr=0.03, seed=0, progress=True):
    """Distribution matching through a generator: learn G and codes z_i so that, under a fresh random network
    build_model(seed + iteration) each iteration, Σ_c ‖mean_{x∈real_c} φ(x) − mean_{i: c_i=c} φ(G(z_i, c))‖² → min
    (φ: everything but the last layer; the loss is ``distribution_matching_loss``).

    The images are never free pixels: they are a generator's outputs, as in "Generalizing Dataset Distillation
    via Deep Generative Prior" (GLaD, Cazenavette et al., CVPR 2023) and IT-GAN (Zhao & Bilen 2022), which optimise
    the latent codes of a *pretrained* GAN with a distillation loss. Here the small ``ImageGenerator`` is trained
    from scratch, together with the codes (Adam at lr), starting from N(0, 1) codes and no real image.
    Runs where build_model's networks are; the result is there.
    """
    for name, value in (("images_per_class", images_per_class), ("latent_dim", latent_dim), ("hidden", hidden),
                        ("iterations", iterations), ("batch_size", batch_size)):
        check_count(name, value)
    check_number("lr", lr)
    check_count("seed", seed, low=0)
    classes = _class_count(real)
    device = device_of(_first_network(build_model, seed + 1, real, classes))
    low, high = real.x.min().item(), real.x.max().item()
    generator = seeded(seed, lambda: ImageGenerator(latent_dim, classes, real.x.shape[1:], hidden, low, high)).to(device)
    draws = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(images_per_class).to(device)  # (classes·ipc,), class-sorted
    codes = torch.randn(len(labels), latent_dim, generator=draws).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([*generator.parameters(), codes], lr=lr)
    per_class = torch.bincount(real.y, minlength=classes).clamp(max=batch_size)  # (classes,) real images drawn
    real_y = torch.arange(classes).repeat_interleave(per_class.cpu()).to(device)  # labels of every real batch
    for iteration in tqdm(range(iterations), desc="generator matching", disable=not progress, leave=False):
        embed = build_model(seed + 1 + iteration)[:-1].requires_grad_(False)  # only G and the codes learn
        real_x = torch.cat([_class_batch(real, c, batch_size, draws) for c in range(classes)]).to(device)
        loss = distribution_matching_loss(embed, real_x, real_y, generator(codes, labels), labels, classes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    generator.eval().requires_grad_(False)
    codes = codes.detach()
    return Generated(Split(generator(codes, labels), labels), generator, codes)


# -----------------------------------------------------------------------------
# Zhao, Mopuri & Bilen 2021: gradient matching

def gradient_distance(real_grads, synthetic_grads):
    """Layer-wise distance of Zhao, Mopuri & Bilen (ICLR 2021): Σ_layers Σ_outputs (1 − cos(g_real, g_syn)).

    Each weight's gradient is read as one row per output unit (out, fan_in); biases are skipped, as in the paper.
    """
    for name, grads in (("real_grads", real_grads), ("synthetic_grads", synthetic_grads)):
        if not isinstance(grads, (list, tuple)) or not all(torch.is_tensor(g) for g in grads):
            raise TypeError(f"{name} must be a list of gradient tensors, one per parameter, got {type(grads).__name__}")
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
    Runs where build_model's networks are; the synthetic set is returned there.
    """
    for name, value in (("images_per_class", images_per_class), ("iterations", iterations),
                        ("outer_loop", outer_loop), ("inner_loop", inner_loop), ("batch_size", batch_size)):
        check_count(name, value)
    check_count("max_shift", max_shift, low=0)
    check_number("image_lr", image_lr)
    check_number("network_lr", network_lr)
    check_count("seed", seed, low=0)
    classes = _class_count(real)
    device = device_of(_first_network(build_model, seed + 1, real, classes))
    synthetic, optimizer, generator = _learnable_synthetic(real, images_per_class, image_lr, seed, device)
    for iteration in tqdm(range(iterations), desc="gradient matching", disable=not progress, leave=False):
        model = build_model(seed + 1 + iteration)
        weights = list(model.parameters())
        network_optimizer = torch.optim.SGD(weights, lr=network_lr)
        for _ in range(outer_loop):
            loss = 0.0
            for c in range(classes):
                real_x = random_shift(_class_batch(real, c, batch_size, generator).to(device), max_shift, generator)
                real_y = torch.full((len(real_x),), c, device=device)
                real_grads = torch.autograd.grad(F.cross_entropy(model(real_x), real_y), weights)
                real_grads = [g.detach() for g in real_grads]
                mine = slice(c * images_per_class, (c + 1) * images_per_class)  # class-sorted (initial_synthetic)
                synthetic_logits = model(random_shift(synthetic.x[mine], max_shift, generator))
                synthetic_grads = torch.autograd.grad(F.cross_entropy(synthetic_logits, synthetic.y[mine]), weights,
                                                      create_graph=True)  # keep graph: pixels learn through it
                loss = loss + gradient_distance(real_grads, synthetic_grads)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for _ in range(inner_loop):  # move the network along, on the (fixed) synthetic images
                network_optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(model(synthetic.x.detach()), synthetic.y).backward()
                network_optimizer.step()
    return Split(synthetic.x.detach(), synthetic.y)


# -----------------------------------------------------------------------------
# evaluation and poisoning

RECIPES = {  # what each evaluation recipe sets in TrainSettings; lr is the recipe's default rate
    "adam": dict(optimizer="adam", lr=1e-3, lr_schedule="constant", weight_decay=0.0),
    "papers": dict(optimizer="sgd", lr=0.01, lr_schedule="step", weight_decay=5e-4),
}
EVALUATION = TrainSettings(epochs=300, batch_size=256)  # evaluate_synthetic's settings unless others are given


def evaluate_synthetic(synthetic, build_model, real_test, runs=5, *, lr=None, max_shift=0, recipe="adam",
                       settings=None, **overrides):
    """Accuracies on real_test of ``runs`` fresh networks build_model(seed + run) trained on synthetic.

    The networks never saw the distillation's networks: a different build_model tests cross-architecture
    transfer. recipe "adam": Adam at lr (default 1e-3), with random shifts of up to max_shift pixels (> 0 helps
    a lot with few images). recipe "papers": the DC/DM papers' evaluation, SGD (momentum 0.9, weight decay
    5e-4) at lr (default 0.01, theirs) ÷ 10 after half the epochs, every image crop-, scale- or
    rotate-augmented (``crop_scale_rotate``; max_shift does not apply).
    ``settings``/keywords: see TrainSettings; the default is ``EVALUATION`` (300 epochs, batches of 256,
    seed 0); run r trains with seed + r. The recipe sets the optimizer, schedule and weight decay, and the
    rate is ``lr`` (None: the recipe's), never settings.lr. Each network trains where build_model puts it.
    """
    check_split(synthetic, "synthetic")
    check_split(real_test, "real_test")
    check_count("runs", runs)
    if synthetic.x.shape[1:] != real_test.x.shape[1:]:
        raise ValueError(f"synthetic and real_test images must have the same shape, got "
                         f"{tuple(synthetic.x.shape[1:])} and {tuple(real_test.x.shape[1:])}")
    check_choice("recipe", recipe, RECIPES)
    check_count("max_shift", max_shift, low=0)
    papers = recipe == "papers"
    if papers and max_shift:
        raise ValueError(f'max_shift belongs to recipe="adam"; the papers\' recipe has its own augmentation, '
                         f"got max_shift={max_shift}")
    fixed = sorted(set(overrides) & set(RECIPES[recipe]))
    if fixed:
        raise ValueError(f"{fixed} are set by the recipe ({recipe!r}: {RECIPES[recipe]}); choose recipe= instead")
    if not callable(build_model):
        raise TypeError(f"build_model must be a function seed -> model, got {type(build_model).__name__}")
    settings = TrainSettings.of(EVALUATION if settings is None else settings, **overrides)
    recipe_settings = {**RECIPES[recipe], **({} if lr is None else {"lr": lr})}
    generator = torch.Generator().manual_seed(settings.seed)

    def batch_loss(model, x, y):
        # the papers shift MNIST by up to 4 of 28 pixels; keep that share of the side on other image sizes
        x = (crop_scale_rotate(x, generator, max_shift=max(1, round(x.shape[-1] / 7))) if papers
             else random_shift(x, max_shift, generator))
        return F.cross_entropy(model(x), y)

    accuracies = []
    for run in tqdm(range(runs), desc="evaluate synthetic", disable=not settings.progress, leave=False):
        seed = settings.seed + run
        model = build_model(seed)
        check_model(f"build_model({seed})", model)
        check_labels("synthetic.y", synthetic.y, _scored_classes(model, synthetic.x))
        fit(model, (synthetic.x, synthetic.y), batch_loss,
            TrainSettings.of(settings, seed=seed, progress=False, **recipe_settings), desc="fit")
        accuracies.append(evaluate(model, real_test))
    return accuracies


def poison_labels(synthetic, shift=None, classes=None, mapping=None):
    """Same images, flipped labels: c → (c + shift) mod classes (shift 1 unless given), or c → mapping[c] for a
    {source: target} swap; give a shift or a mapping, not both.

    A mapping must be a permutation of the classes (e.g. {3: 8, 8: 3}); unmapped classes keep their label.
    ``classes``: how many there are (default: the largest label + 1).
    """
    check_split(synthetic, "synthetic")
    if shift is not None and mapping is not None:
        raise ValueError(f"give shift or mapping, not both: got shift={shift!r} and mapping={mapping!r}")
    if classes is None:
        classes = int(synthetic.y.max()) + 1
    check_count("classes", classes)
    check_labels("synthetic.y", synthetic.y, classes)
    table = torch.arange(classes, device=synthetic.y.device)  # (classes,) old label -> new label
    if mapping is None:
        shift = 1 if shift is None else shift
        check_count("shift", shift, low=0)
        table = (table + shift) % classes
    else:
        if not isinstance(mapping, dict):
            raise TypeError(f"mapping must be a dict {{source class: target class}}, got {type(mapping).__name__}")
        for source, target in mapping.items():
            for name, value in (("source", source), ("target", target)):
                check_count(f"mapping {name}", value, low=0)
                if value >= classes:
                    raise ValueError(f"mapping {name}s must be classes in [0, {classes - 1}], got {value} in {mapping}")
            table[source] = target
        if sorted(table.tolist()) != list(range(classes)):
            raise ValueError(f"mapping must permute the classes (each target used once), got {mapping}")
    return Split(synthetic.x, table[synthetic.y])
