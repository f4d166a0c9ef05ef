"""The training loop: ``train`` on labels, ``distill`` from a teacher, ``evaluate`` on a split.

One loop (``_fit``) serves both; they differ only in the loss of a batch. A run is
bit-identical on CPU for one ``seed`` (model seeds live in ``kdlib.models``) and one thread
count. A loss that turns non-finite stops the run with an error naming the epoch and step.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import UNLABELLED, Split, make_loader
from .losses import _check_fraction, _check_temperature, kd_loss
from .metrics import accuracy


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and step."""


@dataclass
class History:
    """Per-epoch mean training loss, learning rate at the epoch's start and, with a validation split, accuracy."""

    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)


def default_device():
    """CUDA if present, then Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_split(data, name="data"):
    if not isinstance(data, tuple) or len(data) != 2 or not all(torch.is_tensor(t) for t in data):
        raise TypeError(f"{name} must be a kdlib.data.Split (x, y) of tensors, got {type(data).__name__}")
    if len(data[0]) != len(data[1]):
        raise ValueError(f"{name}.x and {name}.y must have the same length, got {len(data[0])} and {len(data[1])}")
    if len(data[0]) == 0:
        raise ValueError(f"{name} is empty; expected at least one example")


@torch.no_grad()
def predict_logits(model, x, batch_size=1024, device=None):
    """Logits of ``model`` on inputs ``x`` in eval mode, batched, returned on the CPU."""
    device = device or default_device()
    was_training = model.training
    model.eval().to(device)
    out = torch.cat([model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out  # (N, classes)


def evaluate(model, data, batch_size=1024, device=None):
    """Accuracy of ``model`` on a Split."""
    _check_split(data)
    return accuracy(predict_logits(model, data.x, batch_size, device), data.y)


LR_SCHEDULES = ("constant", "cosine", "step")
OPTIMIZERS = ("adam", "sgd")


def _fit(model, tensors, batch_loss, *, epochs, lr, batch_size, seed, weight_decay, val, device, progress, desc,
         lr_schedule="constant", optimizer="adam"):
    """Adam (or SGD with momentum 0.9) over shuffled mini-batches of ``tensors``; ``batch_loss(model, *batch)``
    gives the loss.

    lr_schedule "cosine" lowers the learning rate from lr to 0 along a half cosine over all steps, "step"
    divides it by 10 halfway: longer runs then end in a minimum instead of bouncing around one at full step size.
    """
    if epochs < 1 or lr <= 0:
        raise ValueError(f"epochs must be >= 1 and lr > 0, got epochs={epochs}, lr={lr}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    torch.manual_seed(seed)  # dropout and any other in-model randomness
    loader = make_loader(tensors, batch_size=batch_size, shuffle=True, seed=seed)
    model.to(device).train()
    if optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    total_steps, scheduler = epochs * len(loader), None
    if lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    elif lr_schedule == "step":
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [total_steps // 2], gamma=0.1)
    history = History()
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
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
            if scheduler is not None:
                scheduler.step()
            total, count = total + loss.item() * len(batch[0]), count + len(batch[0])
        history.loss.append(total / count)
        if val is not None:
            history.val_accuracy.append(evaluate(model, val, device=device))
            model.train()
        bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
    model.eval()
    return history


def train(model, data, *, epochs=30, lr=1e-3, batch_size=64, seed=0, label_smoothing=0.0, augment=None,
          weight_decay=0.0, lr_schedule="constant", val=None, device=None, progress=True):
    """Train ``model`` on labelled data (x, y) with cross-entropy (optionally label-smoothed).

    augment(x), if given, transforms every batch of inputs (e.g. random shifts) before the model sees it.
    lr_schedule: "constant", "cosine" (lr → 0 along a half cosine) or "step" (lr ÷ 10 halfway).
    """
    _check_split(data)
    _check_fraction("label_smoothing", label_smoothing)
    if (data.y < 0).any():
        raise ValueError("train() needs every label; for UNLABELLED (-1) examples use distill() with a teacher")

    def batch_loss(model, x, y):
        if augment is not None:
            x = augment(x)
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    return _fit(model, Split(data.x, data.y), batch_loss, epochs=epochs, lr=lr, batch_size=batch_size,
                seed=seed, weight_decay=weight_decay, val=val, device=device or default_device(),
                progress=progress, desc="train", lr_schedule=lr_schedule)


def distill(student, teacher, data, *, temperature=4.0, alpha=0.9, epochs=30, lr=1e-3, batch_size=64,
            seed=0, augment=None, cache_teacher=True, weight_decay=0.0, lr_schedule="constant", val=None,
            device=None, progress=True):
    """Train ``student`` on (1 − α)·CE(labels) + α·kd_loss(student, teacher, T) (Hinton et al. 2015).

    Rows labelled ``UNLABELLED`` (-1) are a transfer set: they contribute the soft term only.
    The teacher is frozen; unless inputs are augmented (``augment(x)`` per batch) or
    ``cache_teacher=False``, its logits are computed once and reused every epoch.
    lr_schedule: "constant", "cosine" (lr → 0 along a half cosine) or "step" (lr ÷ 10 halfway).
    """
    _check_split(data)
    _check_temperature(temperature)
    _check_fraction("alpha", alpha)
    device = device or default_device()
    teacher.to(device).eval()  # frozen: its logits come from no_grad passes below

    def mixed_loss(s, t, y):
        # Equals distillation_loss(s, t, y, T, α) when every row is labelled. The hard term is the mean
        # over labelled rows only (0 if none), written without boolean indexing or a host sync.
        labelled = (y != UNLABELLED).sum().clamp(min=1)
        hard = F.cross_entropy(s, y, ignore_index=UNLABELLED, reduction="sum") / labelled
        return (1 - alpha) * hard + alpha * kd_loss(s, t, temperature)

    if augment is None and cache_teacher:
        # in training-sized batches: they fit wherever training fits, and convolutional teachers run up to
        # twice as fast per image in batches of 64 as in batches of 1024 on a CPU (benchmarks/speed.py)
        tensors = (data.x, data.y, predict_logits(teacher, data.x, batch_size=batch_size, device=device))

        def batch_loss(model, x, y, t):
            return mixed_loss(model(x), t, y)
    else:
        tensors = (data.x, data.y)

        def batch_loss(model, x, y):
            if augment is not None:
                x = augment(x)
            with torch.no_grad():
                t = teacher(x)
            return mixed_loss(model(x), t, y)

    return _fit(student, tensors, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                weight_decay=weight_decay, val=val, device=device, progress=progress, desc="distill",
                lr_schedule=lr_schedule)
