"""Malformed calls to kdlib.contrastive: the in-batch contrastive (InfoNCE) distillation loss."""
import torch

from kdlib.contrastive import contrastive_loss

S, T_ = torch.randn(4, 3), torch.randn(4, 3)

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
]
