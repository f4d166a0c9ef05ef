"""Many teachers, one student: distil from an ensemble, and born-again networks.

An ensemble's averaged soft targets are a better teacher than any one member (Hinton et al.
2015 already distil an ensemble). Born-again networks (Furlanello et al., ICML 2018) go the
other way: a student of the *same* architecture as its teacher, distilled generation after
generation, can end up more accurate than the teacher it learnt from.
"""
import math
import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .arguments import (check_count, check_fraction, check_labels, check_logits, check_model, check_same_device,
                        check_split, check_temperature)
from .assistants import check_models
from .data import UNLABELLED, Split
from .losses import hard_loss, soft_targets
from .training import TrainSettings, class_count, distill, evaluate, fit, predict_logits, train


def _check_weights(weights, count):
    """Weights: one non-negative number per teacher, not all zero; returned normalised to sum to 1."""
    if isinstance(weights, torch.Tensor):
        weights = weights.tolist()
    if not isinstance(weights, (list, tuple)) or not all(
            isinstance(w, numbers.Real) and not isinstance(w, bool) for w in weights):
        raise TypeError(f"weights must be a list of numbers, one per teacher, got {type(weights).__name__}")
    if len(weights) != count:
        raise ValueError(f"weights must have one entry per teacher ({count}), got {len(weights)}")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"weights must be finite and non-negative, got {list(weights)}")
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"weights must not all be zero, got {list(weights)}")
    return [w / total for w in weights]


def ensemble_soft_targets(teacher_logits_list, temperature, weights=None):
    """Averaged softened probabilities of several teachers: p = Σ_k w_k · softmax(t_k / T).

    ``teacher_logits_list`` holds one (batch, classes) tensor per teacher; ``weights`` (one
    non-negative number per teacher, e.g. their validation accuracies) are divided by their sum,
    so w_k = weights[k] / Σ weights; they default to 1/K each. Probabilities are averaged, not
    logits: the result is a mixture of the teachers' distributions, as in Hinton et al. 2015's
    ensemble teacher. Returns (batch, classes).
    """
    if not isinstance(teacher_logits_list, (list, tuple)):
        raise TypeError(f"teacher_logits_list must be a list of (batch, classes) tensors, one per teacher, "
                        f"got {type(teacher_logits_list).__name__}")
    if len(teacher_logits_list) == 0:
        raise ValueError("teacher_logits_list must hold at least one teacher's logits, got an empty list")
    for k, logits in enumerate(teacher_logits_list):
        check_logits(f"teacher_logits_list[{k}]", logits)
        if logits.shape != teacher_logits_list[0].shape:
            raise ValueError("every teacher's logits must have the same shape (batch, classes), got "
                             f"{tuple(teacher_logits_list[0].shape)} for teacher 0 and "
                             f"{tuple(logits.shape)} for teacher {k}")
        check_same_device("teacher_logits_list[0]", teacher_logits_list[0], f"teacher_logits_list[{k}]", logits)
    check_temperature(temperature)
    count = len(teacher_logits_list)
    weights = [1 / count] * count if weights is None else _check_weights(weights, count)
    # (teachers, batch, classes)
    probabilities = torch.stack([soft_targets(t, temperature) for t in teacher_logits_list])
    weights = torch.tensor(weights, dtype=probabilities.dtype, device=probabilities.device)  # (teachers,)
    return (weights[:, None, None] * probabilities).sum(dim=0)  # (batch, classes)


def _check_distribution(name, p):
    """Rows of probabilities: entries >= 0 summing to 1 (xlogy of a negative entry would be NaN)."""
    if p.device.type == "meta":
        return
    sums = p.sum(dim=-1)  # (batch,)
    if (p < 0).any() or ((sums - 1).abs() > 1e-3).any():
        raise ValueError(f"{name} must be probabilities (entries >= 0, rows summing to 1), got entries from "
                         f"{p.min().item():.4g} to {p.max().item():.4g} and row sums from "
                         f"{sums.min().item():.4g} to {sums.max().item():.4g}")


