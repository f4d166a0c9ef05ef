"""Proving kdlib's device policy without a GPU.

- ``untouched(model)``: a snapshot of every submodule's train/eval mode and every tensor's device and dtype;
  compare it before and after a call to prove the call left the caller's model as it found it.
- ``on_meta(model)``: a copy of the model on PyTorch's ``meta`` device (shapes, no values), with a hook that
  records the device of every input its submodules receive. A function that follows the model moves its
  inputs there, so the hook sees only ``meta``; one that forgets feeds it CPU tensors, which the hook records
  (and torch then refuses to mix). Reading values on meta raises, so a call may end in such an error: the
  test then judges by what the hook saw and by the error not being a device mix-up.
"""
import copy

import torch
import torch.nn.functional as F

from kdlib import data, models
from kdlib.data import UNLABELLED

MIXED_DEVICES = ("Expected all tensors to be on the same device", "is not on the expected device", "is on the meta device", "device type cpu",
                 "found at least two devices")


def untouched(model):
    """(module name, training flag) for every submodule and (name, device, dtype) for every tensor."""
    modes = [(name, module.training) for name, module in model.named_modules()]
    tensors = [(name, t.device, t.dtype) for name, t in [*model.named_parameters(), *model.named_buffers()]]
    return modes, tensors


def on_meta(model):
    """A meta-device copy of ``model`` and the list its hooks fill with the devices of the inputs they see."""
    meta = copy.deepcopy(model).to("meta")
    seen = []

    def record(module, inputs):
        seen.extend(t.device.type for t in inputs if torch.is_tensor(t))

    for module in meta.modules():
        if not list(module.children()):  # leaves: the layers that do the arithmetic
            module.register_forward_pre_hook(record)
    return meta, seen


def follows_meta(call):
    """Run ``call()``; return (devices its model's layers saw, the error it ended with or None). Fails the
    test at once if torch reported a mix of devices."""
    try:
        call()
        error = None
    except (RuntimeError, NotImplementedError, ValueError) as e:
        error = e
    if error is not None and any(fragment in str(error) for fragment in MIXED_DEVICES):
        raise AssertionError(f"devices were mixed: {error}") from error
    return error


def held_by_a_caller(model, frozen_layer=False):
    """``model`` as a caller may hold it: in train mode, optionally with its second layer frozen in eval mode."""
    model.train()
    if frozen_layer:
        model[1].eval()
    return model


def caller_model(mode, width=6, seed=0, classes=3):
    """A batch-norm MLP as a caller may hold it: "train" mode, or "mixed": eval mode with its batch-norm
    layer left training."""
    model = models.mlp((1, 8, 8), classes, width=width, depth=1, seed=seed, batch_norm=True)
    if mode == "mixed":
        model.eval()[2].train()
    return model


def trained_in_eval_mode(model, before=None):
    """After a training function: every submodule in eval mode, every tensor on the device and dtype it had in
    ``before`` (an ``untouched`` snapshot), or on the CPU."""
    modes, tensors = untouched(model)
    where = tensors == before[1] if before is not None else {t[1].type for t in tensors} == {"cpu"}
    return not any(training for _, training in modes) and where


# 12 random 8×8 images of 3 classes, a third of them UNLABELLED (a transfer set), and a one-epoch run over them
TOY = data.Split(torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0)),
                 torch.tensor([0, 1, 2, UNLABELLED] * 3))
QUICK = dict(epochs=1, batch_size=4, progress=False)


def hinton_objective64(student_logits, soft_targets, labels, temperature, alpha):
    """Hinton's objective written out in float64 for one batch, the value a one-batch epoch of ``fit`` records:
    (1 − α)·CE(student, labelled rows) + α·T²·KL(soft_targets ‖ softmax(student/T)); ``soft_targets`` the
    teacher's already softened probabilities (N, C), ``labels`` with UNLABELLED rows left out of the hard term."""
    labelled = labels != UNLABELLED
    hard = F.cross_entropy(student_logits[labelled], labels[labelled])
    q = soft_targets
    soft = temperature**2 * (q * (q.log() - F.log_softmax(student_logits / temperature, dim=1))).sum(dim=1).mean()
    return (1 - alpha) * hard + alpha * soft
