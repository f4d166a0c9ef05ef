"""Malformed calls to kdlib.contrastive: the in-batch contrastive (InfoNCE) loss, its heads, distill_contrastive."""
import torch

from kdlib import data, models
from kdlib.contrastive import contrastive_loss, distill_contrastive, projection_heads

S, T_ = torch.randn(4, 3), torch.randn(4, 3)
SPLIT = data.Split(torch.zeros(6, 1, 8, 8), torch.arange(6) % 3)
STUDENT = models.mlp((1, 8, 8), 3, width=4, depth=1)
TEACHER = models.mlp((1, 8, 8), 3, width=5, depth=1, seed=1)


def contrastive(student=STUDENT, teacher=TEACHER, split=SPLIT, **how):
    return distill_contrastive(student, teacher, split, progress=False, **how)


BAD_CALLS = [
    ("student as a list", lambda: contrastive_loss([[1.0, 2.0]], T_), TypeError,
     "student_embeddings must be a torch.Tensor, got list"),
    ("int teacher", lambda: contrastive_loss(S, T_.long()), TypeError, "teacher_embeddings must be a floating-point tensor"),
    ("1-D student", lambda: contrastive_loss(S[0], T_), ValueError, "student_embeddings must have 2 dimensions, got shape (3,)"),
    ("3-D teacher", lambda: contrastive_loss(S, T_[None]), ValueError, "teacher_embeddings must have 2 dimensions"),
    ("NaN student", lambda: contrastive_loss(S + float("nan"), T_), ValueError, "student_embeddings must be finite"),
    ("widths differ", lambda: contrastive_loss(S, torch.randn(4, 5)), ValueError,
     "same shape (batch >= 2, width): a batch of pairs, with other examples as negatives; got (4, 3) and (4, 5)"),
    ("batches differ", lambda: contrastive_loss(S, T_[:3]), ValueError, "got (4, 3) and (3, 3)"),
    ("one pair, no negatives", lambda: contrastive_loss(S[:1], T_[:1]), ValueError, "batch >= 2"),
    ("temperature 0", lambda: contrastive_loss(S, T_, 0.0), ValueError, "temperature must be a finite number > 0, got 0.0"),
    ("temperature as text", lambda: contrastive_loss(S, T_, "0.1"), TypeError, "temperature must be a number > 0, got str"),
    ("devices differ", lambda: contrastive_loss(S, T_.to("meta")), ValueError,
     "student_embeddings and teacher_embeddings must be on one device, got cpu and meta"),
    # the heads and the training run
    ("head width 0", lambda: projection_heads(4, 5, width=0), ValueError, "width must be an integer >= 1, got 0"),
    ("student width as text", lambda: projection_heads("4", 5), TypeError, "student_width must be an integer"),
    ("negative weight", lambda: contrastive(contrastive_weight=-1.0), ValueError, "contrastive_weight"),
    ("tau 0", lambda: contrastive(contrastive_temperature=0.0), ValueError, "contrastive_temperature"),
    ("width as float", lambda: contrastive(width=8.0), TypeError, "width must be an integer"),
    ("alpha 2", lambda: contrastive(alpha=2.0), ValueError, "alpha"),
    ("batch of one", lambda: contrastive(batch_size=1), ValueError,
     "batch_size must be >= 2: the other examples of a batch are the negatives, got 1"),
    ("teacher as text", lambda: contrastive(teacher="resnet"), TypeError, "teacher must be a torch.nn.Module, got str"),
    ("4-class student", lambda: contrastive(student=models.mlp((1, 8, 8), 4, width=4, depth=1)), ValueError,
     "same classes, got 4 and 3"),
    ("labels out of range", lambda: contrastive(split=data.Split(SPLIT.x, SPLIT.y + 3)), ValueError, "data.y"),
    ("split as a tuple of lists", lambda: contrastive(split=([0.0], [1])), TypeError, "data"),
]
