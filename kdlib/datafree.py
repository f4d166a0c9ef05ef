"""Data-free distillation: rebuild a transfer set from the teacher alone, then distil on it.

Two ways to get inputs without the training data:

- Lopes, Fenu & Starner, "Data-Free Knowledge Distillation for Deep Neural Networks", NIPS
  LLD workshop 2017. The teacher's owner ships *metadata*, statistics of the teacher's
  activations on its training set, instead of the data (``record_metadata``). The student's
  side samples an activation vector per layer from the recorded per-class statistics and
  optimises noise images with Adam until the teacher's activations match it (``reconstruct``).
- Yin et al., "Dreaming to Distill: Data-free Knowledge Transfer via DeepInversion", CVPR 2020.
  No metadata: the running mean/variance every BatchNorm layer already stores play its role
  (``deep_inversion``).

Either returns a ``Split(x, y)`` of images and their target classes; distil on it with the
ordinary ``kdlib.training.distill(student, teacher, split, ...)`` (no new loop is needed).

- Chen et al., "DAFL: Data-Free Learning of Student Networks", ICCV 2019. No statistics at all:
  a *generator* learns to make images the teacher is sure about, that excite its features and
  that cover all classes (``dafl_generator_loss``), while the student is distilled on them, both
  in the one training loop (``dafl``).

Teachers are ``nn.Sequential`` models from ``kdlib.models``; "activations" are the outputs of
every ReLU (flattened) followed by the logits. Images stay in [0, 1]: after each Adam step the
pixels are clipped back into range. Devices follow ``kdlib.devices``: everything runs where the
teacher is, the metadata and the rebuilt images live there too, and random draws come from a
seeded CPU generator (so a seed gives the same images on every device) before they move there.
"""
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .arguments import (check_choice, check_count, check_labels, check_model, check_number, check_split,
                        check_temperature, check_tensor)
from .data import Split
from .devices import device_of, eval_mode
from .losses import kd_loss
from .models import seeded
from .training import TrainSettings, class_count, fit

KINDS = ("top_layer", "all_layers", "spectral")


# -----------------------------------------------------------------------------
# activations and metadata

