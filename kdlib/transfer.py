"""Transfer sets labelled by a teacher: ensembled labels over augmentations, and missing classes.

- Data distillation (Radosavovic et al., CVPR 2018, "Data Distillation: Towards
  Omni-Supervised Learning"): run one teacher on several transformed copies of each
  unlabelled input and average its predictions; the ensemble is a better labeller than any
  single pass.
- A transfer set that lacks some classes (Hinton et al. 2015 left out every 3) gives a
  student that rarely predicts them: ``transfer_set_without`` builds such a set.
"""
import math

import torch
import torch.nn.functional as F

from .data import Split
from .losses import _check_temperature
from .training import _check_split, predict_logits


def shift(x, rows, cols):
    """Move images (batch, channels, H, W) down by ``rows`` and right by ``cols`` pixels, zero-filled."""
    height, width = x.shape[-2:]
    if abs(rows) >= height or abs(cols) >= width:
        raise ValueError(f"shift ({rows}, {cols}) must be smaller than the image size ({height}, {width})")
    padded = F.pad(x, (max(cols, 0), max(-cols, 0), max(rows, 0), max(-rows, 0)))  # (batch, C, H+|r|, W+|c|)
    top, left = max(-rows, 0), max(-cols, 0)
    return padded[..., top : top + height, left : left + width]


def rotate(x, degrees):
    """Rotate images (batch, channels, H, W) about their centre by ``degrees`` (bilinear, zero outside).

    Positive angles turn the image clockwise as displayed (row 0 at the top).
    """
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    # affine_grid maps output coordinates in [-1, 1] to input coordinates: the inverse rotation
    theta = torch.tensor([[cos, sin, 0.0], [-sin, cos, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)  # (batch, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def digit_augmentations(degrees=10.0):
    """Small deterministic transforms of digit images: identity, ±1-pixel shifts, ±``degrees`` rotations."""
    return [
        lambda x: x,
        lambda x: shift(x, 1, 0),
        lambda x: shift(x, -1, 0),
        lambda x: shift(x, 0, 1),
        lambda x: shift(x, 0, -1),
        lambda x: rotate(x, degrees),
        lambda x: rotate(x, -degrees),
    ]


def ensemble_labels(teacher, x, augmentations, temperature=1.0, device=None):
    """Radosavovic et al., CVPR 2018, "Data Distillation": the teacher's prediction averaged over transforms.

    soft = (1/A) Σ_a softmax(teacher(a(x)) / T) over the A augmentations; hard = argmax soft.
    The paper averages the outputs of geometric transforms (its transforms are label-preserving
    for classification, so no inverse transform is needed) and trains on the hard labels.
    Returns (soft (N, classes), hard (N,) int64), on the CPU.
    """
    _check_temperature(temperature)
    if not torch.is_tensor(x) or x.dim() != 4 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch of images (N, channels, H, W), got {getattr(x, 'shape', x)}")
    augmentations = list(augmentations)
    if not augmentations or not all(callable(a) for a in augmentations):
        raise ValueError("augmentations must be a non-empty list of functions images -> images")
    total = 0
    for augment in augmentations:
        augmented = augment(x)
        if augmented.shape != x.shape:
            raise ValueError(f"an augmentation changed the images' shape from {tuple(x.shape)} to {tuple(augmented.shape)}")
        total = total + F.softmax(predict_logits(teacher, augmented, device=device) / temperature, dim=1)
    soft = total / len(augmentations)  # (N, classes)
    return soft, soft.argmax(dim=1)


def transfer_set_without(data, missing_classes):
    """The Split with every example whose label is in ``missing_classes`` removed."""
    _check_split(data)
    missing = torch.as_tensor(list(missing_classes), dtype=data.y.dtype)
    keep = ~torch.isin(data.y, missing)  # (N,)
    if not keep.any():
        raise ValueError(f"removing classes {missing.tolist()} leaves no examples")
    return Split(data.x[keep], data.y[keep])
