"""Malformed calls to kdlib.ensembles: ensemble targets and loss, multi-teacher distillation, born-again networks."""
import torch

from kdlib import data, models
from kdlib.data import UNLABELLED
from kdlib.ensembles import born_again, distill_from_ensemble, ensemble_kd_loss, ensemble_soft_targets

X = torch.zeros(6, 1, 8, 8)
SPLIT = data.Split(X, torch.arange(6) % 3)
LOGITS = torch.zeros(4, 3)
UNIFORM = torch.full((4, 3), 1 / 3)
TEACHERS = [models.mlp((1, 8, 8), 3, width=4, depth=1, seed=seed) for seed in range(2)]
STUDENT = models.mlp((1, 8, 8), 3, width=2, depth=1, seed=5)
FOUR_CLASSES = models.mlp((1, 8, 8), 4, width=2, depth=1, seed=6)
QUICK = dict(epochs=1, progress=False)


def build(seed):
    return models.mlp((1, 8, 8), 3, width=2, depth=1, seed=seed)


BAD_CALLS = [
    ("soft targets of NaN logits", lambda: ensemble_soft_targets([LOGITS, LOGITS + float("nan")], 2.0), ValueError,
     "teacher_logits_list[1] must be finite, got 12 NaN or infinite entries of 12"),
    ("soft targets on two devices", lambda: ensemble_soft_targets([LOGITS, LOGITS.to("meta")], 2.0), ValueError,
     "teacher_logits_list[0] and teacher_logits_list[1] must be on one device, got cpu and meta"),
    ("soft targets weights all zero", lambda: ensemble_soft_targets([LOGITS, LOGITS], 2.0, weights=[0, 0]), ValueError,
     "weights must not all be zero, got [0, 0]"),
    ("soft targets weights as text", lambda: ensemble_soft_targets([LOGITS], 2.0, weights="1"), TypeError,
     "weights must be a list of numbers, one per teacher, got str"),
    ("soft targets of integer logits", lambda: ensemble_soft_targets([LOGITS.long()], 2.0), TypeError,
     "must be a floating-point tensor, got dtype torch.int64"),
    ("ensemble loss of negative probabilities", lambda: ensemble_kd_loss(LOGITS, UNIFORM - 0.5, 2.0), ValueError,
     "ensemble_probabilities must be probabilities (entries >= 0, rows summing to 1)"),
    ("ensemble loss of logits for probabilities", lambda: ensemble_kd_loss(LOGITS, LOGITS + 2.0, 2.0), ValueError,
     "row sums from 6 to 6"),
    ("ensemble loss on two devices", lambda: ensemble_kd_loss(LOGITS, UNIFORM.to("meta"), 2.0), ValueError,
     "must be on one device, got cpu and meta"),
    ("ensemble loss T = inf", lambda: ensemble_kd_loss(LOGITS, UNIFORM, float("inf")), ValueError,
     "temperature must be a finite number > 0, got inf"),
    ("distil from no teachers", lambda: distill_from_ensemble(STUDENT, [], SPLIT, **QUICK), ValueError,
     "teachers must hold at least 1 model(s), got 0"),
    ("distil from a bare model", lambda: distill_from_ensemble(STUDENT, TEACHERS[0], SPLIT, **QUICK), TypeError,
     "teachers must be a list of torch.nn.Module, got Sequential"),
    ("distil a student given by name", lambda: distill_from_ensemble("mlp", TEACHERS, SPLIT, **QUICK), TypeError,
     "student must be a torch.nn.Module, got str"),
    ("distil a student of another class count", lambda: distill_from_ensemble(FOUR_CLASSES, TEACHERS, SPLIT, **QUICK),
     ValueError, "student and teachers must score the same classes, got 4 and 3"),
    ("distil from teachers of two class counts",
     lambda: distill_from_ensemble(STUDENT, [*TEACHERS, FOUR_CLASSES], SPLIT, **QUICK), ValueError,
     "every model in teachers must score the same classes, got class counts [3, 3, 4]"),
    ("distil label out of range", lambda: distill_from_ensemble(STUDENT, TEACHERS, data.Split(X, SPLIT.y - 2), **QUICK),
     ValueError, "data.y must be class indices in [0, 2] or -1 (UNLABELLED) for 3 classes, got values from -2 to 0"),
    ("distil float labels", lambda: distill_from_ensemble(STUDENT, TEACHERS, data.Split(X, SPLIT.y.float()), **QUICK),
     TypeError, "data.y must be int64 class indices"),
    ("distil weights per teacher", lambda: distill_from_ensemble(STUDENT, TEACHERS, SPLIT, weights=[1.0], **QUICK),
     ValueError, "weights must have one entry per teacher (2), got 1"),
    ("distil T = 0", lambda: distill_from_ensemble(STUDENT, TEACHERS, SPLIT, temperature=0, **QUICK), ValueError,
     "temperature must be a finite number > 0, got 0"),
    ("distil batch size 0", lambda: distill_from_ensemble(STUDENT, TEACHERS, SPLIT, batch_size=0, progress=False),
     ValueError, "batch_size must be an integer >= 1, got 0"),
    ("distil with the old device-less predict", lambda: distill_from_ensemble(STUDENT, TEACHERS, SPLIT, devices="cpu"),
     TypeError, "unknown training setting(s) ['devices']"),
    ("born-again 2.0 generations", lambda: born_again(build, SPLIT, SPLIT, generations=2.0, **QUICK), TypeError,
     "generations must be an integer >= 0, got float 2.0"),
    ("born-again -1 generations", lambda: born_again(build, SPLIT, SPLIT, generations=-1, **QUICK), ValueError,
     "generations must be an integer >= 0, got -1"),
    ("born-again a model for a builder", lambda: born_again(STUDENT, SPLIT, SPLIT, **QUICK), TypeError,
     "build_model must be a function seed -> new model, got Sequential"),
    ("born-again builder returns a name", lambda: born_again(lambda seed: "mlp", SPLIT, SPLIT, **QUICK), TypeError,
     "build_model(0) must be a torch.nn.Module, got str"),
    ("born-again without labels",
     lambda: born_again(build, data.Split(X, torch.full((6,), UNLABELLED)), SPLIT, **QUICK), ValueError,
     "born_again needs some labelled rows"),
    ("born-again lr nan", lambda: born_again(build, SPLIT, SPLIT, lr=float("nan"), progress=False), ValueError,
     "lr must be a finite number > 0, got nan"),
    ("born-again alpha -1", lambda: born_again(build, SPLIT, SPLIT, alpha=-1, **QUICK), ValueError,
     "alpha must be in [0, 1], got -1"),
    ("born-again empty evaluation", lambda: born_again(build, SPLIT, data.Split(X[:0], SPLIT.y[:0]), **QUICK),
     ValueError, "evaluation is empty"),
]
