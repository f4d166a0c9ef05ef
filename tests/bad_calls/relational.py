"""Malformed calls to kdlib.relational: RKD losses, recall@1, distill_relational."""
import torch

from kdlib import data, models
from kdlib.relational import (distill_relational, pairwise_distances, recall_at_1, rkd_angle_loss, rkd_distance_loss,
                              rkd_loss)

S, T_ = torch.zeros(4, 3), torch.ones(4, 5)  # student and teacher embeddings: same batch, other widths
NAN = torch.full((4, 3), float("nan"))
LABELS = torch.arange(4)
X8 = torch.zeros(6, 1, 8, 8)
SPLIT = data.Split(X8, torch.arange(6) % 3)
STUDENT = models.mlp((1, 8, 8), 3, width=4, depth=1)
TEACHER = models.mlp((1, 8, 8), 3, width=5, depth=1, seed=1)


def relational(student=STUDENT, teacher=TEACHER, split=SPLIT, **how):
    return distill_relational(student, teacher, split, progress=False, **how)


BAD_CALLS = [
    # losses
    ("distance NaN student", lambda: rkd_distance_loss(NAN, T_), ValueError, "student_emb must be finite"),
    ("angle inf teacher", lambda: rkd_angle_loss(S, torch.full((4, 5), float("inf"))), ValueError, "teacher_emb must be finite"),
    ("distances of NaN", lambda: pairwise_distances(NAN), ValueError, "emb must be finite"),
    ("batch mismatch", lambda: rkd_loss(S, T_[:3]), ValueError, "same batch of examples, got batches of 4 and 3"),
    ("one example", lambda: rkd_distance_loss(S[:1], T_[:1]), ValueError, "at least 2 examples"),
    ("3-D embeddings", lambda: rkd_angle_loss(torch.zeros(4, 3, 2), T_), ValueError, "(batch, features), got shape (4, 3, 2)"),
    ("list embeddings", lambda: rkd_distance_loss([[0.0], [1.0]], T_), TypeError, "got list"),
    ("int embeddings", lambda: pairwise_distances(torch.zeros(4, 3, dtype=torch.int64)), TypeError, "floating-point"),
    ("teacher on another device", lambda: rkd_loss(S, T_.to("meta")), ValueError, "cpu and meta"),
    ("distance weight -1", lambda: rkd_loss(S, T_, distance_weight=-1.0), ValueError,
     "distance_weight must be a finite number >= 0, got -1.0"),
    ("angle weight as text", lambda: rkd_loss(S, T_, angle_weight="50"), TypeError, "angle_weight must be a number >= 0, got str"),
    ("angle weight nan", lambda: rkd_loss(S, T_, angle_weight=float("nan")), ValueError, "finite"),
    # recall_at_1
    ("recall chunk 0", lambda: recall_at_1(S, LABELS, chunk_size=0), ValueError, "chunk_size must be an integer >= 1, got 0"),
    ("recall chunk 2.5", lambda: recall_at_1(S, LABELS, chunk_size=2.5), TypeError, "chunk_size must be an integer"),
    ("recall labels too short", lambda: recall_at_1(S, LABELS[:3]), ValueError, "shape (4,), one per embedding, got (3,)"),
    ("recall float labels", lambda: recall_at_1(S, LABELS.float()), TypeError, "int64"),
    ("recall NaN embeddings", lambda: recall_at_1(NAN, LABELS), ValueError, "embeddings must be finite"),
    ("recall labels on another device", lambda: recall_at_1(S, LABELS.to("meta")), ValueError, "cpu and meta"),
    # distill_relational
    ("distill batch 1", lambda: relational(batch_size=1), ValueError, "batch_size must be >= 2: relations need pairs"),
    ("distill angle weight -2", lambda: relational(angle_weight=-2.0), ValueError, "angle_weight must be a finite number >= 0"),
    ("distill T nan", lambda: relational(temperature=float("nan")), ValueError, "temperature must be a finite number"),
    ("distill alpha 2", lambda: relational(alpha=2), ValueError, "alpha must be in [0, 1], got 2"),
    ("distill student as text", lambda: relational(student="mlp"), TypeError, "student must be a torch.nn.Module, got str"),
    ("distill class mismatch", lambda: relational(student=models.mlp((1, 8, 8), 4, width=4, depth=1)), ValueError,
     "same classes, got 4 and 3"),
    ("distill label out of range", lambda: relational(split=data.Split(X8, torch.arange(6) - 2)), ValueError,
     "got values from -2 to 3"),
    ("distill empty data", lambda: relational(split=data.Split(X8[:0], torch.zeros(0, dtype=torch.int64))), ValueError, "empty"),
    ("distill 1.5 epochs", lambda: relational(epochs=1.5), TypeError, "epochs must be an integer >= 1, got float"),
    ("distill on a layer it does not know", lambda: relational(layer="hidden"), ValueError,
     "layer must be one of ('penultimate', 'logits'), got 'hidden'"),
]
