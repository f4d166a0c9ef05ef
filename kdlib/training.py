"""The training loop: ``fit`` with a pluggable batch loss; ``train`` on labels and ``distill`` from a teacher
are two short uses of it, and every method module (assistants, ensembles, hints, ...) is another.

Training settings (epochs, lr, batch size, optimizer, schedule, weight decay, max-norm, seed, validation
split, device, progress bar) live once, in ``TrainSettings``; every training function takes ``settings=`` and
any of its fields as keywords (``train(model, data, epochs=5)``). A run is bit-identical on CPU for one
``seed`` (model seeds live in ``kdlib.models``) and one thread count. A loss that turns non-finite
stops the run with an error naming the epoch and step. Devices follow ``kdlib.devices``.
"""
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .arguments import (check_choice, check_count, check_fraction, check_labels, check_model, check_number,
                        check_split, check_temperature, check_tensor)
from .data import UNLABELLED, Split, make_loader
from .devices import default_device, device_of, eval_mode  # noqa: F401 (default_device: kdlib.training's API)
from .losses import hard_loss, kd_loss
from .metrics import accuracy
from .models import penultimate


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and step."""


LR_SCHEDULES = ("constant", "cosine", "step")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainSettings:
    """How to train, held once for every training function in kdlib.

    optimizer "adam", or "sgd" with momentum 0.9; lr_schedule "constant", "cosine" (lr → 0 along a half
    cosine over all steps) or "step" (lr ÷ 10 halfway): longer runs then end in a minimum instead of
    bouncing around one. ``max_norm``: after every step, each unit's incoming weights are scaled back to at most
    this L2 norm (``clip_unit_norms``). ``val``: a Split whose accuracy is scored after every epoch, or a function
    model → number scored instead (a language model's held-out score); either goes to History.val_accuracy.
    ``device``: where to train; None trains where the model is.
    """

    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adam"
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    max_norm: float | None = None
    seed: int = 0
    val: Split | Callable[[torch.nn.Module], float] | None = None
    device: str | torch.device | None = None
    progress: bool = True

    def __post_init__(self):
        check_count("epochs", self.epochs)
        check_number("lr", self.lr)
        check_count("batch_size", self.batch_size)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_number("weight_decay", self.weight_decay, inclusive=True)
        if self.max_norm is not None:
            check_number("max_norm", self.max_norm)
        check_count("seed", self.seed, low=0)
        if self.val is not None and not callable(self.val):
            if not isinstance(self.val, tuple):
                raise TypeError(f"val must be a kdlib.data.Split (x, y) or a function model → number, "
                                f"got {type(self.val).__name__}")
            check_split(self.val, "val")
        if self.device is not None and not isinstance(self.device, (str, torch.device)):
            raise TypeError(f"device must be None, a string or a torch.device, got {type(self.device).__name__}")

    @classmethod
    def of(cls, settings=None, **overrides):
        """``settings`` (default: the defaults) with some fields replaced: ``TrainSettings.of(s, seed=1)``."""
        settings = cls() if settings is None else settings
        if not isinstance(settings, cls):
            raise TypeError(f"settings must be a kdlib.training.TrainSettings, got {type(settings).__name__}")
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"unknown training setting(s) {unknown}; TrainSettings has "
                            f"{[f.name for f in dataclasses.fields(cls)]}")
        return dataclasses.replace(settings, **overrides)

    @classmethod
    def for_sequences(cls, defaults, settings=None, *, score_with, **overrides):
        """``of`` for models of token sequences: ``defaults`` unless ``settings`` is given. ``val`` must be a
        function of the model; a Split of images and labels is refused, naming the module's own scorer."""
        settings = cls.of(defaults if settings is None else settings, **overrides)
        if settings.val is not None and not callable(settings.val):
            raise ValueError(f"val (a Split of images and labels) does not apply to language models; give a "
                             f"function of the model instead, e.g. val=lambda model: {score_with}")
        return settings


@dataclass
class History:
    """Per-epoch mean training loss, learning rate at the epoch's start and, with ``val``, its score: the accuracy
    on a validation Split, or what a val function returned."""

    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)


@torch.no_grad()
def frozen_outputs(model, x, *, batch_size=256, features=False):
    """A frozen model's logits on ``x`` — or (penultimate features, logits) with ``features=True`` — in
    batches, in eval mode, where the model is; the model's mode is restored and the results are put where
    ``x`` is. This is the teacher pass of every distillation method (cached or per batch).
    """
    check_model("model", model)
    check_tensor("x", x)
    check_count("batch_size", batch_size)
    device, outputs = device_of(model), []
    with eval_mode(model):
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size].to(device)
            if features:
                f = penultimate(model, batch)  # (batch, features)
                outputs.append((f.to(x.device), model[-1](f).to(x.device)))
            else:
                outputs.append(model(batch).to(x.device))  # (batch, classes)
    if features:
        return tuple(torch.cat(parts) for parts in zip(*outputs))
    return torch.cat(outputs)


