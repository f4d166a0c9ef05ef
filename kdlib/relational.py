"""Relational knowledge distillation: transfer how examples relate, not what each one outputs.

Park, Kim, Lu & Cho, "Relational Knowledge Distillation", CVPR 2019. The student's embeddings
of a batch should have the same *shape* as the teacher's: the same pairwise distances (up to
one scale) and the same angles between triples. Because only relations are compared, student
and teacher embeddings may have different widths.

Shapes: embeddings are ``(batch, features)`` floating tensors; the student's and the teacher's
share the batch, not the width. The teacher is detached: gradients reach the student only.
"""
import math
import numbers

import torch
import torch.nn.functional as F

from .data import UNLABELLED
from .losses import _check_fraction, _check_temperature, kd_loss
from .models import penultimate
from .training import _check_split, _fit, default_device

_EPSILON = 1e-12  # floor under a mean distance we divide by


def _check_embeddings(name, embeddings):
    """An embedding batch must be a 2-D floating tensor (batch, features)."""
    if not torch.is_tensor(embeddings):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, features), got {type(embeddings).__name__}")
    if not embeddings.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {embeddings.dtype}")
    if embeddings.dim() != 2:
        raise ValueError(f"{name} must have shape (batch, features), got shape {tuple(embeddings.shape)}")
    if embeddings.shape[0] < 2 or embeddings.shape[1] < 1:
        raise ValueError(f"{name} needs at least 2 examples of at least 1 feature, got shape {tuple(embeddings.shape)}")


def _check_embedding_pair(student_emb, teacher_emb):
    """Same batch, any widths, one device."""
    _check_embeddings("student_emb", student_emb)
    _check_embeddings("teacher_emb", teacher_emb)
    if student_emb.shape[0] != teacher_emb.shape[0]:
        raise ValueError(
            "student_emb and teacher_emb must describe the same batch of examples, got batches of "
            f"{student_emb.shape[0]} and {teacher_emb.shape[0]} (shapes {tuple(student_emb.shape)} "
            f"and {tuple(teacher_emb.shape)})"
        )
    if student_emb.device != teacher_emb.device:
        raise ValueError(f"student_emb and teacher_emb must be on one device, got {student_emb.device} and {teacher_emb.device}")


def _check_weight(name, weight):
    """Loss weights are finite numbers >= 0."""
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0, got {type(weight).__name__}")
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {weight}")


def pairwise_distances(emb):
    """Euclidean distances ‖e_i − e_j‖ between all rows of ``emb`` (batch, features) → (batch, batch).

    Computed from the differences, not from a Gram matrix, so coinciding rows (and the diagonal)
    get exactly 0 and nearby rows lose no precision; the gradient at a zero distance is 0.
    """
    _check_embeddings("emb", emb)
    return torch.cdist(emb, emb, compute_mode="donot_use_mm_for_euclid_dist")  # (batch, batch)


def _normalised_distances(emb):
    """Distances divided by their mean over nonzero pairs: μ in RKD-D, which makes the loss scale-free."""
    distances = pairwise_distances(emb)  # (batch, batch)
    nonzero = distances > 0
    mean = distances.sum() / nonzero.sum().clamp_min(1)  # mean of the nonzero distances
    return distances / mean.clamp_min(_EPSILON)  # a collapsed batch (all distances 0) stays all 0


def _angles(emb):
    """cos ∠(e_i, e_j, e_k) = ⟨(e_i − e_j)/‖e_i − e_j‖, (e_k − e_j)/‖e_k − e_j‖⟩ for every triple → (batch, batch, batch).

    Indexed [j, i, k] with j the vertex. Triples where i = j or k = j give a zero vector,
    which F.normalize keeps at zero, so their cosine is 0 for student and teacher alike.
    """
    differences = emb.unsqueeze(0) - emb.unsqueeze(1)  # (batch, batch, features): [j, i] = e_i − e_j
    directions = F.normalize(differences, p=2, dim=-1)  # (batch, batch, features), unit or zero rows
    return directions @ directions.transpose(1, 2)  # (batch, batch, batch): [j, i, k]


def rkd_distance_loss(student_emb, teacher_emb):
    """Park et al., "Relational Knowledge Distillation", CVPR 2019: distance-wise loss RKD-D.

    ψ_D(t_i, t_j) = ‖t_i − t_j‖ / μ with μ the mean distance over the batch's nonzero pairs;
    loss = mean over all batch × batch pairs of Huber_δ=1(ψ_D(s_i, s_j) − ψ_D(t_i, t_j)).
    """
    _check_embedding_pair(student_emb, teacher_emb)
    with torch.no_grad():  # the teacher is a fixed target
        teacher_distances = _normalised_distances(teacher_emb)  # (batch, batch)
    student_distances = _normalised_distances(student_emb)  # (batch, batch)
    return F.smooth_l1_loss(student_distances, teacher_distances.to(student_distances.dtype), beta=1.0)


