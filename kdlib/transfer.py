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

from .arguments import (check_count, check_finite, check_model, check_number, check_split, check_temperature,
                        check_tensor)
from .data import Split
from .devices import device_of
from .training import predict_logits


def shift(x, rows, cols):
    """Move images (batch, channels, H, W) down by ``rows`` and right by ``cols`` pixels, zero-filled."""
    check_tensor("x", x, dims=4)
    height, width = x.shape[-2:]
    check_count("rows", rows, low=1 - height)
    check_count("cols", cols, low=1 - width)
    if rows >= height or cols >= width:
        raise ValueError(f"shift ({rows}, {cols}) must be smaller than the image size ({height}, {width})")
    padded = F.pad(x, (max(cols, 0), max(-cols, 0), max(rows, 0), max(-rows, 0)))  # (batch, C, H+|r|, W+|c|)
    top, left = max(-rows, 0), max(-cols, 0)
    return padded[..., top : top + height, left : left + width]


def rotate(x, degrees):
    """Rotate images (batch, channels, H, W) about their centre by ``degrees`` (bilinear, zero outside).

    Positive angles turn the image clockwise as displayed (row 0 at the top).
    """
    check_tensor("x", x, dims=4, floating=True)
    check_number("degrees", degrees, low=-math.inf)  # any finite angle
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    # affine_grid maps output coordinates in [-1, 1] to input coordinates: the inverse rotation
    theta = torch.tensor([[cos, sin, 0.0], [-sin, cos, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)  # (batch, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def digit_augmentations(degrees=10.0):
    """Small deterministic transforms of digit images: identity, ±1-pixel shifts, ±``degrees`` rotations."""
    check_number("degrees", degrees, low=-math.inf)  # now, not at the first call of a rotation
    return [
        lambda x: x,
        lambda x: shift(x, 1, 0),
        lambda x: shift(x, -1, 0),
        lambda x: shift(x, 0, 1),
        lambda x: shift(x, 0, -1),
        lambda x: rotate(x, degrees),
        lambda x: rotate(x, -degrees),
    ]


def ensemble_labels(teacher, x, augmentations, temperature=1.0):
    """Radosavovic et al., CVPR 2018, "Data Distillation": the teacher's prediction averaged over transforms.

    soft = (1/A) Σ_a softmax(teacher(a(x)) / T) over the A augmentations; hard = argmax soft.
    The paper averages the outputs of geometric transforms (its transforms are label-preserving
    for classification, so no inverse transform is needed) and trains on the hard labels.
    The images are moved to the teacher once and transformed there; the teacher runs in eval mode
    (its modes are restored). Returns (soft (N, classes), hard (N,) int64), where ``x`` is.
    """
    check_model("teacher", teacher)
    check_tensor("x", x, dims=4, floating=True)
    if len(x) == 0:
        raise ValueError(f"x must be a non-empty batch of images (N, channels, H, W), got shape {tuple(x.shape)}")
    check_finite("x", x)
    check_temperature(temperature)
    if not isinstance(augmentations, (list, tuple)) or not all(callable(a) for a in augmentations):
        raise TypeError(f"augmentations must be a list of functions images -> images, got "
                        f"{type(augmentations).__name__}")
    if len(augmentations) == 0:
        raise ValueError("augmentations must be a non-empty list of functions images -> images, got an empty list")
    images, total = x.to(device_of(teacher)), 0  # (N, C, H, W), where the teacher is
    for k, augment in enumerate(augmentations):
        augmented = augment(images)
        check_tensor(f"augmentations[{k}](x)", augmented)
        if augmented.shape != images.shape:
            raise ValueError(f"augmentations[{k}] changed the images' shape from {tuple(x.shape)} to "
                             f"{tuple(augmented.shape)}")
        total = total + F.softmax(predict_logits(teacher, augmented) / temperature, dim=1)  # (N, classes)
    soft = total / len(augmentations)  # (N, classes)
    return soft.to(x.device), soft.argmax(dim=1).to(x.device)


def transfer_set_without(data, missing_classes):
    """The Split with every example whose label is in ``missing_classes`` (class indices) removed."""
    check_split(data)
    if torch.is_tensor(missing_classes):
        missing_classes = missing_classes.tolist()
    if not isinstance(missing_classes, (list, tuple, range, set)):
        raise TypeError(f"missing_classes must be a list of class indices, got {type(missing_classes).__name__}")
    missing_classes, largest = list(missing_classes), int(data.y.max())
    for k, c in enumerate(missing_classes):
        check_count(f"missing_classes[{k}]", c, low=0)
        if c > largest:
            raise ValueError(f"missing_classes[{k}] must be a class of data's labels (0 to {largest}), got {c}")
    keep = ~torch.isin(data.y, torch.tensor(missing_classes, dtype=data.y.dtype, device=data.y.device))  # (N,)
    if not keep.any():
        raise ValueError(f"removing classes {missing_classes} leaves no examples")
    return Split(data.x[keep], data.y[keep])