def predict_logits(model, x, batch_size=256):
    """Logits of ``model`` on inputs ``x`` (eval mode, batched, where the model is), returned where ``x`` is."""
    return frozen_outputs(model, x, batch_size=batch_size)  # (N, classes)


def class_count(model, x):
    """How many classes ``model`` scores: the width of its output on one example of ``x``."""
    logits = frozen_outputs(model, x[:1])
    if logits.dim() != 2:
        raise ValueError(f"model must return logits (batch, classes), got shape {tuple(logits.shape)}")
    return logits.shape[1]


def teacher_features(student, teacher, data, batch_size=256):
    """What a feature-level method needs from a frozen teacher, computed once, where it is: its penultimate
    features (N, teacher_width) and logits (N, classes) on ``data.x``, and the student's feature width. Checks
    that both score the same classes and that data.y holds class indices or UNLABELLED."""
    check_model("student", student)
    check_model("teacher", teacher)
    check_split(data)
    t_features, t_logits = frozen_outputs(teacher, data.x, batch_size=batch_size, features=True)
    s_features, s_logits = frozen_outputs(student, data.x[:1], features=True)  # one example: widths, student as found
    if s_logits.shape[1] != t_logits.shape[1]:
        raise ValueError(f"student and teacher must score the same classes, got {s_logits.shape[1]} and "
                         f"{t_logits.shape[1]}")
    check_labels("data.y", data.y, t_logits.shape[1], unlabelled=UNLABELLED)
    return t_features, t_logits, s_features.shape[1]


def evaluate(model, data, batch_size=256):
    """Accuracy of ``model`` on a Split, computed where the model is; its mode is left as it was."""
    check_model("model", model)
    check_split(data)
    logits = predict_logits(model, data.x, batch_size)
    check_labels("data.y", data.y, logits.shape[1])
    return accuracy(logits, data.y)


def _validation_score(model, val):
    """A Split's accuracy, or the number a val function returns for the model (checked: it must be one)."""
    if not callable(val):
        return evaluate(model, val)
    score = val(model)
    if isinstance(score, torch.Tensor) and score.numel() == 1:
        score = score.item()
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise TypeError(f"val must return a number for the model, got {type(score).__name__}")
    return float(score)


def fit(model, tensors, batch_loss, settings=None, *, desc="fit", **overrides):
    """The one training loop: Adam (or SGD) over shuffled mini-batches of ``tensors``, a tuple of tensors
    sharing their first dimension (e.g. (x, y, cached_teacher_logits)); ``batch_loss(model, *batch)`` gives
    the loss of a batch, already on the model's device. Returns a History; the model ends in eval mode.

    ``settings``: a TrainSettings; any of its fields may also be given as keywords.
    """
    check_model("model", model)
    if not callable(batch_loss):
        raise TypeError(f"batch_loss must be a function (model, *batch) -> loss, got {type(batch_loss).__name__}")
    settings = TrainSettings.of(settings, **overrides)
    if settings.device is not None:
        model.to(settings.device)  # asked for: the one place kdlib moves a model
    device = device_of(model)
    torch.manual_seed(settings.seed)  # dropout and any other in-model randomness
    loader = make_loader(tensors, batch_size=settings.batch_size, shuffle=True, seed=settings.seed)
    if settings.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=0.9,
                                    weight_decay=settings.weight_decay)
    total_steps, scheduler = settings.epochs * len(loader), None
    if settings.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    elif settings.lr_schedule == "step":
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [total_steps // 2], gamma=0.1)
    history = History()
    model.train()
    bar = tqdm(range(1, settings.epochs + 1), desc=desc, disable=not settings.progress, leave=False)
    for epoch in bar:
        total, count = 0.0, 0
        history.lr.append(optimizer.param_groups[0]["lr"])
        for step, batch in enumerate(loader, start=1):
            batch = [t.to(device) for t in batch]
            loss = batch_loss(model, *batch)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss became {loss.item()} at epoch {epoch}, step {step}; "
                    "try a lower learning rate or check the inputs for NaN"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if settings.max_norm is not None:
                clip_unit_norms(model, settings.max_norm)
            if scheduler is not None:
                scheduler.step()
            total, count = total + loss.item() * len(batch[0]), count + len(batch[0])
        history.loss.append(total / count)
        if settings.val is not None:
            history.val_accuracy.append(_validation_score(model, settings.val))
        bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
    model.eval()
    return history


@torch.no_grad()
def clip_unit_norms(model, max_norm):
    """Max-norm regularisation (Srivastava et al. 2014, "Dropout", §5.1; Hinton et al. 2015 used it for their
    MNIST teacher): every unit's incoming weight vector w, a row of a Linear's weight (out, in) or one filter
    (out, in, kh, kw) of a convolution, is scaled to ‖w‖₂ ≤ max_norm; rows already inside are untouched, biases
    are free. It bounds the weights however large the learning rate, which is why dropout nets can use large ones."""
    check_model("model", model)
    check_number("max_norm", max_norm)
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)):
            w = module.weight  # (units, fan-in...)
            norms = w.flatten(1).norm(dim=1).view(-1, *[1] * (w.dim() - 1))  # one per unit, shaped to broadcast
            w.mul_((max_norm / norms).clamp(max=1.0))  # a factor < 1 only for units above max_norm


