"""Model families for teachers and students: MLPs and small CNNs with width/depth knobs.

Every constructor takes a ``seed`` so that the initial weights, and with them a whole run,
are reproducible without touching the global random number generator.
"""
import math

import torch
from torch import nn

from .arguments import check_count, check_tensor
from .devices import device_of


def seeded(seed, build):
    """``build()`` a module under its own RNG state, so its initial weights depend only on ``seed``."""
    check_count("seed", seed, low=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def check_sizes(**sizes):
    """Layer sizes are integers >= 1 (a depth may be 0)."""
    for name, value in sizes.items():
        check_count(name, value, low=0 if name == "depth" else 1)


def mlp(inputs, classes, width=64, depth=2, seed=0, batch_norm=False):
    """Flatten → depth × (Linear(width) → [BatchNorm] → ReLU) → Linear(classes); depth=0 is linear."""
    if isinstance(inputs, (tuple, list, torch.Size)):
        inputs = math.prod(inputs)  # accept an image shape such as (1, 8, 8)
    check_sizes(inputs=inputs, classes=classes, width=width, depth=depth)

    def build():
        layers, size = [nn.Flatten()], inputs
        for _ in range(depth):
            layers += [nn.Linear(size, width), *([nn.BatchNorm1d(width)] if batch_norm else []), nn.ReLU()]
            size = width
        layers.append(nn.Linear(size, classes))
        return nn.Sequential(*layers)

    return seeded(seed, build)


def cnn(channels, classes, width=16, depth=2, seed=0, batch_norm=False):
    """depth × (Conv3×3 → [BatchNorm] → ReLU → MaxPool2, doubling width) → global avg pool → Linear."""
    check_sizes(channels=channels, classes=classes, width=width, depth=depth)

    def build():
        layers, size = [], channels
        for i in range(depth):
            out = width * 2**i
            # ceil_mode keeps a 1×1 map alive when a small image (8×8 digits) is pooled past its size
            norm = [nn.BatchNorm2d(out)] if batch_norm else []
            layers += [nn.Conv2d(size, out, 3, padding=1), *norm, nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            size = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(size, classes)]
        return nn.Sequential(*layers)

    return seeded(seed, build)


def penultimate(model, x):
    """The features a Sequential model feeds its last layer (the embedding RKD and hints use), computed where
    the model is and in the mode it is in (gradients flow: this is also used while training)."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"penultimate needs an nn.Sequential (kdlib.models), got {type(model).__name__}")
    check_tensor("x", x)
    return model[:-1](x.to(device_of(model)))  # (batch, features), where the model is


def convnet(channels, classes, image_size, width=32, depth=3, seed=0):
    """The ConvNet of Zhao, Mopuri & Bilen, "Dataset Condensation with Gradient Matching" (ICLR 2021), and
    Zhao & Bilen, "Dataset Condensation with Distribution Matching" (WACV 2023): depth × (Conv3×3(width) →
    InstanceNorm → ReLU → AvgPool2) → Flatten → Linear(classes). Width stays constant (the papers use 128).

    Instance norm is GroupNorm(width, width) with affine weights, as in the papers' code. image_size is the
    side of a square image or (height, width); each block halves it (floor). As in the papers' code, a
    one-channel 28×28 image (MNIST) gets padding 3 in the first convolution, so its maps are 32 → 16 → 8 → 4
    (2,048 features at width 128); every other input gets padding 1 (8×8 digits: 8 → 4 → 2 → 1).
    """
    height, side = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    check_sizes(channels=channels, classes=classes, width=width, depth=depth, image_height=height, image_width=side)
    first_padding = 3 if (channels, height, side) == (1, 28, 28) else 1
    height, side = height + 2 * first_padding - 2, side + 2 * first_padding - 2  # after the first 3×3 convolution
    if min(height, side) < 2**depth:
        raise ValueError(f"image_size must be at least 2**depth = {2**depth} so {depth} poolings leave a pixel, "
                         f"got {image_size!r}")

    def build():
        layers, size = [], channels
        for d in range(depth):
            layers += [nn.Conv2d(size, width, 3, padding=first_padding if d == 0 else 1), nn.GroupNorm(width, width, affine=True), nn.ReLU(),
                       nn.AvgPool2d(2)]
            size = width
        features = width * (height // 2**depth) * (side // 2**depth)  # (width, H / 2^depth, W / 2^depth) flattened
        layers += [nn.Flatten(), nn.Linear(features, classes)]
        return nn.Sequential(*layers)

    return seeded(seed, build)
