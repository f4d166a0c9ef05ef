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
import torch
import torch.nn.functional as F

from .arguments import (check_choice, check_count, check_labels, check_logits, check_model, check_number,
                        check_same_device, check_split, check_tensor)
from .losses import kd_loss, logit_matching_loss
from .training import TrainSettings, distill, frozen_outputs

KINDS = ("logits", "probabilities", "top_k", "top_1")
SOFT_LOSSES = ("kl", "mse")


def _check_kind(kind, k, classes):
    check_choice("kind", kind, KINDS)
    if kind == "top_k":
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= classes:
            raise ValueError(f'kind="top_k" needs an integer k in [1, {classes}] (the number of classes), got {k!r}')
    elif k is not None:
        raise ValueError(f'k is only used with kind="top_k", got k={k!r} with kind={kind!r}')


def _check_probabilities(name, probabilities):
    """Finite values in [0, 1] (what an API returns), read once per call."""
    check_logits(name, probabilities)
    if probabilities.device.type != "meta" and ((probabilities < 0) | (probabilities > 1)).any():
        raise ValueError(f"{name} must be probabilities in [0, 1], got values from {probabilities.min().item()} "
                         f"to {probabilities.max().item()}")


def reduce_teacher_output(teacher_logits, kind, k=None, decimals=None):
    """What a student would receive from a teacher API returning ``kind`` (see the module docstring).

    ``decimals`` rounds the returned numbers (logits or probabilities) to that many decimal
    places, as an API printing them would; rounded probabilities below 5·10^−(decimals+1)
    become exactly 0. Everything is computed where ``teacher_logits`` are.
    """
    check_logits("teacher_logits", teacher_logits)
    _check_kind(kind, k, teacher_logits.shape[1])
    if decimals is not None:
        check_count("decimals", decimals, low=0)

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


def _fill_zeros(probabilities, floor):
    """Every 0 in a (batch, classes) row of probabilities raised to min(floor, the row's smallest positive one).

    A 0 (rounded away, not returned, or float32 underflow) only says "smaller than what was returned",
    and log 0 = −inf would make the KL undefined; capping the floor at the row's smallest returned
    probability keeps a missing class from ranking above a returned one. Positive entries are kept
    exactly, so exact probabilities stay exact.
    """
    smallest = probabilities.masked_fill(probabilities == 0, float("inf")).amin(dim=1, keepdim=True)  # (batch, 1)
    return torch.where(probabilities > 0, probabilities, smallest.clamp(max=floor))  # (batch, classes)