def rkd_angle_loss(student_emb, teacher_emb):
    """Park et al., "Relational Knowledge Distillation", CVPR 2019: angle-wise loss RKD-A.

    ψ_A(t_i, t_j, t_k) = cos ∠t_i t_j t_k = ⟨e^{ij}, e^{kj}⟩ with e^{ij} = (t_i − t_j)/‖t_i − t_j‖;
    loss = mean over all batch³ triples of Huber_δ=1(ψ_A(s_i, s_j, s_k) − ψ_A(t_i, t_j, t_k)).
    Angles ignore scale entirely; memory grows as batch³, fine for batches of a few hundred.
    """
    _check_embedding_pair(student_emb, teacher_emb)
    with torch.no_grad():
        teacher_angles = _angles(teacher_emb)  # (batch, batch, batch)
    student_angles = _angles(student_emb)  # (batch, batch, batch)
    return F.smooth_l1_loss(student_angles, teacher_angles.to(student_angles.dtype), beta=1.0)


def rkd_loss(student_emb, teacher_emb, distance_weight=25.0, angle_weight=50.0):
    """Park et al. CVPR 2019: λ_D · RKD-D + λ_A · RKD-A.

    The defaults are the paper's weights for image classification (λ_D = 25, λ_A = 50);
    for metric learning the paper uses λ_D = 1, λ_A = 2.
    """
    _check_weight("distance_weight", distance_weight)
    _check_weight("angle_weight", angle_weight)
    distance = rkd_distance_loss(student_emb, teacher_emb)
    angle = rkd_angle_loss(student_emb, teacher_emb)
    return distance_weight * distance + angle_weight * angle


@torch.no_grad()
def recall_at_1(embeddings, labels, chunk_size=1024):
    """Recall@1 of an embedding: the fraction of rows whose nearest other row (Euclidean) shares its label.

    The metric-learning score Park et al. report (Recall@K with K = 1). Queries are processed
    ``chunk_size`` at a time so 10 000 embeddings need no 10 000 × 10 000 matrix at once.
    """
    _check_embeddings("embeddings", embeddings)
    if not torch.is_tensor(labels) or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"labels must be a tensor of shape ({len(embeddings)},), one per embedding, got "
            f"{tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__}"
        )
    embeddings = embeddings.to(torch.float64)  # ties and near-ties resolved in double precision
    hits = 0
    for start in range(0, len(embeddings), chunk_size):
        queries = embeddings[start : start + chunk_size]  # (chunk, features)
        distances = torch.cdist(queries, embeddings)  # (chunk, N)
        rows = torch.arange(len(queries))
        distances[rows, rows + start] = float("inf")  # a row is not its own neighbour
        nearest = distances.argmin(dim=1)  # (chunk,)
        hits += (labels[nearest] == labels[start : start + chunk_size]).sum().item()
    return hits / len(embeddings)


def distill_relational(student, teacher, data, *, temperature=4.0, alpha=0.9, distance_weight=25.0,
                       angle_weight=50.0, epochs=30, lr=1e-3, batch_size=64, seed=0, weight_decay=0.0,
                       val=None, device=None, progress=True):
    """Train ``student`` on (1 − α)·CE + α·kd_loss(T) + λ_D·RKD-D + λ_A·RKD-A (Park et al. CVPR 2019).

    The RKD terms compare the penultimate features (``kdlib.models.penultimate``) of student and
    teacher within each mini-batch, as the paper applies them to the last pooling layer for
    classification. Rows labelled ``UNLABELLED`` get no cross-entropy. The teacher is frozen;
    its features and logits are computed once and reused every epoch.
    """
    _check_split(data)
    _check_temperature(temperature)
    _check_fraction("alpha", alpha)
    _check_weight("distance_weight", distance_weight)
    _check_weight("angle_weight", angle_weight)
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2: relations need pairs of examples, got {batch_size}")
    device = device or default_device()
    teacher.to(device).eval()
    with torch.no_grad():
        teacher_features = torch.cat([penultimate(teacher, data.x[i : i + 1024].to(device)).cpu()
                                      for i in range(0, len(data.x), 1024)])  # (N, teacher_features)
        teacher_logits = teacher[-1](teacher_features.to(device)).cpu()  # (N, classes)

    def batch_loss(model, x, y, t_features, t_logits):
        features = penultimate(model, x)  # (batch, student_features)
        logits = model[-1](features)  # (batch, classes)
        labelled = y != UNLABELLED
        hard = F.cross_entropy(logits[labelled], y[labelled]) if labelled.any() else logits.new_zeros(())
        loss = (1 - alpha) * hard + alpha * kd_loss(logits, t_logits, temperature)
        if len(x) < 2:  # a last mini-batch of one example has no relations
            return loss
        return loss + rkd_loss(features, t_features, distance_weight, angle_weight)

    tensors = (data.x, data.y, teacher_features, teacher_logits)
    return _fit(student, tensors, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                weight_decay=weight_decay, val=val, device=device, progress=progress, desc="distill_relational")
