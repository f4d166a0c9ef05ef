"""Teacher assistants: distil through a chain of models of shrinking size.

Mirzadeh et al., AAAI 2020, "Improved Knowledge Distillation via Teacher Assistant" observe
that a student distilled from a much larger teacher can do *worse* than from a medium one
(the "capacity gap"), and that inserting a medium-sized assistant between them helps:
teacher → assistant(s) → student, each model distilled from the one before it.

``distill_chain`` runs such a chain; ``gap_sweep`` measures the gap itself: one student,
teachers of growing size, student accuracy against teacher size. ``trace_distillation`` records
which model a function distilled from which (to check a chain written by hand).
"""
import sys
from typing import NamedTuple

from torch import nn

from .metrics import parameter_count
from .training import _check_split, distill, evaluate, train


def _check_models(models):
    if not isinstance(models, (list, tuple)) or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError(f"models must be a list of torch.nn.Module, got {type(models).__name__}")
    if len(models) < 2:
        raise ValueError("a chain needs a trained teacher and at least one model to distil, "
                         f"got {len(models)} model(s)")


def distill_chain(models, data, *, temperature=4.0, alpha=0.9, epochs=30, lr=1e-3, batch_size=64, seed=0,
                  weight_decay=0.0, device=None, progress=True):
    """Mirzadeh et al. (AAAI 2020), teacher-assistant KD: models[i] is distilled from models[i − 1].

    models[0] is the already trained teacher; every later model (assistants, then the student)
    is trained with ``kdlib.training.distill`` on (1 − α)·CE + α·T²·KL(softmax(t/T) ‖ softmax(s/T))
    against the model just before it, in order. Every link uses the same ``seed``, so a chain of
    two models is exactly ``distill(models[1], models[0], ...)``. Returns the list of models.
    """
    _check_models(models)
    _check_split(data)
    for teacher, student in zip(models[:-1], models[1:]):
        distill(student, teacher, data, temperature=temperature, alpha=alpha, epochs=epochs, lr=lr,
                batch_size=batch_size, seed=seed, weight_decay=weight_decay, device=device, progress=progress)
    return list(models)


def trace_distillation(function, *args, **kwargs):
    """Run ``function(*args, **kwargs)`` and record every ``kdlib.training.distill`` call it makes.

    Returns ``(result, links)``: ``links`` lists one ``(student, teacher)`` pair of model objects per
    call, in call order, however ``distill`` was imported or aliased (a profiler hook sees the call).
    A correct chain over ``models`` gives ``[(models[1], models[0]), (models[2], models[1]), ...]``.
    """
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    links = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code is distill.__code__:
            links.append((frame.f_locals["student"], frame.f_locals["teacher"]))

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        result = function(*args, **kwargs)
    finally:
        sys.setprofile(previous)
    return result, links


def evaluate_each(models, data):
    """Accuracy of every model on a Split, in order (e.g. teacher, assistant, student of a chain)."""
    return [evaluate(model, data) for model in models]


class GapSweep(NamedTuple):
    """One row per teacher size: the size given, its parameter count and both accuracies."""

    sizes: list
    teacher_parameters: list
    teacher_accuracy: list
    student_accuracy: list


def gap_sweep(build_teacher, teacher_sizes, build_student, data, evaluation, *, student_data=None,
              temperature=4.0, alpha=0.9, epochs=30, lr=1e-3, batch_size=64, seed=0, student_lr=None, progress=True):
    """Mirzadeh et al. (AAAI 2020), the capacity gap: one student distilled from teachers of growing size.

    For each ``size`` in ``teacher_sizes``: ``build_teacher(size, seed)`` is trained on labels of
    ``data``; a fresh ``build_student(seed)`` (the same initial weights every time, so only the
    teacher changes) is distilled from it on ``student_data`` (default ``data``; pass the same
    inputs with labels hidden by ``kdlib.data.hide_labels`` for the transfer-set regime). Both are
    scored on ``evaluation``. ``student_lr`` (default ``lr``) sets the students' learning rate
    alone, e.g. a larger one for a linear student that needs large weights to reach a confident
    teacher's logits. Returns a GapSweep to plot student accuracy against teacher size.
    """
    _check_split(data)
    _check_split(evaluation, "evaluation")
    student_data = data if student_data is None else student_data
    _check_split(student_data, "student_data")
    if len(teacher_sizes) == 0:
        raise ValueError("teacher_sizes must list at least one size, got an empty list")
    student_lr = lr if student_lr is None else student_lr
    if student_lr <= 0:
        raise ValueError(f"student_lr must be > 0, got {student_lr}")
    sweep = GapSweep([], [], [], [])
    for size in teacher_sizes:
        teacher = build_teacher(size, seed)
        train(teacher, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress)
        student = build_student(seed)
        distill(student, teacher, student_data, temperature=temperature, alpha=alpha, epochs=epochs, lr=student_lr,
                batch_size=batch_size, seed=seed, progress=progress)
        sweep.sizes.append(size)
        sweep.teacher_parameters.append(parameter_count(teacher))
        sweep.teacher_accuracy.append(evaluate(teacher, evaluation))
        sweep.student_accuracy.append(evaluate(student, evaluation))
    return sweep