def activations(model, x):
    """[outputs of every ReLU, flattened to (batch, units)] + [logits (batch, classes)].

    Walks the ``nn.Sequential`` layer by layer instead of registering hooks, so the list
    has one entry per hidden layer, in order. Runs where the model is, in eval mode (the teacher is
    frozen; its modes are restored) and gradients flow back to ``x`` wherever it is.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"the teacher must be an nn.Sequential (kdlib.models), got {type(model).__name__}")
    check_tensor("x", x, floating=True)
    x, outputs = x.to(device_of(model)), []
    with eval_mode(model):
        for layer in model:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                outputs.append(x.flatten(1))  # (batch, units)
    outputs.append(x)  # (batch, classes)
    return outputs


def _recorded_layers(model, x, kind):
    """The activations a metadata kind describes: the logits only for top_layer, else every layer."""
    outputs = activations(model, x)
    return outputs[-1:] if kind == "top_layer" else outputs


@dataclass
class Metadata:
    """Per-class statistics of a teacher's activations, one entry per recorded layer.

    ``means[l]`` and ``stds[l]`` are (classes, units_l). For ``spectral``, ``eigenvalues[l]`` is
    (classes, components) and ``eigenvectors[l]`` is (classes, units_l, components): the top
    principal directions of each class's activation covariance, so a sampled activation keeps
    the correlations between units that the diagonal (mean, std) summary throws away.
    """

    kind: str
    input_shape: tuple  # (channels, height, width) of one teacher input
    means: list
    stds: list
    eigenvalues: list = field(default_factory=list)
    eigenvectors: list = field(default_factory=list)

    @property
    def classes(self):
        return self.means[0].shape[0]

    @property
    def layer_sizes(self):
        return [m.shape[1] for m in self.means]

    def size_in_bytes(self):
        """Bytes of all the recorded tensors: what the teacher's owner ships beside the model.

        For a 784-256-256-10 MLP teacher on MNIST (float32): top_layer 2·10·10·4 = 800 B;
        all_layers 2·10·(256+256+10)·4 = 41,760 B; spectral with 8 components adds
        10·522·8·4 + 10·3·8·4 bytes of eigenvectors and eigenvalues, 209,760 B in all;
        the 55,000 training images themselves are 55,000·784 = 43 MB as bytes (172 MB float32).
        """
        tensors = self.means + self.stds + self.eigenvalues + self.eigenvectors
        return sum(t.numel() * t.element_size() for t in tensors)


def _check_metadata(metadata):
    if not isinstance(metadata, Metadata):
        raise TypeError(f"metadata must come from record_metadata, got {type(metadata).__name__}")


@torch.no_grad()
def record_metadata(teacher, data, kind="all_layers", components=8, batch_size=1024):
    """Lopes et al. 2017: the statistics of the teacher's activations on its training set.

    data: a Split (x, y) of the teacher's training data; every class needs >= 2 examples.
    top_layer: per-class mean and std of the logits.
    all_layers: per-class mean and std of every ReLU output and of the logits.
    spectral: all_layers plus the top ``components`` eigenvalues/eigenvectors of each class's
    activation covariance per layer. This is a PCA summary, a simpler stand-in for the paper's
    graph-Fourier (spectral graph) summary; it keeps the strongest correlations between units.
    Stds are population stds (the maximum-likelihood Gaussian). The teacher runs where it is, in
    eval mode (its modes are restored), and the metadata is computed and kept there.
    """
    check_model("teacher", teacher)
    check_choice("kind", kind, KINDS)
    check_split(data)
    check_count("components", components)
    check_count("batch_size", batch_size)
    x, y = data
    if x.dim() < 2:
        raise ValueError(f"data.x must be inputs (N, ...) with N first, got shape {tuple(x.shape)}")
    batches = [_recorded_layers(teacher, x[i : i + batch_size], kind) for i in range(0, len(x), batch_size)]
    layers = [torch.cat(layer) for layer in zip(*batches)]  # each (N, units), where the teacher is
    classes = layers[-1].shape[1]
    check_labels("data.y", y, classes)  # the class count is the teacher's: known after its first pass
    y = y.to(layers[-1].device)
    counts = torch.bincount(y, minlength=classes)  # (classes,)
    if counts.min() < 2:
        raise ValueError(f"data.y must hold every one of the teacher's {classes} classes with at least "
                         f"2 examples each, got counts {counts.tolist()}")
    metadata = Metadata(kind, tuple(x.shape[1:]), [], [])
    for layer in layers:
        per_class = [layer[y == c] for c in range(classes)]  # each (N_c, units)
        metadata.means.append(torch.stack([a.mean(0) for a in per_class]))  # (classes, units)
        metadata.stds.append(torch.stack([a.std(0, correction=0) for a in per_class]))  # (classes, units)
        if kind == "spectral":
            k = min(components, layer.shape[1])
            values, vectors = [], []
            for a in per_class:
                centred = a - a.mean(0)
                covariance = centred.T @ centred / len(a)  # (units, units)
                eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending order
                values.append(eigenvalues.flip(0)[:k].clamp(min=0))  # (k,) largest first
                vectors.append(eigenvectors.flip(1)[:, :k])  # (units, k)
            metadata.eigenvalues.append(torch.stack(values))  # (classes, k)
            metadata.eigenvectors.append(torch.stack(vectors))  # (classes, units, k)
    return metadata


# -----------------------------------------------------------------------------
# Lopes et al. 2017: reconstruction from metadata

def sample_targets(metadata, labels, generator=None):
    """One target activation per example and recorded layer, drawn from its class's statistics.

    top_layer / all_layers: a diagonal Gaussian, mean + std · z, z ~ N(0, I) per unit.
    spectral: a low-rank Gaussian, mean + V · (sqrt(λ) · z), z ~ N(0, I_k), which keeps the
    recorded correlations between units (V: top-k eigenvectors, λ: their eigenvalues).
    z is drawn from ``generator`` (a CPU one) and moved to where the metadata is; so are the targets.
    """
    _check_metadata(metadata)
    check_labels("labels", labels, metadata.classes)
    device = metadata.means[0].device
    labels, targets = labels.to(device), []
    for layer, (means, stds) in enumerate(zip(metadata.means, metadata.stds)):
        if metadata.kind == "spectral":
            vectors, values = metadata.eigenvectors[layer][labels], metadata.eigenvalues[layer][labels]
            z = torch.randn(values.shape, generator=generator).to(device)  # (batch, k)
            targets.append(means[labels] + (vectors @ (values.sqrt() * z).unsqueeze(-1)).squeeze(-1))
        else:
            z = torch.randn(means[labels].shape, generator=generator).to(device)  # (batch, units)
            targets.append(means[labels] + stds[labels] * z)
    return targets  # one (batch, units_l) tensor per layer


def matching_loss(layer_activations, targets):
    """Σ over layers of the mean squared error between activations and their targets (same shapes:
    nothing is broadcast); each target is moved to its activations' device."""
    if len(layer_activations) != len(targets):
        raise ValueError(f"expected one target per recorded layer, got {len(layer_activations)} layers "
                         f"and {len(targets)} targets")
    for layer, (a, t) in enumerate(zip(layer_activations, targets)):
        if a.shape != t.shape:
            raise ValueError(f"layer {layer}: activations and targets must have the same shape, got "
                             f"{tuple(a.shape)} and {tuple(t.shape)}")
    return sum(F.mse_loss(a, t.to(a.device)) for a, t in zip(layer_activations, targets))


