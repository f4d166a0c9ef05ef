"""Distilling a closed API: what is left of the teacher's knowledge when it returns less than logits.

A hosted model may return its logits, its probabilities (often rounded), only its top-k
classes with their probabilities, or only its top-1 label. ``reduce_teacher_output`` turns
the teacher's logits into what the student side would receive; ``targets_from_reduced``
turns that back into a training target; ``distill_from_reduced`` trains on it (with the
soft-target KL of Hinton et al. 2015, or, from logits, Ba & Caruana's 2014 logit MSE).

Kinds, from most to least information:
  "logits"        (batch, classes) logits, as is.
  "probabilities" (batch, classes) softmax(logits) at T = 1.
  "top_k"         ((batch, k) probabilities, (batch, k) class indices), most probable first.
  "top_1"         (batch,) int64 arg-max labels.
"""
import numbers

import torch
import torch.nn.functional as F

from .data import UNLABELLED
from .losses import _check_fraction, _check_logits, _check_temperature, kd_loss, logit_matching_loss
from .training import _check_split, _fit, default_device, predict_logits

KINDS = ("logits", "probabilities", "top_k", "top_1")
SOFT_LOSSES = ("kl", "mse")


def _check_kind(kind, k, classes):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "top_k":
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= classes:
            raise ValueError(f'kind="top_k" needs an integer k in [1, {classes}] (the number of classes), got {k!r}')
    elif k is not None:
        raise ValueError(f'k is only used with kind="top_k", got k={k!r} with kind={kind!r}')


def reduce_teacher_output(teacher_logits, kind, k=None, decimals=None):
    """What a student would receive from a teacher API returning ``kind`` (see the module docstring).

    ``decimals`` rounds the returned numbers (logits or probabilities) to that many decimal
    places, as an API printing them would; rounded probabilities below 5·10^−(decimals+1)
    become exactly 0.
    """
    _check_logits("teacher_logits", teacher_logits)
    classes = teacher_logits.shape[1]
    _check_kind(kind, k, classes)
    if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0):
        raise ValueError(f"decimals must be None or an integer >= 0, got {decimals!r}")

    def rounded(values):
        return values if decimals is None else torch.round(values, decimals=decimals)

    if kind == "logits":
        return rounded(teacher_logits.detach().clone())
    if kind == "top_1":
        return teacher_logits.argmax(dim=1)  # (batch,)
    probabilities = F.softmax(teacher_logits.detach(), dim=1)  # (batch, classes)
    if kind == "probabilities":
        return rounded(probabilities)
    values, indices = probabilities.topk(k, dim=1)  # (batch, k) each, largest first
    return rounded(values), indices


