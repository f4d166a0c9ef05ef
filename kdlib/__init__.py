"""kdlib: knowledge distillation, small enough to read, tested against the papers."""
from . import checks, data, losses, metrics, models, plots, training
from .losses import distillation_loss, kd_loss, logit_matching_loss, smoothed_cross_entropy, soft_targets

__version__ = "0.1.0"
__all__ = ["checks", "data", "losses", "metrics", "models", "plots", "training", "soft_targets", "kd_loss",
           "distillation_loss", "logit_matching_loss", "smoothed_cross_entropy"]
