"""What a distilled model is judged on: accuracy, size and speed, not accuracy alone."""
import time

import torch


def accuracy(logits, labels):
    """Fraction of rows whose arg-max logit is the label."""
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (batch, classes) and labels (batch,), got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    return (logits.argmax(dim=-1) == labels).float().mean().item()


def parameter_count(model):
    """Number of trainable and frozen parameters."""
    return sum(p.numel() for p in model.parameters())


def size_in_bytes(model):
    """Bytes the parameters and buffers (e.g. batch-norm statistics) occupy in memory."""
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
    """Median seconds for one forward pass over ``inputs`` (a batch), after warm-up runs."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    was_training = model.training
    model.eval()
    for _ in range(warmup):
        model(inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(inputs)
        times.append(time.perf_counter() - start)
    model.train(was_training)
    return sorted(times)[len(times) // 2]
