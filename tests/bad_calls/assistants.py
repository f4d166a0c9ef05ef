"""Malformed calls to kdlib.assistants: chains, per-model evaluation and the capacity-gap sweep."""
import torch

from kdlib import data, models
from kdlib.assistants import distill_chain, evaluate_each, gap_sweep, trace_distillation

X = torch.zeros(6, 1, 8, 8)
SPLIT = data.Split(X, torch.arange(6) % 3)
TEACHER = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=0)
STUDENT = models.mlp((1, 8, 8), 3, width=2, depth=1, seed=1)
FOUR_CLASSES = models.mlp((1, 8, 8), 4, width=2, depth=1, seed=2)
QUICK = dict(epochs=1, progress=False)


def build(size, seed):
    return models.mlp((1, 8, 8), 3, width=size, depth=1, seed=seed)


def sweep(**kwargs):
    arguments = dict(build_teacher=build, teacher_sizes=[2], build_student=lambda seed: build(2, seed), data=SPLIT,
                     evaluation=SPLIT, **QUICK)
    return gap_sweep(**{**arguments, **kwargs})


BAD_CALLS = [
    ("chain of one model", lambda: distill_chain([TEACHER], SPLIT, **QUICK), ValueError,
     "models must hold at least 2 model(s), got 1"),
    ("chain of a bare model", lambda: distill_chain(TEACHER, SPLIT, **QUICK), TypeError,
     "models must be a list of torch.nn.Module, got Sequential"),
    ("chain with a name for a model", lambda: distill_chain([TEACHER, "student"], SPLIT, **QUICK), TypeError,
     "models[1] must be a torch.nn.Module, got str"),
    ("chain with a student of another class count", lambda: distill_chain([TEACHER, STUDENT, FOUR_CLASSES], SPLIT,
                                                                           **QUICK),
     ValueError, "same classes, got class counts [3, 3, 4]"),
    ("chain T = nan", lambda: distill_chain([TEACHER, STUDENT], SPLIT, temperature=float("nan"), **QUICK), ValueError,
     "temperature must be a finite number > 0, got nan"),
    ("chain alpha 2", lambda: distill_chain([TEACHER, STUDENT], SPLIT, alpha=2, **QUICK), ValueError,
     "alpha must be in [0, 1], got 2"),
    ("chain epochs 0", lambda: distill_chain([TEACHER, STUDENT], SPLIT, epochs=0), ValueError,
     "epochs must be an integer >= 1, got 0"),
    ("chain epochs 2.5", lambda: distill_chain([TEACHER, STUDENT], SPLIT, epochs=2.5), TypeError,
     "epochs must be an integer >= 1, got float 2.5"),
    ("chain misspelt setting", lambda: distill_chain([TEACHER, STUDENT], SPLIT, epoch=1), TypeError,
     "unknown training setting(s) ['epoch']"),
    ("chain settings as a dict", lambda: distill_chain([TEACHER, STUDENT], SPLIT, settings={"epochs": 1}), TypeError,
     "settings must be a kdlib.training.TrainSettings, got dict"),
    ("chain label out of range", lambda: distill_chain([TEACHER, STUDENT], data.Split(X, SPLIT.y + 3), **QUICK),
     ValueError, "data.y must be class indices in [0, 2] or -1 (UNLABELLED) for 3 classes, got values from 3 to 5"),
    ("chain float labels", lambda: distill_chain([TEACHER, STUDENT], data.Split(X, SPLIT.y.float()), **QUICK),
     TypeError, "data.y must be int64 class indices, got dtype torch.float32"),
    ("chain NaN images", lambda: distill_chain([TEACHER, STUDENT], data.Split(X + float("nan"), SPLIT.y), **QUICK),
     ValueError, "data.x must be finite, got 384 NaN or infinite entries"),
    ("chain on empty data", lambda: distill_chain([TEACHER, STUDENT], data.Split(X[:0], SPLIT.y[:0]), **QUICK),
     ValueError, "data is empty"),
    ("evaluate_each of no models", lambda: evaluate_each([], SPLIT), ValueError,
     "models must hold at least 1 model(s), got 0"),
    ("evaluate_each label out of range", lambda: evaluate_each([TEACHER], data.Split(X, SPLIT.y + 1)), ValueError,
     "data.y must be class indices in [0, 2] for 3 classes, got values from 1 to 3"),
    ("evaluate_each on a bare tensor", lambda: evaluate_each([TEACHER], X), TypeError, "data must be a kdlib.data.Split"),
    ("gap_sweep without sizes", lambda: sweep(teacher_sizes=[]), ValueError, "teacher_sizes must list at least one size"),
    ("gap_sweep sizes as a number", lambda: sweep(teacher_sizes=8), TypeError,
     "teacher_sizes must be a list of sizes for build_teacher, got int"),
    ("gap_sweep a model for a builder", lambda: sweep(build_teacher=TEACHER), TypeError,
     "build_teacher must be a function that returns a new model, got Sequential"),
    ("gap_sweep builder returns a name", lambda: sweep(build_student=lambda seed: "mlp"), TypeError,
     "build_student(0) must be a torch.nn.Module, got str"),
    ("gap_sweep student_lr 0", lambda: sweep(student_lr=0), ValueError, "student_lr must be a finite number > 0, got 0"),
    ("gap_sweep student_lr inf", lambda: sweep(student_lr=float("inf")), ValueError,
     "student_lr must be a finite number > 0, got inf"),
    ("gap_sweep evaluation not a split", lambda: sweep(evaluation=[X]), TypeError,
     "evaluation must be a kdlib.data.Split (x, y) of tensors, got list"),
    ("gap_sweep seed -1", lambda: sweep(seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    ("trace a number", lambda: trace_distillation(3), TypeError, "function must be callable, got int"),
]
