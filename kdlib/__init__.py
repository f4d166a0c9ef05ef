"""kdlib: knowledge distillation, small enough to read, tested against the papers.

Modules build on each other in one direction: arguments and devices (checks and the device policy) →
data → models → losses → metrics → training (one loop, ``fit``, with a pluggable batch loss) → the
shipped MNIST sample and teacher (samples) and the method modules (relational, assistants, ensembles, hints,
contrastive, teacher_outputs, transfer, datafree, dataset_distillation, language). A method module uses only public names of the modules before it.

The device policy (kdlib.devices), in every module: a function given a model runs where that model's
parameters are and moves its inputs there; nothing moves a caller's model or changes its train/eval
mode as a side effect; tensors are created on the device they will meet; float64 only where the device
has it; CUDA/MPS timings synchronise. Only the training functions move a model, to an explicit
``device=``, and they return it in eval mode. Every public function checks its arguments and raises
ValueError/TypeError naming the argument, what was expected and what came.
"""
from . import devices

devices.pin_cpu_kernels()  # before any tensor operation, when torch picks its CPU kernels
from . import (arguments, assistants, checks, contrastive, data, datafree, dataset_distillation, devices, ensembles,
               hints, language, llm, losses, metrics, models, plots, relational, samples, teacher_outputs, training, transfer)
from .losses import distillation_loss, dkd_loss, hard_loss, kd_loss, logit_matching_loss, smoothed_cross_entropy, soft_targets

__version__ = "0.1.0"
__all__ = ["arguments", "assistants", "checks", "contrastive", "data", "datafree", "dataset_distillation", "devices",
           "ensembles", "hints", "language", "llm", "losses", "metrics", "models", "plots", "relational", "samples",
           "teacher_outputs", "training", "transfer", "soft_targets", "kd_loss", "distillation_loss", "dkd_loss",
           "hard_loss", "logit_matching_loss", "smoothed_cross_entropy"]
