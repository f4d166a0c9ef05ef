"""kdlib's one device policy, in four helpers every module uses.

- A function given a model runs where that model's parameters are (``device_of``) and moves its
  inputs there; what it returns is on that device unless its docstring says "on the CPU".
- Nothing moves a caller's model or changes its train/eval mode as a side effect: a function that
  needs eval mode wraps the call in ``eval_mode(model)``, which restores every submodule's mode.
  Only the training functions (``train``, ``distill``, ``fit`` and the methods built on them) move
  a model, to their ``device=`` when one is given, and they return it in eval mode, trained.
- Tensors a function creates are created on the device they will meet; float64 only where the
  device has it (Apple's MPS has none: ``widest_float``); timings on CUDA/MPS synchronise first.
- On the CPU, one set of kernels on every x86-64 machine (``pin_cpu_kernels``, called by ``import kdlib``), so
  a seed reproduces a run bit for bit on any of them, not only on the machine that ran it.
"""
import os
import platform
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn


# torch (ATen), MKL and oneDNN each pick their vectorised kernels once, at their first use
PINNED_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_cpu_kernels():
    """Ask torch, MKL and oneDNN for their AVX2 kernels on any x86-64 CPU that has AVX2 (Intel and AMD since
    2013), unless the variable is already set; returns the kernels torch uses ("AVX2", "AVX512", "DEFAULT", ...).

    Why: torch picks AVX-512 kernels where the CPU has them, and they round sums differently in the last bit;
    a training run amplifies that (lesson 03's 30-image students moved by up to 0.007 between the two). Pinned,
    a lesson reproduces its stored numbers on any such machine. It must run before the first tensor operation,
    when the kernels are chosen, so ``import kdlib`` calls it first. Apple silicon and other ARM CPUs have no
    AVX: nothing to pin there.
    """
    if platform.machine().lower() in ("x86_64", "amd64") and _has_avx2():
        for name, value in PINNED_KERNELS.items():
            os.environ.setdefault(name, value)
    return torch.backends.cpu.get_cpu_capability()


def _has_avx2():
    """AVX2 and FMA in /proc/cpuinfo on Linux; assumed elsewhere (x86-64 Macs and PCs since 2013)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return True
    return {"avx2", "fma"} <= flags


def default_device():
    """CUDA if present, then Apple's MPS, else the CPU: a suggestion for where to put a new model."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_of(model):
    """The device of ``model``'s first parameter (or buffer); the CPU for a model with neither."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@contextmanager
def eval_mode(model):
    """Run a block with ``model`` in eval mode, then put every submodule back in the mode it was in.

    ``model.train(was_training)`` would not do: it sets all submodules alike, so a caller's frozen
    batch-norm layer inside a training model would come back in training mode.
    """
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def widest_float(device):
    """float64 where the device has it, float32 on Apple's MPS (which has no float64)."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def synchronize(device):
    """Wait for queued kernels on CUDA or MPS, so a wall-clock timing measures the work, not its launch."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
