"""Contrastive representation distillation: the student's embedding of an example must pick out the teacher's
embedding of the same example among the teacher's embeddings of the other examples.

CRD (Tian, Krishnan & Isola, ICLR 2020) contrasts each example with many negatives drawn from a memory bank and
scores pairs with learned projection heads; the InfoNCE form below takes its negatives from the batch instead,
the simplification most later work uses. The projection heads are the caller's: pass their outputs.
"""
import torch
import torch.nn.functional as F

from .arguments import check_finite, check_same_device, check_temperature, check_tensor


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
