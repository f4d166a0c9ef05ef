"""Contrastive representation distillation: the student's embedding of an example must pick out the teacher's
embedding of the same example among the teacher's embeddings of the other examples.

CRD (Tian, Krishnan & Isola, ICLR 2020) contrasts each example with many negatives drawn from a memory bank and
scores pairs with learned projection heads; the InfoNCE form below takes its negatives from the batch instead,
the simplification most later work uses. ``contrastive_loss`` takes the heads' outputs; ``distill_contrastive``
trains a student with it, the heads alongside.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .arguments import (check_count, check_finite, check_fraction, check_model, check_number, check_same_device,
                        check_split, check_temperature, check_tensor)
from .devices import device_of
from .losses import hard_loss, kd_loss
from .models import penultimate, seeded
from .training import TrainSettings, fit, teacher_features

# The CRD code's defaults (RepDistiller: --feat_dim 128, --nce_t 0.07, -b 0.8 for the CRD term)
CRD_WIDTH, CRD_TEMPERATURE, CRD_WEIGHT = 128, 0.07, 0.8


def contrastive_loss(student_embeddings, teacher_embeddings, temperature=0.1):
    """Tian et al., ICLR 2020, "Contrastive Representation Distillation", in its InfoNCE (in-batch) form.

    loss = −(1/B) Σ_i log( exp(ŝ_i·t̂_i / τ) / Σ_j exp(ŝ_i·t̂_j / τ) ),  ŝ = s/‖s‖, t̂ = t/‖t‖,
    over a batch of B pairs: the positive of student row i is teacher row i (the same example), its negatives
    are the teacher's other B − 1 rows; τ = ``temperature``. It is a B-way cross-entropy whose right answer is
    the diagonal: log B when the student's embeddings say nothing about which example is which, → 0 when each
    one points at its own teacher embedding and away from the others. Both inputs are (batch, width) with the
    same width (project them first). Gradients reach both: CRD learns a projection head on the teacher's side
    too; detach the teacher network's features before its head, as for any frozen teacher.
    """
    for name, embeddings in (("student_embeddings", student_embeddings), ("teacher_embeddings", teacher_embeddings)):
        check_tensor(name, embeddings, dims=2, floating=True)
        check_finite(name, embeddings)
    if student_embeddings.shape != teacher_embeddings.shape or student_embeddings.shape[0] < 2:
        raise ValueError(f"student_embeddings and teacher_embeddings must have the same shape (batch >= 2, width): "
                         f"a batch of pairs, with other examples as negatives; got {tuple(student_embeddings.shape)} "
                         f"and {tuple(teacher_embeddings.shape)}")
    check_same_device("student_embeddings", student_embeddings, "teacher_embeddings", teacher_embeddings)
    check_temperature(temperature)
    s = F.normalize(student_embeddings, dim=1)  # (B, width), unit rows
    t = F.normalize(teacher_embeddings, dim=1)  # (B, width), unit rows
    scores = s @ t.T / temperature  # (B, B): row i scores student i against every teacher row
    return F.cross_entropy(scores, torch.arange(len(s), device=s.device))  # the positive is the diagonal


def projection_heads(student_width, teacher_width, width=CRD_WIDTH, seed=0):
    """CRD's embedding heads: Linear(student_width → width) and Linear(teacher_width → width), one ModuleList
    whose initial weights depend only on ``seed`` (contrastive_loss normalises their outputs, as CRD does)."""
    check_count("student_width", student_width)
    check_count("teacher_width", teacher_width)
    check_count("width", width)
    return seeded(seed, lambda: nn.ModuleList([nn.Linear(student_width, width), nn.Linear(teacher_width, width)]))


def distill_contrastive(student, teacher, data, *, contrastive_weight=CRD_WEIGHT,
                        contrastive_temperature=CRD_TEMPERATURE, width=CRD_WIDTH, temperature=4.0, alpha=0.9,
                        settings=None, **overrides):
    """Train ``student`` on KD plus CRD's contrastive term on the penultimate features, jointly (Tian et al. 2020).

    loss = (1 − α)·CE + α·kd_loss(s, t, T) + β · contrastive_loss(g_s(f_s), g_t(f_t), τ)
    with f = kdlib.models.penultimate(net, x), g_s and g_t linear heads to ``width`` trained with the student
    (projection_heads, seeded by the settings' seed), β = ``contrastive_weight``, τ = ``contrastive_temperature``
    (defaults: the CRD code's 0.8, 0.07, 128). CRD draws 16,384 negatives from a memory bank; here they are the
    batch's other examples, so batch_size must be >= 2. The teacher is frozen: its features and logits are
    computed once, where it is. UNLABELLED rows get no CE term. ``settings``/keywords: see TrainSettings.
    Returns (History, heads); the heads are made on the student's device.
    """
    check_model("student", student)
    check_model("teacher", teacher)
    check_split(data)
    check_number("contrastive_weight", contrastive_weight, inclusive=True)
    check_number("contrastive_temperature", contrastive_temperature)
    check_count("width", width)
    check_temperature(temperature)
    check_fraction("alpha", alpha)
    settings = TrainSettings.of(settings, **overrides)
    if settings.batch_size < 2:
        raise ValueError(f"batch_size must be >= 2: the other examples of a batch are the negatives, "
                         f"got {settings.batch_size}")
    t_features, t_logits, student_width = teacher_features(student, teacher, data, settings.batch_size)
    heads = projection_heads(student_width, t_features.shape[1], width, settings.seed).to(device_of(student))
    pair = nn.ModuleList([student, heads])  # one module, so fit's optimiser updates the student and both heads

    def batch_loss(pair, x, y, t_logits, t_features):  # t_logits: (batch, classes), t_features: (batch, teacher)
        student, (student_head, teacher_head) = pair
        features = penultimate(student, x)  # (batch, student_width)
        logits = student[-1](features)  # (batch, classes)
        loss = (1 - alpha) * hard_loss(logits, y) + alpha * kd_loss(logits, t_logits, temperature)
        if len(x) < 2:  # a last mini-batch of one example has no negatives
            return loss
        return loss + contrastive_weight * contrastive_loss(student_head(features), teacher_head(t_features),
                                                            contrastive_temperature)

    history = fit(pair, (data.x, data.y, t_logits, t_features), batch_loss, settings, desc="contrastive")
    return history, heads
