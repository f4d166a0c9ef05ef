"""Malformed calls to kdlib.dataset_distillation: starting sets, the four methods, evaluation and poisoning."""
import torch

from kdlib import models
from kdlib.data import Split
from kdlib.dataset_distillation import (crop_scale_rotate, distill_dataset, distribution_matching,
                                        distribution_matching_loss, evaluate_synthetic, generator_matching,
                                        gradient_distance, gradient_matching, ImageGenerator, initial_synthetic,
                                        inner_step, poison_labels, random_shift, unrolled_train)

X = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
REAL = Split(X, torch.arange(6) % 3)
SYNTHETIC = Split(X[:3], torch.arange(3))
BUILD = lambda seed: models.mlp((1, 4, 4), 3, width=4, depth=1, seed=seed)
BUILD_5 = lambda seed: models.mlp((1, 4, 4), 5, width=4, depth=1, seed=seed)
QUICK = dict(progress=False)


def evaluate(synthetic=SYNTHETIC, build=BUILD, **options):
    return evaluate_synthetic(synthetic, build, REAL, **{"runs": 1, "epochs": 1, "progress": False, **options})


BAD_CALLS = [
    # the starting set and augmentations
    ("0 images per class", lambda: initial_synthetic(REAL, 0), ValueError, "images_per_class must be an integer >= 1, got 0"),
    ("unknown init", lambda: initial_synthetic(REAL, 1, init="zeros"), ValueError, "init must be one of ('real', 'noise')"),
    ("more images than a class has", lambda: initial_synthetic(REAL, 3), ValueError, "class 0 has 2 real images"),
    ("empty real set", lambda: initial_synthetic(Split(X[:0], REAL.y[:0]), 1), ValueError, "real is empty"),
    ("flat real images", lambda: initial_synthetic(Split(X.flatten(1), REAL.y), 1), ValueError, "(N, channels, H, W)"),
    ("NaN real images", lambda: initial_synthetic(Split(X / 0 - X / 0, REAL.y), 1), ValueError, "real.x must be finite"),
    ("float real labels", lambda: distribution_matching(BUILD, Split(X, REAL.y.float()), 1, **QUICK), TypeError, "int64"),
    ("negative real labels", lambda: distribution_matching(BUILD, Split(X, REAL.y - 1), 1, **QUICK), ValueError, ">= 0"),
    ("random_shift of a 3-D batch", lambda: random_shift(X[0], 1, torch.Generator()), ValueError, "4 dimensions"),
    ("random_shift negative", lambda: random_shift(X, -1, torch.Generator()), ValueError, "max_shift must be an integer >= 0"),
    ("crop_scale_rotate scale 1", lambda: crop_scale_rotate(X, torch.Generator(), max_scale=1.0), ValueError, "[0, 1)"),
    # the methods
    ("Wang 0 steps", lambda: distill_dataset(BUILD, REAL, 1, steps=0, **QUICK), ValueError, "steps must be an integer >= 1, got 0"),
    ("Wang NaN image lr", lambda: distill_dataset(BUILD, REAL, 1, image_lr=float("nan"), **QUICK), ValueError, "image_lr must be a finite number > 0"),
    ("Wang non-integer iterations", lambda: distill_dataset(BUILD, REAL, 1, iterations=2.5, **QUICK), TypeError, "iterations must be an integer"),
    ("Wang build_model as text", lambda: distill_dataset("mlp", REAL, 1, **QUICK), TypeError, "build_model must be a function"),
    ("Wang build_model returns a function", lambda: distill_dataset(lambda seed: BUILD, REAL, 1, **QUICK),
     TypeError, "build_model(0) must be a torch.nn.Module, got function"),
    ("Wang class-count mismatch", lambda: distill_dataset(BUILD_5, REAL, 1, **QUICK), ValueError, "real's 3 classes, got 5"),
    ("DM class-count mismatch", lambda: distribution_matching(BUILD_5, REAL, 1, **QUICK), ValueError, "real's 3 classes, got 5"),
    ("DM negative max_shift", lambda: distribution_matching(BUILD, REAL, 1, max_shift=-1, **QUICK), ValueError, "max_shift"),
    ("DM loss label out of range",
     lambda: distribution_matching_loss(BUILD(0)[:-1], X, REAL.y + 1, X[:3], SYNTHETIC.y, 3), ValueError, "real_y must be class indices in [0, 2]"),
    ("DM loss embed as text", lambda: distribution_matching_loss("embed", X, REAL.y, X[:3], SYNTHETIC.y, 3), TypeError, "embed must be a torch.nn.Module"),
    ("DC network lr 0", lambda: gradient_matching(BUILD, REAL, 1, network_lr=0, **QUICK), ValueError, "network_lr must be a finite number > 0, got 0"),
    ("DC outer loop 0", lambda: gradient_matching(BUILD, REAL, 1, outer_loop=0, **QUICK), ValueError, "outer_loop must be an integer >= 1, got 0"),
    ("gradient_distance of tensors", lambda: gradient_distance(torch.zeros(2, 2), torch.zeros(2, 2)), TypeError, "real_grads must be a list"),
    ("inner_step without params", lambda: inner_step({}, X, REAL.y, 0.1, BUILD(0)), TypeError, "params must be a non-empty dict"),
    ("unrolled_train lrs as a list", lambda: unrolled_train(BUILD(0), SYNTHETIC, [0.1]), TypeError, "learning_rates must be a torch.Tensor"),
    ("unrolled_train label beyond the model", lambda: unrolled_train(BUILD(0), Split(X[:3], SYNTHETIC.y + 1), torch.ones(1)),
     ValueError, "synthetic.y must be class indices in [0, 2]"),
    # evaluation
    ("evaluate 0 runs", lambda: evaluate(runs=0), ValueError, "runs must be an integer >= 1, got 0"),
    ("evaluate unknown recipe", lambda: evaluate(recipe="sgd"), ValueError, "recipe must be one of ('adam', 'papers')"),
    ("evaluate recipe setting overridden", lambda: evaluate(optimizer="sgd"), ValueError, "['optimizer'] are set by the recipe"),
    ("evaluate NaN lr", lambda: evaluate(lr=float("nan")), ValueError, "lr must be a finite number > 0, got nan"),
    ("evaluate 0 epochs", lambda: evaluate(epochs=0), ValueError, "epochs must be an integer >= 1, got 0"),
    ("evaluate unknown setting", lambda: evaluate(epoch=3), TypeError, "unknown training setting(s) ['epoch']"),
    ("evaluate labels beyond the model", lambda: evaluate(synthetic=Split(X[:3], SYNTHETIC.y + 2)), ValueError, "synthetic.y"),
    ("evaluate images of another size", lambda: evaluate(synthetic=Split(X[:3, :, :2, :2], SYNTHETIC.y)), ValueError, "same shape"),
    # poisoning
    ("poison with shift and mapping", lambda: poison_labels(SYNTHETIC, shift=1, mapping={0: 1, 1: 0}), ValueError, "not both"),
    ("poison mapping id out of range", lambda: poison_labels(SYNTHETIC, mapping={1: 7, 7: 1}), ValueError,
     "mapping targets must be classes in [0, 2], got 7"),
    ("poison mapping not a permutation", lambda: poison_labels(SYNTHETIC, mapping={1: 2}), ValueError, "permute"),
    ("poison mapping with text ids", lambda: poison_labels(SYNTHETIC, mapping={"a": 1}), TypeError, "mapping source must be an integer"),
    ("poison too few classes", lambda: poison_labels(SYNTHETIC, classes=2), ValueError, "[0, 1] for 2 classes"),
    ("poison non-integer shift", lambda: poison_labels(SYNTHETIC, shift=0.5), TypeError, "shift must be an integer"),
]
BAD_CALLS += [
    # the generator-based method
    ("generator 0 latent dims", lambda: generator_matching(BUILD, REAL, 1, latent_dim=0, **QUICK), ValueError,
     "latent_dim must be an integer >= 1, got 0"),
    ("generator NaN lr", lambda: generator_matching(BUILD, REAL, 1, lr=float("nan"), **QUICK), ValueError,
     "lr must be a finite number > 0"),
    ("generator fractional hidden", lambda: generator_matching(BUILD, REAL, 1, hidden=2.5, **QUICK), TypeError,
     "hidden must be an integer"),
    ("generator build_model as text", lambda: generator_matching("mlp", REAL, 1, **QUICK), TypeError,
     "build_model must be a function"),
    ("ImageGenerator empty image", lambda: ImageGenerator(2, 3, (1, 0, 4), 8, 0.0, 1.0), ValueError,
     "image_shape[1] must be an integer >= 1, got 0"),
    ("ImageGenerator empty pixel range", lambda: ImageGenerator(2, 3, (1, 4, 4), 8, 1.0, 1.0), ValueError, "high > low"),
    ("generator class-count mismatch", lambda: generator_matching(BUILD_5, REAL, 1, **QUICK), ValueError,
     "real's 3 classes, got 5"),
]
