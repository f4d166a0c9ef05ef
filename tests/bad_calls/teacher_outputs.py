"""Malformed calls to kdlib.teacher_outputs: reducing a teacher's logits, targets from them, distilling from them."""
import torch

from kdlib import data, models
from kdlib.teacher_outputs import distill_from_reduced, reduce_teacher_output, targets_from_reduced

LOGITS = torch.tensor([[2.0, 0.0, -1.0, 1.0], [0.0, 3.0, 0.5, -2.0]])
P = torch.softmax(LOGITS, dim=1)
TOP2 = (torch.tensor([[0.6, 0.3]]), torch.tensor([[0, 3]]))
X8 = torch.zeros(6, 1, 8, 8)
SPLIT = data.Split(X8, torch.arange(6) % 3)
STUDENT = models.mlp((1, 8, 8), 3, width=4, depth=1)
TEACHER = models.mlp((1, 8, 8), 3, width=5, depth=1, seed=1)


def reduced(student=STUDENT, teacher=TEACHER, split=SPLIT, kind="logits", **how):
    return distill_from_reduced(student, teacher, split, kind=kind, progress=False, **how)


BAD_CALLS = [
    # reduce_teacher_output
    ("unknown kind", lambda: reduce_teacher_output(LOGITS, "softmax"), ValueError, "kind must be one of"),
    ("k above the classes", lambda: reduce_teacher_output(LOGITS, "top_k", k=5), ValueError, "integer k in [1, 4]"),
    ("k = 0", lambda: reduce_teacher_output(LOGITS, "top_k", k=0), ValueError, "got 0"),
    ("k without top_k", lambda: reduce_teacher_output(LOGITS, "logits", k=2), ValueError, 'only used with kind="top_k"'),
    ("decimals -1", lambda: reduce_teacher_output(LOGITS, "probabilities", decimals=-1), ValueError,
     "decimals must be an integer >= 0, got -1"),
    ("decimals 1.5", lambda: reduce_teacher_output(LOGITS, "probabilities", decimals=1.5), TypeError, "got float 1.5"),
    ("NaN logits", lambda: reduce_teacher_output(LOGITS + float("nan"), "top_1"), ValueError, "teacher_logits must be finite"),
    ("1-D logits", lambda: reduce_teacher_output(LOGITS[0], "logits"), ValueError, "(batch, classes), got shape (4,)"),
    # targets_from_reduced
    ("class count mismatch", lambda: targets_from_reduced(P, "probabilities", classes=5), ValueError, "4 classes, expected 5"),
    ("classes 0", lambda: targets_from_reduced(P, "probabilities", classes=0), ValueError, "classes must be an integer >= 1"),
    ("floor 0", lambda: targets_from_reduced(P, "probabilities", 4, floor=0), ValueError, "floor must be a finite number > 0"),
    ("floor 1", lambda: targets_from_reduced(P, "probabilities", 4, floor=1), ValueError, "floor must be a number in (0, 1)"),
    ("negative probabilities", lambda: targets_from_reduced(P - 0.5, "probabilities", 4), ValueError,
     "must be probabilities in [0, 1]"),
    ("inf logits", lambda: targets_from_reduced(LOGITS.exp().exp().exp(), "logits", 4), ValueError, "must be finite"),
    ("top-k index out of range", lambda: targets_from_reduced((TOP2[0], TOP2[1] + 1), "top_k", 4), ValueError,
     "top-k indices must be class indices in [0, 3]"),
    ("top-k float indices", lambda: targets_from_reduced((TOP2[0], TOP2[1].float()), "top_k", 4), TypeError, "int64"),
    ("top-k not a pair", lambda: targets_from_reduced(TOP2[0], "top_k", 4), TypeError, "tuple (probabilities, indices)"),
    ("top-k shapes differ", lambda: targets_from_reduced((TOP2[0], TOP2[1][:, :1]), "top_k", 4), ValueError, "(1, 2) and (1, 1)"),
    ("top-1 label out of range", lambda: targets_from_reduced(torch.tensor([4]), "top_1", 4), ValueError, "[0, 3]"),
    ("top-1 float labels", lambda: targets_from_reduced(torch.tensor([1.0]), "top_1", 4), TypeError, "int64"),
    # distill_from_reduced
    ("distill unknown soft loss", lambda: reduced(soft_loss="kd"), ValueError, "soft_loss must be one of"),
    ("distill mse from probabilities", lambda: reduced(kind="probabilities", soft_loss="mse"), ValueError, 'needs kind="logits"'),
    ("distill unknown kind", lambda: reduced(kind="labels"), ValueError, "kind must be one of"),
    ("distill k above the classes", lambda: reduced(kind="top_k", k=20), ValueError, "integer k in [1, 3]"),
    ("distill floor 2", lambda: reduced(kind="probabilities", floor=2.0), ValueError, "floor must be a number in (0, 1)"),
    ("distill teacher as text", lambda: reduced(teacher="api"), TypeError, "teacher must be a torch.nn.Module, got str"),
    ("distill class mismatch", lambda: reduced(student=models.mlp((1, 8, 8), 4, width=4, depth=1)), ValueError,
     "same classes, got 4 and 3"),
    ("distill label out of range", lambda: reduced(split=data.Split(X8, torch.arange(6))), ValueError, "[0, 2] or -1"),
    ("distill empty data", lambda: reduced(split=data.Split(X8[:0], torch.zeros(0, dtype=torch.int64))), ValueError, "empty"),
    ("distill T = 0", lambda: reduced(temperature=0), ValueError, "temperature must be a finite number > 0, got 0"),
    ("distill batch size 0", lambda: reduced(batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
]
