"""Relational knowledge distillation: transfer how examples relate, not what each one outputs.

Park, Kim, Lu & Cho, "Relational Knowledge Distillation", CVPR 2019. The student's embeddings
of a batch should have the same *shape* as the teacher's: the same pairwise distances (up to
one scale) and the same angles between triples. Because only relations are compared, student
and teacher embeddings may have different widths.

Shapes: embeddings are ``(batch, features)`` floating tensors; the student's and the teacher's
share the batch, not the width. The teacher is detached: gradients reach the student only.
"""
import torch
import torch.nn.functional as F

from .arguments import (check_choice, check_count, check_finite, check_fraction, check_model, check_number,
                        check_same_device, check_split, check_temperature)
from .devices import widest_float
from .losses import hard_loss, kd_loss
from .models import penultimate
from .training import TrainSettings, fit, teacher_features

_EPSILON = 1e-12  # floor under a mean distance we divide by
RKD_LAYERS = ("penultimate", "logits")  # where distill_relational takes the relations


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
    check_finite(name, embeddings)


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
    check_same_device("student_emb", student_emb, "teacher_emb", teacher_emb)


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
    check_number("distance_weight", distance_weight, inclusive=True)
    check_number("angle_weight", angle_weight, inclusive=True)
    distance = rkd_distance_loss(student_emb, teacher_emb)
    angle = rkd_angle_loss(student_emb, teacher_emb)
    return distance_weight * distance + angle_weight * angle


@torch.no_grad()
def recall_at_1(embeddings, labels, chunk_size=1024):
    """Recall@1 of an embedding: the fraction of rows whose nearest other row (Euclidean) shares its label.

    The metric-learning score Park et al. report (Recall@K with K = 1). Queries are processed
    ``chunk_size`` at a time so 10 000 embeddings need no 10 000 × 10 000 matrix at once.
    Computed where the embeddings are (labels must be there too), in float64 where the device has it.
    """
    _check_embeddings("embeddings", embeddings)
    if not torch.is_tensor(labels) or labels.dtype != torch.int64:
        raise TypeError(f"labels must be int64 class indices, one per embedding, got "
                        f"{labels.dtype if torch.is_tensor(labels) else type(labels).__name__}")
    if labels.shape != embeddings.shape[:1]:
        raise ValueError(f"labels must be a tensor of shape ({len(embeddings)},), one per embedding, "
                         f"got {tuple(labels.shape)}")
    check_same_device("embeddings", embeddings, "labels", labels)
    check_count("chunk_size", chunk_size)
    embeddings = embeddings.to(widest_float(embeddings.device))  # ties and near-ties resolved in double precision
    hits = torch.zeros((), dtype=torch.int64, device=embeddings.device)  # summed on the device, read once
    for start in range(0, len(embeddings), chunk_size):
        queries = embeddings[start : start + chunk_size]  # (chunk, features)
        distances = torch.cdist(queries, embeddings)  # (chunk, N)
        rows = torch.arange(len(queries), device=embeddings.device)
        distances[rows, rows + start] = float("inf")  # a row is not its own neighbour
        nearest = distances.argmin(dim=1)  # (chunk,)
        hits += (labels[nearest] == labels[start : start + chunk_size]).sum()
    return hits.item() / len(embeddings)


def distill_relational(student, teacher, data, *, temperature=4.0, alpha=0.9, distance_weight=25.0,
                       angle_weight=50.0, layer="penultimate", settings=None, **overrides):
    """Train ``student`` on (1 − α)·CE + α·kd_loss(T) + λ_D·RKD-D + λ_A·RKD-A (Park et al. CVPR 2019).

    The RKD terms compare, within each mini-batch, the penultimate features (``kdlib.models.penultimate``)
    of student and teacher, as the paper applies them to the last pooling layer for classification, or
    with ``layer="logits"`` their logits (the paper's other option). Rows labelled ``UNLABELLED`` get no
    cross-entropy. The teacher is frozen;
    its features and logits are computed once, where it is, and reused every epoch.
    ``settings``/keywords: see TrainSettings (epochs=30, lr=1e-3, batch_size=64 (>= 2), ...).
    """
    check_model("student", student)
    check_model("teacher", teacher)
    check_split(data)
    check_temperature(temperature)
    check_fraction("alpha", alpha)
    check_number("distance_weight", distance_weight, inclusive=True)
    check_number("angle_weight", angle_weight, inclusive=True)
    check_choice("layer", layer, RKD_LAYERS)
    settings = TrainSettings.of(settings, **overrides)
    if settings.batch_size < 2:
        raise ValueError(f"batch_size must be >= 2: relations need pairs of examples, got {settings.batch_size}")
    t_features, t_logits, _ = teacher_features(student, teacher, data, settings.batch_size)

    def batch_loss(model, x, y, t_features, t_logits):  # t_features: (batch, teacher_features)
        features = penultimate(model, x)  # (batch, student_features)
        logits = model[-1](features)  # (batch, classes)
        loss = (1 - alpha) * hard_loss(logits, y) + alpha * kd_loss(logits, t_logits, temperature)
        if len(x) < 2:  # a last mini-batch of one example has no relations
            return loss
        if layer == "logits":
            return loss + rkd_loss(logits, t_logits, distance_weight, angle_weight)
        return loss + rkd_loss(features, t_features, distance_weight, angle_weight)

    return fit(student, (data.x, data.y, t_features, t_logits), batch_loss, settings, desc="distill_relational")
