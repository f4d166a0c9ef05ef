"""Malformed calls to kdlib.datafree: metadata, reconstruction and DeepInversion."""
import torch

from kdlib import datafree, models
from kdlib.data import Split

X = torch.rand(6, 1, 2, 2, generator=torch.Generator().manual_seed(0))
SPLIT = Split(X, torch.arange(6) % 3)
TEACHER = models.mlp((1, 2, 2), 3, width=4, depth=1)
BN_TEACHER = models.mlp((1, 2, 2), 3, width=4, depth=1, batch_norm=True).eval()
METADATA = datafree.record_metadata(TEACHER, SPLIT, "all_layers")
LABELS = torch.arange(3)
PIXELS = torch.rand(3, 1, 2, 2, requires_grad=True)


def reconstruct(teacher=TEACHER, metadata=METADATA, **options):
    return datafree.reconstruct(teacher, metadata, **{"count_per_class": 1, "steps": 1, "progress": False, **options})


def deep_inversion(input_shape=(1, 2, 2), classes=3, **options):
    return datafree.deep_inversion(BN_TEACHER, input_shape, classes,
                                   **{"count_per_class": 1, "steps": 1, "progress": False, **options})


BAD_CALLS = [
    # record_metadata
    ("metadata from empty data", lambda: datafree.record_metadata(TEACHER, Split(X[:0], SPLIT.y[:0])), ValueError, "empty"),
    ("metadata from NaN inputs", lambda: datafree.record_metadata(TEACHER, Split(X * float("nan"), SPLIT.y)),
     ValueError, "data.x must be finite"),
    ("metadata with float labels", lambda: datafree.record_metadata(TEACHER, Split(X, SPLIT.y.float())), TypeError, "int64"),
    ("metadata label beyond the teacher's classes", lambda: datafree.record_metadata(TEACHER, Split(X, SPLIT.y + 1)),
     ValueError, "class indices in [0, 2] for 3 classes"),
    ("metadata one example per class", lambda: datafree.record_metadata(TEACHER, Split(X[:3], SPLIT.y[:3])),
     ValueError, "at least 2 examples each"),
    ("metadata unknown kind", lambda: datafree.record_metadata(TEACHER, SPLIT, "middle"), ValueError, "kind must be one of"),
    ("metadata non-integer components", lambda: datafree.record_metadata(TEACHER, SPLIT, "spectral", components=2.5),
     TypeError, "components must be an integer >= 1, got float"),
    ("metadata batch size 0", lambda: datafree.record_metadata(TEACHER, SPLIT, batch_size=0), ValueError, "batch_size"),
    ("metadata teacher as text", lambda: datafree.record_metadata("mlp", SPLIT), TypeError, "teacher must be a torch.nn.Module, got str"),
    # reconstruction
    ("reconstruct 0 per class", lambda: reconstruct(count_per_class=0), ValueError, "count_per_class must be an integer >= 1, got 0"),
    ("reconstruct non-integer steps", lambda: reconstruct(steps=2.0), TypeError, "steps must be an integer >= 1, got float"),
    ("reconstruct NaN lr", lambda: reconstruct(lr=float("nan")), ValueError, "lr must be a finite number > 0, got nan"),
    ("reconstruct noise_scale 0", lambda: reconstruct(noise_scale=0.0), ValueError, "noise_scale must be a finite number > 0"),
    ("reconstruct noise_scale 2", lambda: reconstruct(noise_scale=2.0), ValueError, "noise_scale must be in (0, 1]"),
    ("reconstruct negative seed", lambda: reconstruct(seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    ("reconstruct from a dict", lambda: reconstruct(metadata={"means": []}), TypeError, "metadata must come from record_metadata"),
    ("reconstruct with another teacher", lambda: reconstruct(teacher=models.mlp((1, 2, 2), 3, width=5, depth=1)),
     ValueError, "sizes [5, 3] but the metadata has [4, 3]"),
    ("sample_targets label out of range", lambda: datafree.sample_targets(METADATA, LABELS + 3), ValueError, "[0, 2]"),
    ("sample_targets float labels", lambda: datafree.sample_targets(METADATA, LABELS.float()), TypeError, "int64"),
    ("matching_loss missing a layer", lambda: datafree.matching_loss([torch.zeros(3, 4), torch.zeros(3, 3)], [torch.zeros(3, 3)]),
     ValueError, "2 layers and 1 targets"),
    ("matching_loss shape mismatch", lambda: datafree.matching_loss([torch.zeros(3, 4)], [torch.zeros(1, 4)]),
     ValueError, "same shape, got (3, 4) and (1, 4)"),
    ("reconstruction_step on frozen pixels",
     lambda: datafree.reconstruction_step(TEACHER, PIXELS.detach(), [torch.zeros(3, 3)], "top_layer", None),
     ValueError, "inputs must require gradients"),
    ("reconstruction_step without an optimizer",
     lambda: datafree.reconstruction_step(TEACHER, PIXELS, [torch.zeros(3, 3)], "top_layer", 0.05),
     TypeError, "optimizer must be a torch.optim.Optimizer"),
    ("activations of a non-Sequential", lambda: datafree.activations(torch.nn.Linear(4, 3), X), TypeError, "nn.Sequential"),
    ("activations of int images", lambda: datafree.activations(TEACHER, X.long()), TypeError, "floating-point"),
    # DeepInversion
    ("BN loss without BatchNorm", lambda: datafree.batchnorm_statistics_loss(TEACHER, X), ValueError, "BatchNorm"),
    ("DI loss label out of range", lambda: datafree.deep_inversion_loss(BN_TEACHER, PIXELS, LABELS + 1),
     ValueError, "labels must be class indices in [0, 2]"),
    ("DI loss labels too short", lambda: datafree.deep_inversion_loss(BN_TEACHER, PIXELS, LABELS[:2]), ValueError, "(3,)"),
    ("DI loss negative tv weight", lambda: datafree.deep_inversion_loss(BN_TEACHER, PIXELS, LABELS, tv_weight=-1.0),
     ValueError, "tv_weight must be a finite number >= 0"),
    ("DI class-count mismatch", lambda: deep_inversion(classes=5), ValueError, "teacher has 3 classes but classes=5"),
    ("DI input shape as an int", lambda: deep_inversion(input_shape=4), TypeError, "input_shape must be the shape"),
    ("DI input shape with a 0", lambda: deep_inversion(input_shape=(1, 0, 2)), ValueError, "input_shape[1] must be an integer >= 1, got 0"),
    ("DI batch size 0", lambda: deep_inversion(batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    ("DI infinite l2 weight", lambda: deep_inversion(l2_weight=float("inf")), ValueError, "l2_weight must be a finite number"),
    ("DI teacher as text", lambda: datafree.deep_inversion("bn", (1, 2, 2), 3), TypeError, "teacher must be a torch.nn.Module"),
    # DAFL
    ("DAFL loss logits 1-D", lambda: datafree.dafl_generator_loss(torch.zeros(3), torch.zeros(3, 2)), ValueError, "logits"),
    ("DAFL loss batch mismatch", lambda: datafree.dafl_generator_loss(torch.zeros(3, 2), torch.zeros(4, 2)),
     ValueError, "same batch of at least 2 images, got (3, 2) and (4, 2)"),
    ("DAFL loss one image", lambda: datafree.dafl_generator_loss(torch.zeros(1, 2), torch.zeros(1, 2)), ValueError, "at least 2"),
    ("DAFL loss negative activation weight", lambda: datafree.dafl_generator_loss(torch.zeros(2, 2), torch.zeros(2, 2), -0.1),
     ValueError, "activation_weight must be a finite number >= 0"),
    ("DAFL generator latent 0", lambda: datafree.dafl_generator(0, (1, 2, 2)), ValueError, "latent must be an integer >= 1, got 0"),
    ("DAFL generator shape as an int", lambda: datafree.dafl_generator(4, 4), TypeError, "input_shape must be the shape"),
    ("DAFL student as text", lambda: datafree.dafl("mlp", TEACHER, datafree.dafl_generator(2, (1, 2, 2))), TypeError,
     "student must be a torch.nn.Module, got str"),
    ("DAFL generator without a Linear", lambda: datafree.dafl(models.mlp((1, 2, 2), 3, width=2), TEACHER, torch.nn.Sigmoid()),
     TypeError, "generator must start with an nn.Linear"),
    ("DAFL one latent code", lambda: datafree.dafl(models.mlp((1, 2, 2), 3, width=2), TEACHER,
                                                   datafree.dafl_generator(2, (1, 2, 2)), codes=1), ValueError, "codes must be an integer >= 2"),
    ("DAFL temperature 0", lambda: datafree.dafl(models.mlp((1, 2, 2), 3, width=2), TEACHER,
                                                 datafree.dafl_generator(2, (1, 2, 2)), temperature=0), ValueError, "temperature"),
]
