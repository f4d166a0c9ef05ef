"""Distillation losses as plain functions over logits.

Shapes: ``logits`` are ``(batch, classes)`` floating tensors, ``labels`` are ``(batch,)``
int64 class indices. Every function checks its inputs and raises ``ValueError`` (or
``TypeError`` for a non-tensor or a non-float tensor) saying what it expected and what came:
nothing is broadcast silently.
"""
import math
import numbers

import torch
import torch.nn.functional as F


def _check_logits(name, logits):
    """Logits must be a 2-D floating tensor (batch, classes)."""
    if not torch.is_tensor(logits):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, classes), got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.dim() != 2:
        raise ValueError(f"{name} must have shape (batch, classes), got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(logits.shape)}); expected at least one example")


def _check_pair(student_logits, teacher_logits):
    """Student and teacher logits must agree in shape, device and dtype family."""
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student_logits and teacher_logits must have the same shape (batch, classes), got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    if student_logits.device != teacher_logits.device:
        raise ValueError(
            f"student_logits and teacher_logits must be on one device, got {student_logits.device} "
            f"and {teacher_logits.device}"
        )


def _check_temperature(temperature):
    """T must be a finite number > 0."""
    if torch.is_tensor(temperature):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be a single number, got a tensor of shape {tuple(temperature.shape)}")
        temperature = temperature.item()
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a number > 0, got {type(temperature).__name__}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")


def _check_fraction(name, value):
    """alpha and smoothing are weights in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_labels(labels, logits):
    """Labels: int64 (batch,), one per row of logits, each a valid class index."""
    if not torch.is_tensor(labels):
        raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.dtype != torch.int64:
        raise TypeError(f"labels must be int64 class indices, got dtype {labels.dtype}")
    batch, classes = logits.shape
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},) to match the logits' batch, got {tuple(labels.shape)}")
    if labels.device != logits.device:
        raise ValueError(f"labels must be on the logits' device {logits.device}, got {labels.device}")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(
            f"labels must be class indices in [0, {classes - 1}] for {classes} classes, "
            f"got values from {labels.min().item()} to {labels.max().item()}"
        )


def soft_targets(logits, temperature):
    """Softened class probabilities softmax(z / T) over the last dimension (Hinton et al. 2015).

    p_i = exp(z_i / T) / sum_j exp(z_j / T). T = 1 is the ordinary softmax; a larger T flattens
    the distribution and exposes the small probabilities ("dark knowledge").
    """
    if not torch.is_tensor(logits) or not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point torch.Tensor, got {getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a last dimension of classes, got shape {tuple(logits.shape)}")
    _check_temperature(temperature)
    return F.softmax(logits / temperature, dim=-1)


def kd_loss(student_logits, teacher_logits, temperature):
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network": the soft-target loss.

    kd = T² · KL(softmax(t/T) ‖ softmax(s/T)), summed over classes, averaged over the batch.
    The soft term's gradient w.r.t. the student logits scales as 1/T², so T² keeps its weight
    against the hard-label term unchanged when T changes.
    """
    _check_pair(student_logits, teacher_logits)
    _check_temperature(temperature)
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)  # (batch, classes)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)  # (batch, classes)
    # KL(teacher ‖ student): the teacher's distribution weights the log-ratio.
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)  # (batch,)
    return temperature**2 * kl.mean()


def distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    """Hinton et al. 2015: hard-label cross-entropy mixed with the soft-target loss.

    loss = (1 − α) · CE(s, labels) + α · T² · KL(softmax(t/T) ‖ softmax(s/T)).
    α = 0 is ordinary training on labels; α = 1 learns from the teacher only.
    """
    _check_pair(student_logits, teacher_logits)
    _check_labels(labels, student_logits)
    _check_fraction("alpha", alpha)
    hard = F.cross_entropy(student_logits, labels)
    soft = kd_loss(student_logits, teacher_logits, temperature)
    return (1 - alpha) * hard + alpha * soft


def logit_matching_loss(student_logits, teacher_logits):
    """Ba & Caruana 2014, "Do Deep Nets Really Need to be Deep?": regress the teacher's logits.

    loss = mean over all (batch, classes) entries of (s − t)². Logits keep the magnitudes that
    the softmax squashes; Hinton 2015 shows soft-target KD tends to this as T grows.
    """
    _check_pair(student_logits, teacher_logits)
    return F.mse_loss(student_logits, teacher_logits)


def smoothed_cross_entropy(logits, labels, smoothing):
    """Szegedy et al. 2016 label smoothing: cross-entropy against (1 − ε)·one-hot + ε/K.

    Same value as torch.nn.functional.cross_entropy(logits, labels, label_smoothing=ε).
    Müller, Kornblith & Hinton 2019 show a teacher trained this way is a worse teacher.
    """
    _check_logits("logits", logits)
    _check_labels(labels, logits)
    _check_fraction("smoothing", smoothing)
    classes = logits.shape[-1]
    log_p = F.log_softmax(logits, dim=-1)  # (batch, classes)
    target = torch.full_like(log_p, smoothing / classes)
    target[torch.arange(len(labels)), labels] += 1 - smoothing
    return -(target * log_p).sum(dim=-1).mean()