def reconstruction_step(teacher, inputs, targets, kind, optimizer):
    """One Adam step on the pixels so the teacher's activations move towards the targets.

    The teacher is frozen; ``inputs`` (batch, C, H, W) is the only thing being optimised (and the only
    tensor that receives a gradient). Returns the matching loss before the step.
    """
    check_choice("kind", kind, KINDS)
    check_tensor("inputs", inputs, floating=True)
    if not inputs.requires_grad:
        raise ValueError("inputs must require gradients: they are the pixels the optimizer moves "
                         "(inputs.requires_grad_(True) before building the optimizer)")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer over [inputs], got {type(optimizer).__name__}")
    loss = matching_loss(_recorded_layers(teacher, inputs, kind), targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=[inputs])  # the pixels only: the teacher's parameters get no .grad
    optimizer.step()
    with torch.no_grad():
        inputs.clamp_(0, 1)  # stay a valid image
    return loss.item()


def _balanced_labels(classes, count_per_class):
    return torch.arange(classes).repeat_interleave(count_per_class)  # (classes · count,)


def _check_optimisation(count_per_class, steps, lr, seed, noise_scale):
    check_count("count_per_class", count_per_class)
    check_count("steps", steps)
    check_number("lr", lr)
    check_count("seed", seed, low=0)
    check_number("noise_scale", noise_scale)
    if noise_scale > 1:
        raise ValueError(f"noise_scale must be in (0, 1] (the starting images are uniform in [0, noise_scale)), "
                         f"got {noise_scale!r}")