def targets_from_reduced(reduced, kind, classes, floor=1e-6):
    """Turn a reduced teacher output back into a (batch, classes) training target for the student.

    - "logits": the logits as is; use them with kd_loss at any T (or logit matching).
    - "probabilities": log p as logits. The softmax is invertible up to an additive constant,
      log softmax(z) = z − logsumexp(z), and a constant shift does not change softmax(z/T), so
      with exact probabilities the soft targets at every T are recovered. What is lost is
      whatever the numbers no longer hold: float32 underflow (p < 1e−45) and, with rounded
      probabilities as from an API, every p below the rounding step becomes 0. Only those zeros
      are raised, to ``floor`` (at most the row's smallest positive p: ``_fill_zeros``), before
      the log, so the ranking among the small "dark knowledge" probabilities that rounded to 0,
      which T > 1 would amplify, is gone.
    - "top_k": the k returned probabilities, every other class given ``floor`` (again at most
      the row's smallest returned p), renormalised to sum to 1 and returned as log-probabilities.
    - "top_1": one-hot labels, (batch, classes) float; train on them with cross-entropy.
    The target is made where ``reduced`` is.
    """
    check_choice("kind", kind, KINDS)
    check_count("classes", classes)
    check_number("floor", floor)
    if floor >= 1:
        raise ValueError(f"floor must be a number in (0, 1), got {floor!r}")
    if kind == "top_1":
        check_labels("reduced", reduced, classes)  # (batch,) int64 arg-max labels
        return F.one_hot(reduced, classes).float()  # (batch, classes)
    if kind == "top_k":
        if not isinstance(reduced, tuple) or len(reduced) != 2:
            raise TypeError(f'kind="top_k" expects a tuple (probabilities, indices), got {type(reduced).__name__}')
        values, indices = reduced  # (batch, k) each
        _check_probabilities("top-k probabilities", values)
        check_tensor("top-k indices", indices, dims=2)
        if values.shape != indices.shape or values.shape[1] > classes:
            raise ValueError(f"top-k probabilities and indices must both be (batch, k) with k <= {classes} classes, "
                             f"got {tuple(values.shape)} and {tuple(indices.shape)}")
        check_labels("top-k indices", indices.flatten(), classes)
        check_same_device("top-k probabilities", values, "top-k indices", indices)
        known = torch.zeros(len(values), classes, dtype=values.dtype, device=values.device)  # (batch, classes)
        distribution = _fill_zeros(known.scatter(1, indices, values), floor)  # the k known, the rest floored
        return (distribution / distribution.sum(dim=1, keepdim=True)).log()  # renormalised over all classes
    if kind == "probabilities":
        _check_probabilities("reduced", reduced)
    else:
        check_logits("reduced", reduced)
    if reduced.shape[1] != classes:
        raise ValueError(f"reduced output has {reduced.shape[1]} classes, expected {classes}")
    if kind == "logits":
        return reduced.clone()
    return _fill_zeros(reduced, floor).log()  # (batch, classes); see the docstring for what the floor hides


def distill_from_reduced(student, teacher, data, *, kind, k=None, temperature=4.0, alpha=0.9, decimals=None,
                         floor=1e-6, soft_loss="kl", settings=None, **overrides):
    """Distil ``student`` from a teacher seen only through ``kind`` (an API returning less than logits).

    loss = (1 − α)·CE(true labels, where known) + α·soft, with soft = kd_loss(s, target, T)
    for "logits", "probabilities" and "top_k" (targets from targets_from_reduced), and soft =
    CE(s, teacher's top-1 label) for "top_1" (no temperature: a one-hot has nothing to soften).
    ``soft_loss="mse"`` (only with kind="logits") replaces kd_loss by Ba & Caruana's (2014) logit
    matching, soft = logit_matching_loss(s, teacher logits) = mean (s − t)²; ``temperature`` is then unused.
    This is ``kdlib.training.distill`` with that soft term: UNLABELLED rows get only the soft term, the
    teacher's logits are computed once, and each batch's are reduced as the API would.
    ``settings``/keywords: see TrainSettings (epochs=30, lr=1e-3, batch_size=64, ...).
    """
    check_model("student", student)
    check_model("teacher", teacher)
    check_split(data)
    check_choice("soft_loss", soft_loss, SOFT_LOSSES)
    if soft_loss == "mse" and kind != "logits":
        raise ValueError(f'soft_loss="mse" regresses the teacher\'s logits, so it needs kind="logits", '
                         f'got kind={kind!r}')
    settings = TrainSettings.of(settings, **overrides)

    def api_target(t):  # the teacher's logits (batch, classes) → the training target the API's answer gives
        return targets_from_reduced(reduce_teacher_output(t, kind, k=k, decimals=decimals), kind, t.shape[1], floor)

    api_target(frozen_outputs(teacher, data.x[:1]))  # kind, k, decimals and floor checked before training starts

    def soft(s, t, y, temperature):  # s, t: (batch, classes) student and teacher logits
        target = api_target(t)  # (batch, classes); row by row, so the same as reducing all rows at once
        if kind == "top_1":
            return F.cross_entropy(s, target.argmax(dim=1))
        if soft_loss == "mse":
            return logit_matching_loss(s, target)
        return kd_loss(s, target, temperature)

    return distill(student, teacher, data, temperature=temperature, alpha=alpha, soft_loss=soft, settings=settings)