def ensemble_kd_loss(student_logits, ensemble_probabilities, temperature):
    """Soft-target loss against an ensemble: T² · KL(p_ensemble ‖ softmax(s / T)), batch mean.

    Same as kd_loss (Hinton et al. 2015) but the target is already a distribution (from
    ``ensemble_soft_targets`` at the same T), since a mixture of softmaxes is not one softmax.
    """
    check_logits("student_logits", student_logits)
    check_logits("ensemble_probabilities", ensemble_probabilities)
    if student_logits.shape != ensemble_probabilities.shape:
        raise ValueError(f"student_logits and ensemble_probabilities must have the same shape (batch, classes), "
                         f"got {tuple(student_logits.shape)} and {tuple(ensemble_probabilities.shape)}")
    check_same_device("student_logits", student_logits, "ensemble_probabilities", ensemble_probabilities)
    _check_distribution("ensemble_probabilities", ensemble_probabilities)
    check_temperature(temperature)
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)  # (batch, classes)
    p = ensemble_probabilities
    # xlogy: a class the ensemble gives probability 0 contributes 0, not 0 · log 0 = NaN.
    kl = (torch.special.xlogy(p, p) - p * log_p_student).sum(dim=-1)  # (batch,)
    return temperature**2 * kl.mean()


def distill_from_ensemble(student, teachers, data, *, temperature=4.0, alpha=0.9, weights=None, settings=None,
                          **overrides):
    """Train ``student`` on (1 − α)·CE(labels) + α·T²·KL(p_ensemble ‖ softmax(s/T)) (Hinton et al. 2015).

    p_ensemble = Σ_k w_k softmax(t_k / T) over the frozen ``teachers`` (``weights`` as in
    ``ensemble_soft_targets``: normalised to sum to 1), computed once, each teacher where it is, and
    reused every epoch. Rows labelled ``UNLABELLED`` (-1) are a transfer set: soft term only.
    ``settings``/keywords: see kdlib.training.TrainSettings. Returns the History of ``kdlib.training.fit``.
    """
    check_model("student", student)
    check_split(data)
    classes, student_classes = check_models(teachers, data.x, name="teachers"), class_count(student, data.x)
    if student_classes != classes:
        raise ValueError(f"student and teachers must score the same classes, got {student_classes} and {classes}")
    check_labels("data.y", data.y, classes, unlabelled=UNLABELLED)
    check_temperature(temperature)
    check_fraction("alpha", alpha)
    settings = TrainSettings.of(settings, **overrides)
    # K × (N, classes), where data.x is; in training-sized batches, as kdlib.training.distill caches its teacher
    teacher_logits = [predict_logits(teacher, data.x, batch_size=settings.batch_size) for teacher in teachers]
    targets = ensemble_soft_targets(teacher_logits, temperature, weights)  # (N, classes)

    def batch_loss(model, x, y, p):
        s = model(x)  # (batch, classes)
        return (1 - alpha) * hard_loss(s, y) + alpha * ensemble_kd_loss(s, p, temperature)

    return fit(student, (data.x, data.y, targets), batch_loss, settings, desc="distill ensemble")


class BornAgain(NamedTuple):
    """Generation g's model and its accuracy on the evaluation split (generation 0 learnt from labels)."""

    models: list
    accuracy: list


def born_again(build_model, data, evaluation, *, generations=3, temperature=4.0, alpha=0.9, settings=None,
               **overrides):
    """Furlanello et al. (ICML 2018), "Born-Again Neural Networks": same architecture, distilled again.

    Generation 0 = ``build_model(seed)`` trained on the labelled rows of ``data``; generation g ≥ 1
    = ``build_model(seed + g)`` distilled with ``kdlib.training.distill`` from generation g − 1 on
    all of ``data`` (UNLABELLED rows get the soft term only), with seed + g. ``seed`` is the settings'
    seed. ``generations`` counts the distilled ones, so the result has generations + 1 models, each
    scored on ``evaluation`` where it trained.
    """
    if not callable(build_model) or isinstance(build_model, nn.Module):  # a model is callable, but is no builder
        raise TypeError(f"build_model must be a function seed -> new model, got {type(build_model).__name__}")
    check_split(data)
    check_split(evaluation, "evaluation")
    check_count("generations", generations, low=0)
    check_temperature(temperature)
    check_fraction("alpha", alpha)
    settings = TrainSettings.of(settings, **overrides)
    labelled = data.y != UNLABELLED
    if not labelled.any():
        raise ValueError("born_again needs some labelled rows to train generation 0, got only UNLABELLED (-1) labels")
    result = BornAgain([], [])
    for generation in range(generations + 1):
        model = build_model(settings.seed + generation)
        check_model(f"build_model({settings.seed + generation})", model)
        generation_settings = TrainSettings.of(settings, seed=settings.seed + generation)
        if generation == 0:
            train(model, Split(data.x[labelled], data.y[labelled]), settings=generation_settings)
        else:
            distill(model, result.models[-1], data, temperature=temperature, alpha=alpha, settings=generation_settings)
        result.models.append(model)
        result.accuracy.append(evaluate(model, evaluation))  # where the model trained: evaluate follows it
    return result
