"""kdlib: knowledge distillation, small enough to read, tested against the papers."""
from . import (assistants, checks, data, datafree, dataset_distillation, ensembles, hints, language, losses, metrics,
               models, plots, relational, teacher_outputs, training, transfer)
from .losses import distillation_loss, kd_loss, logit_matching_loss, smoothed_cross_entropy, soft_targets

__version__ = "0.1.0"
__all__ = ["assistants", "checks", "data", "datafree", "dataset_distillation", "ensembles", "hints", "language",
           "losses", "metrics", "models", "plots", "relational", "teacher_outputs", "training", "transfer",
           "soft_targets", "kd_loss", "distillation_loss", "logit_matching_loss", "smoothed_cross_entropy"]