def train(model, data, *, label_smoothing=0.0, augment=None, settings=None, **overrides):
    """Train ``model`` on labelled data (x, y) with cross-entropy (optionally label-smoothed).

    augment(x), if given, transforms every batch of inputs (e.g. random shifts) before the model sees it.
    ``settings``/keywords: see TrainSettings (epochs=30, lr=1e-3, batch_size=64, ...).
    """
    check_model("model", model)
    check_split(data)
    check_fraction("label_smoothing", label_smoothing)
    if (data.y == UNLABELLED).any():
        raise ValueError("train() needs every label; for UNLABELLED (-1) examples use distill() with a teacher")
    check_labels("data.y", data.y, class_count(model, data.x))

    def batch_loss(model, x, y):
        if augment is not None:
            x = augment(x)
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    return fit(model, (data.x, data.y), batch_loss, settings, desc="train", **overrides)


def distill(student, teacher, data, *, temperature=4.0, alpha=0.9, soft_loss=None, augment=None,
            cache_teacher=True, settings=None, **overrides):
    """Train ``student`` on (1 − α)·CE(labels) + α·soft_loss(student, teacher, labels, T) (Hinton et al. 2015).

    ``soft_loss(student_logits, teacher_logits, labels, temperature) -> scalar``; the default is Hinton's
    ``kd_loss`` (which ignores the labels); ``kdlib.losses.dkd_loss`` is another. Rows labelled
    ``UNLABELLED`` (-1) are a transfer set: they contribute the soft term only. The teacher is frozen and
    runs where it is; unless inputs are augmented (``augment(x)`` per batch) or ``cache_teacher=False``,
    its logits are computed once and reused every epoch.
    ``settings``/keywords: see TrainSettings (epochs=30, lr=1e-3, batch_size=64, ...).
    """
    check_model("student", student)
    check_model("teacher", teacher)
    check_split(data)
    check_temperature(temperature)
    check_fraction("alpha", alpha)
    if soft_loss is not None and not callable(soft_loss):
        raise TypeError(f"soft_loss must be a function (student_logits, teacher_logits, labels, temperature), "
                        f"got {type(soft_loss).__name__}")
    settings = TrainSettings.of(settings, **overrides)
    classes, student_classes = class_count(teacher, data.x), class_count(student, data.x)
    if classes != student_classes:
        raise ValueError(f"student and teacher must score the same classes, got {student_classes} and {classes}")
    check_labels("data.y", data.y, classes, unlabelled=UNLABELLED)
    soft = soft_loss or (lambda s, t, y, T: kd_loss(s, t, T))

    def mixed_loss(s, t, y):
        return (1 - alpha) * hard_loss(s, y) + alpha * soft(s, t, y, temperature)

    if augment is None and cache_teacher:
        # in training-sized batches: they fit wherever training fits, and convolutional teachers run up to
        # twice as fast per image in batches of 64 as in batches of 1024 on a CPU (benchmarks/speed.py)
        tensors = (data.x, data.y, predict_logits(teacher, data.x, batch_size=settings.batch_size))

        def batch_loss(model, x, y, t):
            return mixed_loss(model(x), t, y)
    else:
        tensors = (data.x, data.y)

        def batch_loss(model, x, y):
            if augment is not None:
                x = augment(x)
            return mixed_loss(model(x), frozen_outputs(teacher, x, batch_size=len(x)), y)

    return fit(student, tensors, batch_loss, settings, desc="distill")
