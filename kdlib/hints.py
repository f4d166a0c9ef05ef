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

from .data import UNLABELLED
from .losses import _check_fraction, _check_temperature, kd_loss
from .models import _seeded, penultimate
from .training import _check_split, _fit, default_device


def _check_features(name, features):
    if not torch.is_tensor(features):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(features).__name__}")
    if not features.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {features.dtype}")
    if features.dim() < 2 or features.shape[0] == 0:
        raise ValueError(f"{name} must have shape (batch, features, ...) with batch >= 1, got {tuple(features.shape)}")


def hint_regressor(student_width, teacher_width, seed=0, convolutional=False):
    """The FitNets regressor r(s): a Linear(student_width → teacher_width), or a 1×1 Conv2d for feature maps.

    Romero et al. use a convolutional regressor so that the hint's parameter count stays small;
    on (batch, channels, H, W) maps a 1×1 convolution is a Linear applied at every position.
    """
    for name, width in (("student_width", student_width), ("teacher_width", teacher_width)):
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {width!r}")
    if convolutional:
        return _seeded(seed, lambda: nn.Conv2d(student_width, teacher_width, kernel_size=1))
    return _seeded(seed, lambda: nn.Linear(student_width, teacher_width))


def hint_loss(student_features, teacher_features, regressor):
    """Romero et al., ICLR 2015, "FitNets: Hints for Thin Deep Nets": the hint loss.

    loss = ½ · mean over every entry of (r(s) − t)², where r is the learned regressor.
    Normalisation: the paper writes ½‖t − r(s)‖²; here the squared errors are averaged over
    the batch AND over all feature entries (and positions, for (batch, channels, H, W) maps),
    so the loss does not grow with the teacher's width. Gradients reach the student and the
    regressor, never the teacher: its features are the target and are detached here.
    """
    _check_features("student_features", student_features)
    _check_features("teacher_features", teacher_features)
    if not isinstance(regressor, nn.Module):
        raise TypeError(f"regressor must be an nn.Module (see hint_regressor), got {type(regressor).__name__}")
    if student_features.shape[0] != teacher_features.shape[0]:
        raise ValueError(f"student_features and teacher_features must have the same batch size, got "
                         f"{student_features.shape[0]} and {teacher_features.shape[0]}")
    regressed = regressor(student_features)  # same shape as the teacher's features
    if regressed.shape != teacher_features.shape:
        raise ValueError(f"regressor(student_features) has shape {tuple(regressed.shape)} but teacher_features has "
                         f"shape {tuple(teacher_features.shape)}; build the regressor with the right widths")
    return 0.5 * (regressed - teacher_features.detach()).pow(2).mean()


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
                       epochs=30, lr=1e-3, batch_size=64, seed=0, weight_decay=0.0, device=None, progress=True):
    """Train ``student`` on the KD loss plus a FitNets hint on the penultimate features, jointly.

    loss = (1 − α)·CE(labels) + α·kd_loss(s, t, T) + hint_weight · hint_loss(f_s, f_t, r)
    where f = kdlib.models.penultimate(net, x). FitNets trains in two stages (first the hint
    alone up to the guided layer, then KD on the whole net); here both terms are optimised
    together in one stage, the simpler variant used by most later work. UNLABELLED rows get
    no CE term. The teacher is frozen: its logits and features are computed once.
    Returns (History, regressor); the regressor is trained along with the student.
    """
    _check_split(data)
    _check_temperature(temperature)
    _check_fraction("alpha", alpha)
    if not hint_weight >= 0:
        raise ValueError(f"hint_weight must be a number >= 0, got {hint_weight}")
    device = device or default_device()
    teacher.to(device).eval()
    with torch.no_grad():
        teacher_logits, teacher_features = [], []
        for start in range(0, len(data.x), 1024):
            x = data.x[start : start + 1024].to(device)
            features = penultimate(teacher, x)  # (batch, teacher_width)
            teacher_features.append(features.cpu())
            teacher_logits.append(teacher[-1](features).cpu())
    teacher_logits, teacher_features = torch.cat(teacher_logits), torch.cat(teacher_features)
    if regressor is None:
        with torch.no_grad():  # one example in eval mode (batch norm needs no batch statistics) to read the width
            student_width = penultimate(student.to(device).eval(), data.x[:1].to(device)).shape[1]
        regressor = hint_regressor(student_width, teacher_features.shape[1], seed=seed)
    pair = nn.ModuleList([student, regressor])  # one module, so _fit's optimiser updates both

    def batch_loss(pair, x, y, t, t_features):
        student, regressor = pair
        features = penultimate(student, x)  # (batch, student_width)
        s = student[-1](features)  # (batch, classes)
        labelled = y != UNLABELLED
        hard = F.cross_entropy(s[labelled], y[labelled]) if labelled.any() else s.new_zeros(())
        soft = kd_loss(s, t, temperature)
        return (1 - alpha) * hard + alpha * soft + hint_weight * hint_loss(features, t_features, regressor)

    return _fit(pair, (data.x, data.y, teacher_logits, teacher_features), batch_loss, epochs=epochs, lr=lr,
                batch_size=batch_size, seed=seed, weight_decay=weight_decay, val=None, device=device,
                progress=progress, desc="hints"), regressor
