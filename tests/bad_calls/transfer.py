"""Malformed calls to kdlib.transfer: image transforms, ensembled teacher labels, sets missing classes."""
import torch

from kdlib import data, models
from kdlib.transfer import digit_augmentations, ensemble_labels, rotate, shift, transfer_set_without

X = torch.zeros(6, 1, 8, 8)
SPLIT = data.Split(X, torch.arange(6) % 3)
TEACHER = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=0)
IDENTITY = [lambda images: images]

BAD_CALLS = [
    ("shift by half a pixel", lambda: shift(X, 0.5, 0), TypeError, "rows must be an integer >= -7, got float 0.5"),
    ("shift by the image size", lambda: shift(X, 0, 8), ValueError, "shift (0, 8) must be smaller than the image size (8, 8)"),
    ("shift past the top", lambda: shift(X, -8, 0), ValueError, "rows must be an integer >= -7, got -8"),
    ("shift flat images", lambda: shift(X.flatten(1), 1, 0), ValueError, "x must have 4 dimensions, got shape (6, 64)"),
    ("rotate by NaN degrees", lambda: rotate(X, float("nan")), ValueError, "degrees must be a finite number"),
    ("rotate by text", lambda: rotate(X, "10"), TypeError, "degrees must be a number > -inf, got str"),
    ("rotate integer images", lambda: rotate(X.long(), 10.0), TypeError, "x must be a floating-point tensor"),
    ("augmentations of NaN degrees", lambda: digit_augmentations(float("nan")), ValueError,
     "degrees must be a finite number > -inf, got nan"),
    ("labels from a teacher given by name", lambda: ensemble_labels("mlp", X, IDENTITY), TypeError,
     "teacher must be a torch.nn.Module, got str"),
    ("labels of NaN images", lambda: ensemble_labels(TEACHER, X + float("nan"), IDENTITY), ValueError,
     "x must be finite, got 384 NaN or infinite entries of 384"),
    ("labels of no images", lambda: ensemble_labels(TEACHER, X[:0], IDENTITY), ValueError,
     "x must be a non-empty batch of images (N, channels, H, W), got shape (0, 1, 8, 8)"),
    ("labels of a split", lambda: ensemble_labels(TEACHER, SPLIT, IDENTITY), TypeError,
     "x must be a torch.Tensor, got Split"),
    ("labels with one bare augmentation", lambda: ensemble_labels(TEACHER, X, IDENTITY[0]), TypeError,
     "augmentations must be a list of functions images -> images, got function"),
    ("labels without augmentations", lambda: ensemble_labels(TEACHER, X, []), ValueError,
     "augmentations must be a non-empty list"),
    ("labels with a cropping augmentation", lambda: ensemble_labels(TEACHER, X, [lambda x: x[..., :4, :4]]),
     ValueError, "augmentations[0] changed the images' shape from (6, 1, 8, 8) to (6, 1, 4, 4)"),
    ("labels with an augmentation returning a list", lambda: ensemble_labels(TEACHER, X, [lambda x: [x]]),
     TypeError, "augmentations[0](x) must be a torch.Tensor, got list"),
    ("labels T = 0", lambda: ensemble_labels(TEACHER, X, IDENTITY, temperature=0), ValueError,
     "temperature must be a finite number > 0, got 0"),
    ("labels with the removed device argument", lambda: ensemble_labels(TEACHER, X, IDENTITY, device="cpu"),
     TypeError, "unexpected keyword argument 'device'"),
    ("without class 3 of 3", lambda: transfer_set_without(SPLIT, [3]), ValueError,
     "missing_classes[0] must be a class of data's labels (0 to 2), got 3"),
    ("without class -1", lambda: transfer_set_without(SPLIT, [-1]), ValueError,
     "missing_classes[0] must be an integer >= 0, got -1"),
    ("without class 1.0", lambda: transfer_set_without(SPLIT, [0, 1.0]), TypeError,
     "missing_classes[1] must be an integer >= 0, got float 1.0"),
    ("without a bare class", lambda: transfer_set_without(SPLIT, 2), TypeError,
     "missing_classes must be a list of class indices, got int"),
    ("without every class", lambda: transfer_set_without(SPLIT, [0, 1, 2]), ValueError,
     "removing classes [0, 1, 2] leaves no examples"),
    ("without from an empty split", lambda: transfer_set_without(data.Split(X[:0], SPLIT.y[:0]), [1]), ValueError,
     "data is empty"),
]