def targets_from_reduced(reduced, kind, classes, floor=1e-6):
    """Turn a reduced teacher output back into a (batch, classes) training target for the student.

    - "logits": the logits as is; use them with kd_loss at any T (or logit matching).
    - "probabilities": log p as logits. The softmax is invertible up to an additive constant,
      log softmax(z) = z − logsumexp(z), and a constant shift does not change softmax(z/T), so
      with exact probabilities the soft targets at every T are recovered. What is lost is
      whatever the numbers no longer hold: float32 underflow (p < 1e−45) and, with rounded
      probabilities as from an API, every p below the rounding step becomes 0. Those zeros are
      raised to ``floor`` before the log (log 0 = −inf would make the KL undefined), so the
      ranking among the small "dark knowledge" probabilities, which T > 1 would amplify, is gone.
    - "top_k": the k returned probabilities, every other class given ``floor``, renormalised to
      sum to 1 and returned as log-probabilities (logits).
    - "top_1": one-hot labels, (batch, classes) float; train on them with cross-entropy.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be an integer >= 1, got {classes!r}")
    if not isinstance(floor, numbers.Real) or not 0 < floor < 1:
        raise ValueError(f"floor must be a number in (0, 1), got {floor!r}")
    if kind == "top_1":
        if not torch.is_tensor(reduced) or reduced.dtype != torch.int64 or reduced.dim() != 1:
            raise ValueError(f'kind="top_1" expects (batch,) int64 labels, got {getattr(reduced, "shape", reduced)}')
        return F.one_hot(reduced, classes).float()  # (batch, classes)
    if kind == "top_k":
        if not isinstance(reduced, tuple) or len(reduced) != 2:
            raise ValueError(f'kind="top_k" expects a tuple (probabilities, indices), got {type(reduced).__name__}')
        values, indices = reduced  # (batch, k) each
        if values.shape != indices.shape or values.dim() != 2:
            raise ValueError(f"top-k probabilities and indices must both be (batch, k), got "
                             f"{tuple(values.shape)} and {tuple(indices.shape)}")
        distribution = torch.zeros(len(values), classes, dtype=values.dtype)  # (batch, classes)
        distribution.scatter_(1, indices, values)  # the k known probabilities, zeros elsewhere
        distribution = distribution.clamp_min(floor)  # log 0 = -inf would make the KL undefined
        return (distribution / distribution.sum(dim=1, keepdim=True)).log()  # renormalised over all classes
    _check_logits("reduced", reduced)
    if reduced.shape[1] != classes:
        raise ValueError(f"reduced output has {reduced.shape[1]} classes, expected {classes}")
    if kind == "logits":
        return reduced.clone()
    return reduced.clamp_min(floor).log()  # (batch, classes); see the docstring for what the floor hides


def distill_from_reduced(student, teacher, data, *, kind, k=None, temperature=4.0, alpha=0.9, decimals=None,
                         floor=1e-6, soft_loss="kl", epochs=30, lr=1e-3, batch_size=64, seed=0, weight_decay=0.0,
                         val=None, device=None, progress=True):
    """Distil ``student`` from a teacher seen only through ``kind`` (an API returning less than logits).

    loss = (1 − α)·CE(true labels, where known) + α·soft, with soft = kd_loss(s, target, T)
    for "logits", "probabilities" and "top_k" (targets from targets_from_reduced), and soft =
    CE(s, teacher's top-1 label) for "top_1" (no temperature: a one-hot has nothing to soften).
    ``soft_loss="mse"`` (only with kind="logits") replaces kd_loss by Ba & Caruana's (2014) logit
    matching, soft = logit_matching_loss(s, teacher logits) = mean (s − t)²; ``temperature`` is then unused.
    Rows labelled UNLABELLED get only the soft term, as in kdlib.training.distill.
    """
    _check_split(data)
    _check_temperature(temperature)
    _check_fraction("alpha", alpha)
    if soft_loss not in SOFT_LOSSES:
        raise ValueError(f"soft_loss must be one of {SOFT_LOSSES}, got {soft_loss!r}")
    if soft_loss == "mse" and kind != "logits":
        raise ValueError(f'soft_loss="mse" regresses the teacher\'s logits, so it needs kind="logits", got kind={kind!r}')
    device = device or default_device()
    teacher_logits = predict_logits(teacher, data.x, device=device)  # (N, classes)
    classes = teacher_logits.shape[1]
    reduced = reduce_teacher_output(teacher_logits, kind, k=k, decimals=decimals)
    targets = targets_from_reduced(reduced, kind, classes, floor=floor)  # (N, classes)

    def batch_loss(model, x, y, target):
        s = model(x)  # (batch, classes)
        labelled = y != UNLABELLED
        hard = F.cross_entropy(s[labelled], y[labelled]) if labelled.any() else s.new_zeros(())
        if kind == "top_1":
            soft = F.cross_entropy(s, target.argmax(dim=1))
        elif soft_loss == "mse":
            soft = logit_matching_loss(s, target)
        else:
            soft = kd_loss(s, target, temperature)
        return (1 - alpha) * hard + alpha * soft

    return _fit(student, (data.x, data.y, targets), batch_loss, epochs=epochs, lr=lr, batch_size=batch_size,
                seed=seed, weight_decay=weight_decay, val=val, device=device, progress=progress,
                desc=f"distill from {kind}" + (" (logit MSE)" if soft_loss == "mse" else ""))
