"""Malformed calls to kdlib.hints: hint and cosine losses, the regressor, distill_with_hints."""
import torch
from torch import nn

from kdlib import data, models
from kdlib.hints import cosine_hidden_loss, distill_with_hints, hint_loss, hint_regressor

S, T_ = torch.zeros(4, 3), torch.zeros(4, 5)  # student (width 3) and teacher (width 5) features
X8 = torch.zeros(6, 1, 8, 8)
SPLIT = data.Split(X8, torch.arange(6) % 3)
STUDENT = models.mlp((1, 8, 8), 3, width=4, depth=1)
TEACHER = models.mlp((1, 8, 8), 3, width=5, depth=1, seed=1)
NAN = torch.full((4, 5), float("nan"))


def hints(student=STUDENT, teacher=TEACHER, split=SPLIT, **how):
    return distill_with_hints(student, teacher, split, progress=False, **how)


BAD_CALLS = [
    # hint_loss and cosine_hidden_loss
    ("hint NaN teacher features", lambda: hint_loss(S, NAN, hint_regressor(3, 5)), ValueError, "teacher_features must be finite"),
    ("hint regressor of the wrong width", lambda: hint_loss(S, T_, hint_regressor(3, 4)), ValueError,
     "regressor must map the student's 3 features to the teacher's 5, got a regressor from 3 to 4"),
    ("hint regressor reading the wrong width", lambda: hint_loss(S, T_, hint_regressor(2, 5)), ValueError, "from 2 to 5"),
    ("hint regressor as text", lambda: hint_loss(S, T_, "linear"), TypeError, "regressor must be a torch.nn.Module, got str"),
    ("hint batch mismatch", lambda: hint_loss(S, T_[:3], hint_regressor(3, 5)), ValueError, "same batch size, got 4 and 3"),
    ("hint int features", lambda: hint_loss(S.long(), T_, hint_regressor(3, 5)), TypeError, "floating-point"),
    ("hint empty batch", lambda: hint_loss(S[:0], T_[:0], hint_regressor(3, 5)), ValueError, "batch >= 1"),
    ("cosine widths differ", lambda: cosine_hidden_loss(S, T_), ValueError, "same shape (same width)"),
    ("cosine inf", lambda: cosine_hidden_loss(torch.full((2, 3), float("inf")), torch.ones(2, 3)), ValueError,
     "student_hidden must be finite"),
    ("cosine 1-D", lambda: cosine_hidden_loss(torch.ones(3), torch.ones(3)), ValueError, "(batch, features, ...)"),
    # hint_regressor
    ("regressor width 0", lambda: hint_regressor(0, 4), ValueError, "student_width must be an integer >= 1, got 0"),
    ("regressor width 2.5", lambda: hint_regressor(2, 2.5), TypeError, "teacher_width must be an integer >= 1, got float"),
    ("regressor seed -1", lambda: hint_regressor(2, 4, seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    # distill_with_hints
    ("distill hint_weight -1", lambda: hints(hint_weight=-1), ValueError, "hint_weight must be a finite number >= 0, got -1"),
    ("distill hint_weight nan", lambda: hints(hint_weight=float("nan")), ValueError, "hint_weight must be a finite number"),
    ("distill T = 0", lambda: hints(temperature=0), ValueError, "temperature must be a finite number > 0, got 0"),
    ("distill alpha 1.5", lambda: hints(alpha=1.5), ValueError, "alpha must be in [0, 1], got 1.5"),
    ("distill teacher as text", lambda: hints(teacher="teacher.pt"), TypeError, "teacher must be a torch.nn.Module, got str"),
    ("distill student not Sequential", lambda: hints(student=nn.Linear(64, 3)), TypeError, "penultimate needs an nn.Sequential"),
    ("distill class mismatch", lambda: hints(teacher=models.mlp((1, 8, 8), 4, width=5, depth=1)), ValueError,
     "same classes, got 3 and 4"),
    ("distill label out of range", lambda: hints(split=data.Split(X8, torch.arange(6))), ValueError, "[0, 2] or -1"),
    ("distill float labels", lambda: hints(split=data.Split(X8, torch.zeros(6))), TypeError, "data.y must be int64"),
    ("distill empty data", lambda: hints(split=data.Split(X8[:0], torch.zeros(0, dtype=torch.int64))), ValueError, "empty"),
    ("distill NaN inputs", lambda: hints(split=data.Split(X8 + float("nan"), SPLIT.y)), ValueError, "data.x must be finite"),
    ("distill regressor of the wrong width", lambda: hints(regressor=hint_regressor(4, 6)), ValueError,
     "regressor must map the student's 4 features to the teacher's 5"),
    ("distill regressor on another device", lambda: hints(regressor=hint_regressor(4, 5).to("meta")), ValueError,
     "regressor and student must be on one device"),
    ("distill 0 epochs", lambda: hints(epochs=0), ValueError, "epochs must be an integer >= 1, got 0"),
    ("distill misspelt setting", lambda: hints(epoch=3), TypeError, "unknown training setting(s) ['epoch']"),
]
