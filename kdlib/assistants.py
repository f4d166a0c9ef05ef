"""Teacher assistants: distil through a chain of models of shrinking size.

Mirzadeh et al., AAAI 2020, "Improved Knowledge Distillation via Teacher Assistant" observe
that a student distilled from a much larger teacher can do *worse* than from a medium one
(the "capacity gap"), and that inserting a medium-sized assistant between them helps:
teacher → assistant(s) → student, each model distilled from the one before it.

``distill_chain`` runs such a chain; ``gap_sweep`` measures the gap itself: one student,
teachers of growing size, student accuracy against teacher size. ``trace_distillation`` records
which model a function distilled from which (to check a chain written by hand).
Training settings (epochs, lr, batch size, seed, device, ...) are a ``kdlib.training.TrainSettings``
or its fields as keywords; models train where they are (``kdlib.devices``).
"""
import sys
from typing import NamedTuple

from torch import nn

from .arguments import check_fraction, check_model, check_number, check_split, check_temperature
from .metrics import parameter_count
from .training import TrainSettings, class_count, distill, evaluate, train


def check_models(models, x=None, least=1, name="models"):
    """A list of at least ``least`` models; with inputs ``x``, all scoring the same number of classes on
    them, which is returned (a chain or an ensemble must agree on its classes before anything trains)."""
    if not isinstance(models, (list, tuple)):
        raise TypeError(f"{name} must be a list of torch.nn.Module, got {type(models).__name__}")
    for k, model in enumerate(models):
        check_model(f"{name}[{k}]", model)
    if len(models) < least:
        raise ValueError(f"{name} must hold at least {least} model(s), got {len(models)}")
    if x is None:
        return None
    classes = [class_count(model, x) for model in models]
    if len(set(classes)) > 1:
        raise ValueError(f"every model in {name} must score the same classes, got class counts {classes}")
    return classes[0]


def distill_chain(models, data, *, temperature=4.0, alpha=0.9, settings=None, **overrides):
    """Mirzadeh et al. (AAAI 2020), teacher-assistant KD: models[i] is distilled from models[i − 1].

    models[0] is the already trained teacher; every later model (assistants, then the student)
    is trained with ``kdlib.training.distill`` on (1 − α)·CE + α·T²·KL(softmax(t/T) ‖ softmax(s/T))
    against the model just before it, in order. Every link uses the same settings (and seed), so a
    chain of two models is exactly ``distill(models[1], models[0], ...)``. Returns the list of models.
    """
    check_split(data)
    check_models(models, data.x, least=2)  # every link checked before the first one trains
    check_temperature(temperature)
    check_fraction("alpha", alpha)
    settings = TrainSettings.of(settings, **overrides)
    for teacher, student in zip(models[:-1], models[1:]):
        distill(student, teacher, data, temperature=temperature, alpha=alpha, settings=settings)
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
    """Accuracy of every model on a Split, in order (e.g. teacher, assistant, student of a chain), each
    computed where that model is; their modes are left as they were."""
    check_models(models)
    check_split(data)
    return [evaluate(model, data) for model in models]


class GapSweep(NamedTuple):
    """One row per teacher size: the size given, its parameter count and both accuracies."""

    sizes: list
    teacher_parameters: list
    teacher_accuracy: list
    student_accuracy: list


def gap_sweep(build_teacher, teacher_sizes, build_student, data, evaluation, *, student_data=None,
              temperature=4.0, alpha=0.9, student_lr=None, settings=None, **overrides):
    """Mirzadeh et al. (AAAI 2020), the capacity gap: one student distilled from teachers of growing size.

    For each ``size`` in ``teacher_sizes``: ``build_teacher(size, seed)`` is trained on labels of
    ``data``; a fresh ``build_student(seed)`` (the same initial weights every time, so only the
    teacher changes) is distilled from it on ``student_data`` (default ``data``; pass the same
    inputs with labels hidden by ``kdlib.data.hide_labels`` for the transfer-set regime). Both are
    scored on ``evaluation``. ``student_lr`` (default: the settings' ``lr``) sets the students'
    learning rate alone, e.g. a larger one for a linear student that needs large weights to reach a
    confident teacher's logits. ``seed`` is the settings' seed. Returns a GapSweep to plot student
    accuracy against teacher size.
    """
    for name, build in (("build_teacher", build_teacher), ("build_student", build_student)):
        if not callable(build) or isinstance(build, nn.Module):  # a model is callable, but is no builder
            raise TypeError(f"{name} must be a function that returns a new model, got {type(build).__name__}")
    if not isinstance(teacher_sizes, (list, tuple, range)):
        raise TypeError(f"teacher_sizes must be a list of sizes for build_teacher, got {type(teacher_sizes).__name__}")
    if len(teacher_sizes) == 0:
        raise ValueError("teacher_sizes must list at least one size, got an empty list")
    check_split(data)
    check_split(evaluation, "evaluation")
    student_data = data if student_data is None else student_data
    check_split(student_data, "student_data")
    check_temperature(temperature)
    check_fraction("alpha", alpha)
    if student_lr is not None:
        check_number("student_lr", student_lr)
    settings = TrainSettings.of(settings, **overrides)
    student_settings = settings if student_lr is None else TrainSettings.of(settings, lr=student_lr)
    sweep = GapSweep([], [], [], [])
    for size in teacher_sizes:
        teacher = build_teacher(size, settings.seed)
        check_model(f"build_teacher({size!r}, {settings.seed})", teacher)
        train(teacher, data, settings=settings)
        student = build_student(settings.seed)
        check_model(f"build_student({settings.seed})", student)
        distill(student, teacher, student_data, temperature=temperature, alpha=alpha, settings=student_settings)
        sweep.sizes.append(size)
        sweep.teacher_parameters.append(parameter_count(teacher))
        sweep.teacher_accuracy.append(evaluate(teacher, evaluation))
        sweep.student_accuracy.append(evaluate(student, evaluation))
    return sweep
