"""Argument checks shared by every kdlib module: one call at the top of a function, so the math leads.

Each raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, wrong value) with a
message naming the argument, what was expected and what came. Checks that must read tensor values
(finite entries, label ranges) read them once per call; the training loop calls them once per run,
not once per batch.
"""
import math
import numbers

import torch
from torch import nn


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_count(name, value, low=1):
    """An integer >= ``low`` (epochs, batch sizes, steps, widths, ...)."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")


def check_number(name, value, low=0, inclusive=False):
    """A finite real number > ``low`` (>= with ``inclusive``): learning rates, weights, scales."""
    if torch.is_tensor(value) and value.numel() == 1:
        value = value.item()
    if not _is_real(value):
        raise TypeError(f"{name} must be a number {'>=' if inclusive else '>'} {low}, got {type(value).__name__}")
    if not (math.isfinite(value) and (value >= low if inclusive else value > low)):
        raise ValueError(f"{name} must be a finite number {'>=' if inclusive else '>'} {low}, got {value}")


def check_temperature(temperature):
    """T must be a single finite number > 0 (a Python number or a one-element tensor)."""
    if torch.is_tensor(temperature) and temperature.numel() != 1:
        raise ValueError(f"temperature must be a single number, got a tensor of shape {tuple(temperature.shape)}")
    check_number("temperature", temperature)


def check_fraction(name, value):
    """A weight in [0, 1] (alpha, label smoothing, fractions)."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def check_choice(name, value, choices):
    """One of a fixed set of names."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_model(name, model):
    """A torch.nn.Module (not a string, a class or a function that builds one)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")


def check_tensor(name, tensor, dims=None, floating=None):
    """A tensor, optionally of a number of dimensions (an int or a tuple of allowed ones) and a float dtype."""
    if not torch.is_tensor(tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if floating and not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")
    allowed = (dims,) if isinstance(dims, int) else dims
    if allowed is not None and tensor.dim() not in allowed:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(tensor.shape)}")


def check_finite(name, tensor):
    """No NaN or infinite entry. The values are read on the CPU only: on an accelerator the read would stop the
    device once per batch inside a training loop, whose own per-step loss check catches a NaN there instead."""
    if tensor.device.type == "cpu" and not torch.isfinite(tensor).all():
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite entries of {tensor.numel()}")


def check_logits(name, logits):
    """Logits: a non-empty 2-D floating tensor (batch, classes) of finite values."""
    if not torch.is_tensor(logits):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, classes), got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.dim() != 2:
        raise ValueError(f"{name} must have shape (batch, classes), got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(logits.shape)}); expected at least one example")
    check_finite(name, logits)


def check_sequence_logits(name, logits):
    """Logits of a sequence model: a 3-D floating tensor (batch, sequence, vocab), no empty axis, finite values."""
    if not torch.is_tensor(logits):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, sequence, vocab), got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.dim() != 3 or 0 in logits.shape:
        raise ValueError(f"{name} must have shape (batch, sequence, vocab) with no empty axis, got {tuple(logits.shape)}")
    check_finite(name, logits)


def check_same_device(first_name, first, second_name, second):
    """Two tensors meet in one computation: they must be on one device."""
    if first.device != second.device:
        raise ValueError(f"{first_name} and {second_name} must be on one device, got {first.device} and {second.device}")


def check_logit_pair(student_logits, teacher_logits):
    """Student and teacher logits: both valid, the same shape, on one device."""
    check_logits("student_logits", student_logits)
    check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student_logits and teacher_logits must have the same shape (batch, classes), got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    check_same_device("student_logits", student_logits, "teacher_logits", teacher_logits)


def check_labels(name, labels, classes, batch=None, unlabelled=None):
    """int64 class indices in [0, classes − 1]; with ``unlabelled`` (e.g. −1) that value is allowed too.

    ``batch``: the length the labels must have. The range is read only on the CPU, where it costs
    nothing; on an accelerator it would stop the device once per batch, so train/distill check a
    whole split once instead (``check_split(..., classes=...)``).
    """
    if not torch.is_tensor(labels):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.dtype != torch.int64:
        raise TypeError(f"{name} must be int64 class indices, got dtype {labels.dtype}")
    if labels.dim() != 1 or (batch is not None and len(labels) != batch):
        expected = f"({batch},) to match the batch" if batch is not None else "(N,)"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(labels.shape)}")
    if labels.device.type != "cpu" or len(labels) == 0:
        return
    ok = (labels >= 0) & (labels < classes)
    if unlabelled is not None:
        ok |= labels == unlabelled
    if not ok.all():
        allowed = f"[0, {classes - 1}]" + (f" or {unlabelled} (UNLABELLED)" if unlabelled is not None else "")
        raise ValueError(f"{name} must be class indices in {allowed} for {classes} classes, got values from "
                         f"{labels.min().item()} to {labels.max().item()}")


def check_split(data, name="data", classes=None, unlabelled=None):
    """A non-empty kdlib.data.Split (x, y) of tensors of one length; x finite; y int64 labels.

    With ``classes``, every label must be a class index (or ``unlabelled`` where that is allowed).
    """
    if not isinstance(data, tuple) or len(data) != 2 or not all(torch.is_tensor(t) for t in data):
        raise TypeError(f"{name} must be a kdlib.data.Split (x, y) of tensors, got {type(data).__name__}")
    if len(data[0]) != len(data[1]):
        raise ValueError(f"{name}.x and {name}.y must have the same length, got {len(data[0])} and {len(data[1])}")
    if len(data[0]) == 0:
        raise ValueError(f"{name} is empty; expected at least one example")
    if not data[0].is_floating_point():
        raise TypeError(f"{name}.x must be a floating-point tensor, got dtype {data[0].dtype}")
    check_finite(f"{name}.x", data[0])
    if data[1].dtype != torch.int64:
        raise TypeError(f"{name}.y must be int64 class indices, got dtype {data[1].dtype}")
    if classes is not None:
        check_labels(f"{name}.y", data[1], classes, unlabelled=unlabelled)