def reconstruct(teacher, metadata, count_per_class=100, steps=200, lr=0.05, seed=0, noise_scale=1.0,
                progress=True):
    """Lopes et al. 2017: images whose teacher activations reproduce the recorded statistics.

    For each class c, ``count_per_class`` images start as uniform noise in [0, noise_scale); each draws
    one target activation per recorded layer from class c's statistics (``sample_targets``) and
    Adam on the pixels minimises Σ_l ‖a_l(x) − target_l‖² (``reconstruction_step``).
    All images are optimised together; their losses are independent. Returns Split(x, y), where the
    teacher is. An MLP teacher ignores most pixel directions, so the starting noise there survives the
    optimisation: a smaller noise_scale gives darker images. Which start trains better students depends on
    the data: on MNIST, 0.1 gave much better students than 1.0 (benchmarks/datafree.py: 0.71–0.76 vs
    0.52–0.59); on the 8×8 digits of lesson 07, 1.0 did (0.92/0.92/0.90 vs 0.91/0.90/0.89 for top_layer/
    all_layers/spectral, 3 seeds), hence the default.
    """
    check_model("teacher", teacher)
    _check_metadata(metadata)
    _check_optimisation(count_per_class, steps, lr, seed, noise_scale)
    device = device_of(teacher)
    generator = torch.Generator().manual_seed(seed)  # CPU draws: one seed, the same images on every device
    labels = _balanced_labels(metadata.classes, count_per_class)
    inputs = (noise_scale * torch.rand((len(labels), *metadata.input_shape), generator=generator)).to(device)
    targets = [t.to(device) for t in sample_targets(metadata, labels, generator)]  # each (N, units_l)
    labels = labels.to(device)
    with torch.no_grad():
        sizes = [a.shape[1] for a in _recorded_layers(teacher, inputs[:1], metadata.kind)]
    if sizes != metadata.layer_sizes:
        raise ValueError(f"the teacher's recorded layers have sizes {sizes} but the metadata has "
                         f"{metadata.layer_sizes}; pass the teacher the metadata was recorded from")
    inputs.requires_grad_(True)
    optimizer = torch.optim.Adam([inputs], lr=lr)
    bar = tqdm(range(steps), desc=f"reconstruct ({metadata.kind})", disable=not progress, leave=False)
    for _ in bar:
        loss = reconstruction_step(teacher, inputs, targets, metadata.kind, optimizer)
        bar.set_postfix(loss=f"{loss:.4f}")
    return Split(inputs.detach(), labels)


# -----------------------------------------------------------------------------
# Yin et al. 2020: DeepInversion from BatchNorm statistics

