"""Feature distillation: make the student's hidden features match the teacher's.

Two losses over features rather than logits, and a training helper:

- FitNets hints (Romero et al., ICLR 2015): a learned regressor maps the student's (thinner)
  features to the teacher's width, and the squared error between them is the "hint" loss.
- DistilBERT's cosine loss (Sanh et al., 2019): align the directions of student and teacher
  hidden states of the same width, ignoring their lengths.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .arguments import (check_count, check_finite, check_fraction, check_model, check_number, check_split,
                        check_temperature)
from .devices import device_of
from .losses import hard_loss, kd_loss
from .models import penultimate, seeded
from .training import TrainSettings, fit, teacher_features


def _check_features(name, features):
    if not torch.is_tensor(features):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(features).__name__}")
    if not features.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {features.dtype}")
    if features.dim() < 2 or features.shape[0] == 0:
        raise ValueError(f"{name} must have shape (batch, features, ...) with batch >= 1, got {tuple(features.shape)}")
    check_finite(name, features)


def _check_regressor(regressor, student_width, teacher_width):
    """An nn.Module; a Linear or Conv2d one must map student_width features to teacher_width."""
    check_model("regressor", regressor)
    widths = (getattr(regressor, "in_features", getattr(regressor, "in_channels", student_width)),
              getattr(regressor, "out_features", getattr(regressor, "out_channels", teacher_width)))
    if widths != (student_width, teacher_width):
        raise ValueError(f"regressor must map the student's {student_width} features to the teacher's {teacher_width}, "
                         f"got a regressor from {widths[0]} to {widths[1]}; build it with "
                         f"hint_regressor({student_width}, {teacher_width})")


def hint_regressor(student_width, teacher_width, seed=0, convolutional=False):
    """The FitNets regressor r(s): a Linear(student_width → teacher_width), or a 1×1 Conv2d for feature maps.

    Romero et al. use a convolutional regressor so that the hint's parameter count stays small;
    on (batch, channels, H, W) maps a 1×1 convolution is a Linear applied at every position.
    Built on the CPU, like every new module (move it with ``.to``).
    """
    check_count("student_width", student_width)
    check_count("teacher_width", teacher_width)
    if convolutional:
        return seeded(seed, lambda: nn.Conv2d(student_width, teacher_width, kernel_size=1))
    return seeded(seed, lambda: nn.Linear(student_width, teacher_width))


def hint_loss(student_features, teacher_features, regressor):
    """Romero et al., ICLR 2015, "FitNets: Hints for Thin Deep Nets": the hint loss.

    loss = ½ · mean over every entry of (r(s) − t)², where r is the learned regressor.
    Normalisation: the paper writes ½‖t − r(s)‖²; here the squared errors are averaged over
    the batch AND over all feature entries (and positions, for (batch, channels, H, W) maps),
    so the loss does not grow with the teacher's width. Gradients reach the student and the
    regressor, never the teacher: its features are the target and are detached here. Computed
    where the regressor is (the features are moved there).
    """
    _check_features("student_features", student_features)
    _check_features("teacher_features", teacher_features)
    _check_regressor(regressor, student_features.shape[1], teacher_features.shape[1])
    if student_features.shape[0] != teacher_features.shape[0]:
        raise ValueError(f"student_features and teacher_features must have the same batch size, got "
                         f"{student_features.shape[0]} and {teacher_features.shape[0]}")
    device = device_of(regressor)  # the regressor is the model here: the loss is computed where it is
    regressed = regressor(student_features.to(device))  # same shape as the teacher's features
    if regressed.shape != teacher_features.shape:
        raise ValueError(f"regressor(student_features) has shape {tuple(regressed.shape)} but teacher_features has "
                         f"shape {tuple(teacher_features.shape)}; build the regressor with the right widths")
    return 0.5 * (regressed - teacher_features.detach().to(device)).pow(2).mean()


def cosine_hidden_loss(student_hidden, teacher_hidden):
    """Sanh et al., 2019, "DistilBERT, a distilled version of BERT": the cosine embedding loss.

    loss = mean over positions i of (1 − cos(s_i, t_i)), with s_i, t_i the hidden vectors along
    the last dimension; (batch, width) or (batch, sequence, width). 0 when every pair points the
    same way, 1 when orthogonal, 2 when opposite. Needs equal widths: no regressor here.
    """
    _check_features("student_hidden", student_hidden)
    _check_features("teacher_hidden", teacher_hidden)
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(f"student_hidden and teacher_hidden must have the same shape (same width), got "
                         f"{tuple(student_hidden.shape)} and {tuple(teacher_hidden.shape)}; use hint_loss with a "
                         "regressor when the widths differ")
    cosine = F.cosine_similarity(student_hidden, teacher_hidden, dim=-1)  # (batch,) or (batch, sequence)
    return (1 - cosine).mean()


def distill_with_hints(student, teacher, data, *, hint_weight=1.0, temperature=4.0, alpha=0.9, regressor=None,
                       settings=None, **overrides):
    """Train ``student`` on the KD loss plus a FitNets hint on the penultimate features, jointly.

    loss = (1 − α)·CE(labels) + α·kd_loss(s, t, T) + hint_weight · hint_loss(f_s, f_t, r)
    where f = kdlib.models.penultimate(net, x). FitNets trains in two stages (first the hint
    alone up to the guided layer, then KD on the whole net); here both terms are optimised
    together in one stage, the simpler variant used by most later work. UNLABELLED rows get
    no CE term. The teacher is frozen: its logits and features are computed once, where it is.
    ``regressor``: default hint_regressor(student width, teacher width, seed=settings.seed), made on
    the student's device; one you pass must be on the student's device (or give ``device=``).
    ``settings``/keywords: see TrainSettings (epochs=30, lr=1e-3, batch_size=64, ...).
    Returns (History, regressor); the regressor is trained along with the student.
    """
    check_model("student", student)
    check_model("teacher", teacher)
    check_split(data)
    check_number("hint_weight", hint_weight, inclusive=True)
    check_temperature(temperature)
    check_fraction("alpha", alpha)
    settings = TrainSettings.of(settings, **overrides)
    t_features, t_logits, student_width = teacher_features(student, teacher, data, settings.batch_size)
    if regressor is None:
        regressor = hint_regressor(student_width, t_features.shape[1], seed=settings.seed).to(device_of(student))
    _check_regressor(regressor, student_width, t_features.shape[1])
    if settings.device is None and device_of(regressor) != device_of(student):
        raise ValueError(f"regressor and student must be on one device (or give device=), got "
                         f"{device_of(regressor)} and {device_of(student)}")
    pair = nn.ModuleList([student, regressor])  # one module, so fit's optimiser updates both

    def batch_loss(pair, x, y, t, t_features):  # t: (batch, classes), t_features: (batch, teacher_width)
        student, regressor = pair
        features = penultimate(student, x)  # (batch, student_width)
        s = student[-1](features)  # (batch, classes)
        kd = (1 - alpha) * hard_loss(s, y) + alpha * kd_loss(s, t, temperature)
        return kd + hint_weight * hint_loss(features, t_features, regressor)

    history = fit(pair, (data.x, data.y, t_logits, t_features), batch_loss, settings, desc="hints")
    return history, regressor
