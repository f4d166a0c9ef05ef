"""Distillation losses as plain functions over logits.

Shapes: ``logits`` are ``(batch, classes)`` floating tensors, ``labels`` are ``(batch,)``
int64 class indices. Every function checks its inputs and raises ``ValueError`` (or
``TypeError`` for a non-tensor or a non-float tensor) saying what it expected and what came:
nothing is broadcast silently.
"""
import torch
import torch.nn.functional as F

from .arguments import (check_finite, check_fraction, check_labels, check_logit_pair, check_logits, check_number,
                        check_same_device, check_temperature)
from .data import UNLABELLED


def _check_labels(labels, logits, unlabelled=None):
    """Labels: int64 (batch,), one per row of logits, on their device, each a class index."""
    check_labels("labels", labels, logits.shape[1], batch=logits.shape[0], unlabelled=unlabelled)
    check_same_device("labels", labels, "logits", logits)


def soft_targets(logits, temperature):
    """Softened class probabilities softmax(z / T) over the last dimension (Hinton et al. 2015).

    p_i = exp(z_i / T) / sum_j exp(z_j / T). T = 1 is the ordinary softmax; a larger T flattens
    the distribution and exposes the small probabilities ("dark knowledge").
    """
    if not torch.is_tensor(logits) or not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point torch.Tensor, got {getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a last dimension of classes, got shape {tuple(logits.shape)}")
    check_temperature(temperature)
    check_finite("logits", logits)
    return F.softmax(logits / temperature, dim=-1)


def hard_loss(logits, labels):
    """The hard-label term of every KD loss: cross-entropy averaged over the labelled rows only.

    Rows labelled ``UNLABELLED`` (−1) are a transfer set and add nothing; a batch with no label gives 0.
    Written as one masked sum (no boolean indexing), so on an accelerator it never waits for the host.
    """
    check_logits("logits", logits)
    _check_labels(labels, logits, unlabelled=UNLABELLED)
    labelled = (labels != UNLABELLED).sum().clamp(min=1)  # () count, kept on the device
    return F.cross_entropy(logits, labels, ignore_index=UNLABELLED, reduction="sum") / labelled


def kd_loss(student_logits, teacher_logits, temperature):
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network": the soft-target loss.

    kd = T² · KL(softmax(t/T) ‖ softmax(s/T)), summed over classes, averaged over the batch.
    The soft term's gradient w.r.t. the student logits scales as 1/T², so T² keeps its weight
    against the hard-label term unchanged when T changes.
    """
    check_logit_pair(student_logits, teacher_logits)
    check_temperature(temperature)
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)  # (batch, classes)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)  # (batch, classes)
    # KL(teacher ‖ student): the teacher's distribution weights the log-ratio.
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)  # (batch,)
    return temperature**2 * kl.mean()


def distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    """Hinton et al. 2015: hard-label cross-entropy mixed with the soft-target loss.

    loss = (1 − α) · CE(s, labels) + α · T² · KL(softmax(t/T) ‖ softmax(s/T)).
    α = 0 is ordinary training on labels; α = 1 learns from the teacher only.
    """
    check_logit_pair(student_logits, teacher_logits)
    _check_labels(labels, student_logits)
    check_fraction("alpha", alpha)
    hard = hard_loss(student_logits, labels)
    soft = kd_loss(student_logits, teacher_logits, temperature)
    return (1 - alpha) * hard + alpha * soft


def logit_matching_loss(student_logits, teacher_logits):
    """Ba & Caruana 2014, "Do Deep Nets Really Need to be Deep?": regress the teacher's logits.

    loss = mean over all (batch, classes) entries of (s − t)². Logits keep the magnitudes that
    the softmax squashes; Hinton 2015 shows soft-target KD tends to this as T grows.
    """
    check_logit_pair(student_logits, teacher_logits)
    return F.mse_loss(student_logits, teacher_logits)


def smoothed_cross_entropy(logits, labels, smoothing):
    """Szegedy et al. 2016 label smoothing: cross-entropy against (1 − ε)·one-hot + ε/K.

    Same value as torch.nn.functional.cross_entropy(logits, labels, label_smoothing=ε).
    Müller, Kornblith & Hinton 2019 show a teacher trained this way is a worse teacher.
    """
    check_logits("logits", logits)
    _check_labels(labels, logits)
    check_fraction("smoothing", smoothing)
    classes = logits.shape[-1]
    log_p = F.log_softmax(logits, dim=-1)  # (batch, classes)
    target = torch.full_like(log_p, smoothing / classes)
    target[torch.arange(len(labels)), labels] += 1 - smoothing
    return -(target * log_p).sum(dim=-1).mean()


def dkd_loss(student_logits, teacher_logits, labels, temperature, alpha=1.0, beta=8.0):
    """Zhao et al. 2022, "Decoupled Knowledge Distillation" (CVPR): KD split at the target class.

    With b = (p_target, 1 − p_target) the binary target-vs-rest probabilities and p̂ the distribution
    over the non-target classes alone, both at temperature T:
        TCKD = T² · KL(b_teacher ‖ b_student),   NCKD = T² · KL(p̂_teacher ‖ p̂_student),
        dkd  = α · TCKD + β · NCKD, each summed over classes and averaged over the batch.
    Hinton's loss is TCKD + (1 − p_target_teacher) · NCKD: a confident teacher silences the non-target
    knowledge; DKD gives it its own weight β. The paper adds CE on labels separately (here: ``distill``'s
    hard term) and ramps the loss up over the first epochs; use it as ``distill(..., soft_loss=dkd_loss)``.
    Every row needs its true label (no UNLABELLED rows).
    """
    check_logit_pair(student_logits, teacher_logits)
    _check_labels(labels, student_logits)
    check_temperature(temperature)
    check_number("alpha", alpha, inclusive=True)
    check_number("beta", beta, inclusive=True)
    if student_logits.shape[1] < 2:
        raise ValueError(f"dkd_loss needs at least 2 classes (a target and the rest), got {student_logits.shape[1]}")
    target = F.one_hot(labels, student_logits.shape[1]).bool()  # (batch, classes)

    def binary_and_rest(logits):
        # log (p_target, 1 − p_target), (batch, 2), and log p̂ over the non-target classes, (batch, classes),
        # from log-sum-exps (no log of a probability that rounds to 0 or 1); p̂ is 0 (log 0 here) at the target
        z = logits / temperature
        rest = z.masked_fill(target, float("-inf"))
        log_b = torch.stack([z[target], rest.logsumexp(dim=1)], dim=1) - z.logsumexp(dim=1, keepdim=True)
        return log_b, F.log_softmax(rest, dim=1).masked_fill(target, 0.0)

    log_b_s, log_q_s = binary_and_rest(student_logits)
    log_b_t, log_q_t = binary_and_rest(teacher_logits)
    tckd = (log_b_t.exp() * (log_b_t - log_b_s)).sum(dim=1).mean()
    nckd = (log_q_t.exp() * (log_q_t - log_q_s)).masked_fill(target, 0.0).sum(dim=1).mean()
    return temperature**2 * (alpha * tckd + beta * nckd)


def soft_term_gradient(student_logits, teacher_logits, temperature):
    """Gradient of the soft term *without* its T² factor, KL(softmax(t/T) ‖ softmax(s/T)) averaged over the
    batch, with respect to the student logits s (Hinton et al. 2015, section 2):

        ∂/∂s_i = (q_i − p_i) / (T · batch),  q = softmax(s/T), p = softmax(t/T).

    It falls as 1/T² when T grows (q − p itself shrinks as 1/T), which is why ``kd_loss`` multiplies by T².
    Closed form, no autograd: returns a new (batch, classes) tensor on the logits' device, with no graph.
    """
    check_logit_pair(student_logits, teacher_logits)
    check_temperature(temperature)
    q = F.softmax(student_logits.detach() / temperature, dim=-1)  # (batch, classes)
    p = F.softmax(teacher_logits.detach() / temperature, dim=-1)  # (batch, classes)
    return (q - p) / (temperature * student_logits.shape[0])


def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    """Gradient of the T²-scaled soft cross-entropy T² · mean_batch(−Σ_i softmax(t/T)_i log softmax(s/T)_i),
    the same as that of ``kd_loss`` (they differ by the teacher's entropy), with respect to the student logits:

        ∂/∂s_i = T · (q_i − p_i) / batch,  q = softmax(s/T), p = softmax(t/T).

    For zero-mean logits it tends to (s_i − t_i) / (K · batch), the gradient of ½ · logit_matching_loss
    (Hinton et al. 2015, section 2.1). Closed form, no autograd: a new (batch, classes) tensor, no graph.
    """
    return temperature**2 * soft_term_gradient(student_logits, teacher_logits, temperature)