def batchnorm_statistics_loss(model, x):
    """Yin et al. 2020 R_feature: Σ_l ‖μ_l(x) − running_mean_l‖₂ + ‖σ²_l(x) − running_var_l‖₂.

    μ_l, σ²_l are the batch mean and (biased) variance of the input to BatchNorm layer l, over
    the batch and any spatial dimensions. Returns (loss, logits) so one forward pass serves both.
    Runs where the model is, in eval mode (BatchNorm normalises with its running statistics and
    never updates them; the model's modes are restored).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"the teacher must be an nn.Sequential (kdlib.models), got {type(model).__name__}")
    check_tensor("x", x, floating=True)
    x = x.to(device_of(model))
    loss, found = x.new_zeros(()), False
    with eval_mode(model):
        for layer in model:
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                dims = [0, *range(2, x.dim())]  # batch and spatial dims: one statistic per channel
                mean, variance = x.mean(dims), x.var(dims, correction=0)  # (channels,)
                loss = loss + torch.linalg.vector_norm(mean - layer.running_mean) \
                    + torch.linalg.vector_norm(variance - layer.running_var)
                found = True
            x = layer(x)
    if not found:
        raise ValueError("DeepInversion needs a teacher with BatchNorm layers (kdlib.models.mlp/cnn(batch_norm=True)), "
                         "found none")
    return loss, x


def total_variation(x):
    """Mean squared difference between neighbouring pixels (the l2 TV image prior)."""
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


def _check_weights(batchnorm_weight, tv_weight, l2_weight):
    for name, weight in (("batchnorm_weight", batchnorm_weight), ("tv_weight", tv_weight), ("l2_weight", l2_weight)):
        check_number(name, weight, inclusive=True)


def deep_inversion_loss(teacher, inputs, labels, batchnorm_weight=0.1, tv_weight=1.0, l2_weight=0.1):
    """Yin et al. 2020 (DeepInversion), without jitter/flips or the adaptive competition term:

    loss = CE(teacher(x), y) + batchnorm_weight · R_feature + tv_weight · R_TV + l2_weight · mean(x²)

    The coefficients are ours, chosen by a short trial on MNIST with a 2-layer BN MLP (the
    paper tunes its own for ImageNet/CIFAR-10 ResNets). The l2 prior pulls the background dark.
    Computed where the teacher is (inputs and labels are moved there).
    """
    check_tensor("inputs", inputs, floating=True)
    _check_weights(batchnorm_weight, tv_weight, l2_weight)
    device = device_of(teacher)
    inputs = inputs.to(device)
    bn_loss, logits = batchnorm_statistics_loss(teacher, inputs)  # (), (batch, classes)
    check_labels("labels", labels, logits.shape[1], batch=len(inputs))
    return (F.cross_entropy(logits, labels.to(device)) + batchnorm_weight * bn_loss
            + tv_weight * total_variation(inputs) + l2_weight * inputs.pow(2).mean())


def _check_input_shape(input_shape):
    if not isinstance(input_shape, (tuple, list, torch.Size)) or len(input_shape) == 0:
        raise TypeError(f"input_shape must be the shape of one input, e.g. (1, 8, 8), got {input_shape!r}")
    for i, size in enumerate(input_shape):
        check_count(f"input_shape[{i}]", size)


def deep_inversion(teacher, input_shape, classes, count_per_class=100, steps=200, lr=0.05, seed=0,
                   batch_size=256, batchnorm_weight=0.1, tv_weight=1.0, l2_weight=0.1, noise_scale=1.0,
                   progress=True):
    """Yin et al. 2020: synthesise images from a BatchNorm teacher with ``deep_inversion_loss``.

    Images start as uniform noise in [0, noise_scale); classes are shuffled so every batch of
    ``batch_size`` mixes them (the BatchNorm statistics describe the whole training mix), and
    each batch is optimised for ``steps`` Adam steps on the pixels. Returns Split(x, y), where the
    teacher is.
    """
    check_model("teacher", teacher)
    _check_input_shape(input_shape)
    check_count("classes", classes)
    _check_optimisation(count_per_class, steps, lr, seed, noise_scale)
    check_count("batch_size", batch_size)
    _check_weights(batchnorm_weight, tv_weight, l2_weight)
    device = device_of(teacher)
    generator = torch.Generator().manual_seed(seed)  # CPU draws: one seed, the same images on every device
    labels = _balanced_labels(classes, count_per_class)
    labels = labels[torch.randperm(len(labels), generator=generator)].to(device)  # (N,) classes mixed
    images = (noise_scale * torch.rand((len(labels), *input_shape), generator=generator)).to(device)  # (N, C, H, W)
    scored = class_count(teacher, images)  # images are where the teacher is: nothing is copied back
    if scored != classes:
        raise ValueError(f"the teacher has {scored} classes but classes={classes}")
    for start in tqdm(range(0, len(labels), batch_size), desc="DeepInversion", disable=not progress, leave=False):
        inputs = images[start : start + batch_size].clone().requires_grad_(True)
        optimizer = torch.optim.Adam([inputs], lr=lr)
        for _ in range(steps):
            loss = deep_inversion_loss(teacher, inputs, labels[start : start + batch_size],
                                       batchnorm_weight, tv_weight, l2_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=[inputs])  # the pixels only: the teacher's parameters get no .grad
            optimizer.step()
            with torch.no_grad():
                inputs.clamp_(0, 1)
        images[start : start + batch_size] = inputs.detach()
    return Split(images, labels)


# -----------------------------------------------------------------------------
# DAFL: a generator instead of a transfer set

def dafl_generator_loss(logits, features, activation_weight=0.1, entropy_weight=5.0):
    """Chen et al., ICCV 2019 (DAFL), eq. 6: the generator's loss, from the teacher's outputs on its images.

    L_G = L_oh + activation_weight · L_a + entropy_weight · L_ie, over a batch of B generated images:
      L_oh = (1/B) Σ_i CE(z_i, argmax_c z_ic)    the teacher should be sure of each image's class;
      L_a  = −mean |f_ij|                         real images excite the teacher's features strongly;
      L_ie = Σ_c p̄_c log p̄_c,  p̄ = (1/B) Σ_i softmax(z_i)   minus the entropy of the batch's mean
                                                  prediction: the batch should cover the classes evenly.
    logits (B, classes) and features (B, width) are the teacher's on the images (its last hidden layer).
    Weights: the DAFL code's for MNIST (one-hot 1, activation 0.1, information entropy 5); the code takes the
    entropy in log base 10, natural logarithms here (a factor 1/ln 10 on that weight).
    """
    check_tensor("logits", logits, dims=2, floating=True)
    check_tensor("features", features, dims=2, floating=True)
    if len(features) != len(logits) or len(logits) < 2:
        raise ValueError(f"logits and features must describe the same batch of at least 2 images, got "
                         f"{tuple(logits.shape)} and {tuple(features.shape)}")
    for name, weight in (("activation_weight", activation_weight), ("entropy_weight", entropy_weight)):
        check_number(name, weight, inclusive=True)
    one_hot = F.cross_entropy(logits, logits.argmax(dim=1))  # the argmax is a constant: no gradient through it
    activation = -features.abs().mean()
    mean_prediction = F.softmax(logits, dim=1).mean(dim=0)  # (classes,)
    information_entropy = (mean_prediction * torch.log(mean_prediction)).sum()
    return one_hot + activation_weight * activation + entropy_weight * information_entropy


def dafl_generator(latent, input_shape, width=256, seed=0):
    """A small MLP generator: latent codes (batch, latent) → images (batch, *input_shape) in (0, 1).

    Linear → BatchNorm → ReLU → Linear → sigmoid, as DAFL's generators (BatchNorm after the first layer); the
    initial weights depend only on ``seed``.
    """
    check_count("latent", latent)
    check_count("width", width)
    _check_input_shape(input_shape)
    return seeded(seed, lambda: nn.Sequential(
        nn.Linear(latent, width), nn.BatchNorm1d(width), nn.ReLU(),
        nn.Linear(width, math.prod(input_shape)), nn.Sigmoid(), nn.Unflatten(1, tuple(input_shape))))


@contextmanager
def _no_parameter_grads(model):
    """Gradients flow *through* the model to its inputs but leave its parameters' .grad alone."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def dafl(student, teacher, generator, *, codes=4096, temperature=1.0, activation_weight=0.1, entropy_weight=5.0,
         settings=None, **overrides):
    """DAFL (Chen et al., ICCV 2019): train ``generator`` and distil ``teacher`` into ``student`` on its images.

    Each batch of latent codes (standard normal, ``codes`` of them drawn once from ``seed``; an epoch is a pass
    over them) becomes images x = G(z); the generator takes a step on dafl_generator_loss of the frozen
    teacher's outputs on x, and the student a step on kd_loss(student(x), teacher(x), T) with x and the
    teacher's logits held fixed — the DAFL code's alternation, in one loss summed for the one loop
    (``training.fit``; one Adam learning rate for both, where DAFL's code has two). The teacher's parameters
    get no gradient; its features are its last hidden layer. Returns the History; student and generator end
    in eval mode where they were.
    """
    for name, model in (("student", student), ("teacher", teacher), ("generator", generator)):
        check_model(name, model)
    check_count("codes", codes, low=2)
    check_temperature(temperature)
    settings = TrainSettings.of(settings, **overrides)
    first = next((m for m in generator.modules() if isinstance(m, nn.Linear)), None)
    if first is None:
        raise TypeError("generator must start with an nn.Linear on its latent codes (e.g. datafree.dafl_generator)")
    latent = first.in_features
    z = torch.randn((codes, latent), generator=torch.Generator().manual_seed(settings.seed))  # CPU draws, any device
    pair = nn.ModuleDict({"student": student, "generator": generator})  # one optimizer over both

    def batch_loss(pair, z):  # z: (batch, latent)
        images = pair["generator"](z)  # (batch, *input_shape)
        *hidden, logits = activations(teacher, images)  # teacher in eval mode; gradients reach the images
        generator_loss = dafl_generator_loss(logits, hidden[-1], activation_weight, entropy_weight)
        student_logits = pair["student"](images.detach().to(device_of(pair["student"])))
        return generator_loss + kd_loss(student_logits, logits.detach().to(student_logits.device), temperature)

    with _no_parameter_grads(teacher):
        return fit(pair, (z,), batch_loss, settings, desc="DAFL")
