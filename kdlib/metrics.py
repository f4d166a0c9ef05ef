"""What a distilled model is judged on: accuracy, size, memory and speed, not accuracy alone."""
import time

import torch

from .arguments import check_count, check_model, check_tensor
from .devices import device_of, eval_mode, synchronize


def accuracy(logits, labels):
    """Fraction of rows whose arg-max logit is the label."""
    check_tensor("logits", logits, dims=2, floating=True)
    check_tensor("labels", labels)
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (batch, classes) and labels (batch,), got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    return (logits.argmax(dim=-1) == labels.to(logits.device)).float().mean().item()


def parameter_count(model):
    """Number of trainable and frozen parameters."""
    check_model("model", model)
    return sum(p.numel() for p in model.parameters())


def size_in_bytes(model):
    """Bytes the parameters and buffers (e.g. batch-norm statistics) occupy in memory."""
    check_model("model", model)
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def entropy(probabilities):
    """Entropy in nats of each distribution along the last dimension, H(p) = −Σ p log p (0 · log 0 = 0)."""
    return -torch.special.xlogy(probabilities, probabilities).sum(dim=-1)


def class_similarity(probabilities, labels, classes):
    """(classes, classes) matrix whose row c is the mean predicted distribution over examples of class c."""
    if probabilities.dim() != 2 or probabilities.shape[1] != classes or labels.shape != probabilities.shape[:1]:
        raise ValueError(
            f"expected probabilities (N, {classes}) and labels (N,), got {tuple(probabilities.shape)} "
            f"and {tuple(labels.shape)}"
        )
    return torch.stack([probabilities[labels == c].mean(dim=0) for c in range(classes)])


def mean_and_std(values):
    """'mean ± std' of a list of numbers (sample std), for reporting effects over seeds."""
    values = torch.tensor(values, dtype=torch.float64)
    std = values.std().item() if len(values) > 1 else 0.0
    return f"{values.mean().item():.3f} ± {std:.3f}"


@torch.no_grad()
def inference_latency(model, inputs, repeats=30, warmup=5):
    """Median seconds for one forward pass over ``inputs`` (a batch), after warm-up runs.

    Runs where the model is (the inputs are moved there first, outside the timing), in eval mode, and
    waits for CUDA/MPS kernels to finish inside each timing; the model's mode is restored.
    """
    check_model("model", model)
    check_tensor("inputs", inputs)
    check_count("repeats", repeats)
    check_count("warmup", warmup, low=0)
    device = device_of(model)
    inputs = inputs.to(device)
    times = []
    with eval_mode(model):
        for _ in range(warmup):
            model(inputs)
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            model(inputs)
            synchronize(device)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def class_spread_ratio(features, labels):
    """How tight and separated the classes' clusters are: within / between, a 0-dimensional tensor.

    within  = mean over all N examples of ‖f_n − μ_{y_n}‖ (Euclidean distance to its own class centroid μ_c,
              the mean of that class's rows);
    between = mean of ‖μ_a − μ_b‖ over all pairs of distinct classes present in ``labels`` (torch.pdist).
    Smaller is tighter (Müller, Kornblith & Hinton 2019 on label smoothing); scaling the features changes nothing.
    ``features`` (N, D) floating, ``labels`` (N,) int64, any class indices, at least two classes present.
    """
    check_tensor("features", features, dims=2, floating=True)
    check_tensor("labels", labels, dims=1)
    if labels.shape[0] != features.shape[0]:
        raise ValueError(f"expected one label per row of features ({features.shape[0]}), got {labels.shape[0]}")
    classes = labels.unique()  # sorted
    if len(classes) < 2:
        raise ValueError(f"class_spread_ratio needs at least 2 classes in labels, got {classes.tolist()}")
    labels = labels.to(features.device)
    classes = classes.to(features.device)
    centroids = torch.stack([features[labels == c].mean(dim=0) for c in classes])  # (C, D)
    own = centroids[torch.searchsorted(classes, labels)]  # (N, D): each example's own centroid
    within = (features - own).norm(dim=1).mean()
    between = torch.pdist(centroids).mean()
    return within / between


@torch.no_grad()
def activation_bytes(model, inputs):
    """Bytes of the activations one forward pass over ``inputs`` (a batch) makes: ``(stored, peak)``.

    stored: the inputs plus the outputs of every leaf module (a module without submodules), views and
            in-place results counted once — about what a training step keeps for its backward pass;
    peak:   the largest input + output of one leaf module — what inference must hold at once when the
            layers run one after another (an ``nn.Sequential`` with no skip connections) and each output
            frees its input.
    Measured with forward hooks (removed afterwards), where the model is, in eval mode (the model's mode is
    restored). Parameters are not counted: ``size_in_bytes`` gives those.
    """
    check_model("model", model)
    check_tensor("inputs", inputs, floating=True)
    if inputs.dim() < 2 or len(inputs) == 0:
        raise ValueError(f"inputs must be a non-empty batch (batch, ...), got shape {tuple(inputs.shape)}")
    inputs = inputs.to(device_of(model))
    sizes = []  # (input bytes, output bytes) of each leaf module, in call order

    def tensor_bytes(values):  # a tensor, or a tuple of tensors and other values
        values = values if isinstance(values, (tuple, list)) else (values,)
        return sum(v.numel() * v.element_size() for v in values if torch.is_tensor(v))

    def record(module, args, output):
        # a view (Flatten) or an in-place result (ReLU(inplace=True)) shares its input's memory: no new bytes
        shared = torch.is_tensor(output) and any(
            torch.is_tensor(a) and a.untyped_storage().data_ptr() == output.untyped_storage().data_ptr() for a in args)
        sizes.append((tensor_bytes(args), 0 if shared else tensor_bytes(output)))

    leaves = [module for module in model.modules() if not list(module.children())]
    hooks = [module.register_forward_hook(record) for module in leaves]
    try:
        with eval_mode(model):
            model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    input_bytes = inputs.numel() * inputs.element_size()
    return input_bytes + sum(out for _, out in sizes), max((inp + out for inp, out in sizes), default=input_bytes)
