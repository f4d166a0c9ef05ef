"""Plausible wrong answers in lesson 02_distillation_loss (see tests/mutants/__init__.py)."""

MUTANTS = [
    ("02_distillation_loss", "kd_loss", "no T² factor", '''
def kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(log_q, p, reduction="batchmean")
'''),
    ("02_distillation_loss", "kd_loss", "KL in the wrong direction (student ‖ teacher)", '''
def kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * (log_q.exp() * (log_q - log_p)).sum(dim=-1).mean()
'''),
    ("02_distillation_loss", "kd_loss", "nn.KLDivLoss fed probabilities instead of log-probabilities", '''
def kd_loss(student_logits, teacher_logits, temperature):
    q = F.softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * torch.nn.KLDivLoss(reduction="batchmean")(q, p)
'''),
    ("02_distillation_loss", "kd_loss", "reduction='mean' also divides by the number of classes", '''
def kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(log_q, p, reduction="mean")
'''),
    ("02_distillation_loss", "kd_loss", "softmax without dividing by T", '''
def kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits, dim=-1)
    p = F.softmax(teacher_logits, dim=-1)
    return temperature**2 * F.kl_div(log_q, p, reduction="batchmean")
'''),
    ("02_distillation_loss", "kd_loss", "sums over the batch instead of averaging", '''
def kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(log_q, p, reduction="sum")
'''),
    ("02_distillation_loss", "kd_loss", "calls kdlib's kd_loss", '''
def kd_loss(student_logits, teacher_logits, temperature):
    return kdlib.kd_loss(student_logits, teacher_logits, temperature)
'''),
    ("02_distillation_loss", "distillation_loss", "alpha on the wrong term", '''
def distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    hard = F.cross_entropy(student_logits, labels)
    return alpha * hard + (1 - alpha) * kdlib.kd_loss(student_logits, teacher_logits, temperature)
'''),
    ("02_distillation_loss", "distillation_loss", "hard term not weighted by (1 - alpha)", '''
def distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    hard = F.cross_entropy(student_logits, labels)
    return hard + alpha * kdlib.kd_loss(student_logits, teacher_logits, temperature)
'''),
    ("02_distillation_loss", "distillation_loss", "calls kdlib's distillation_loss", '''
def distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    return kdlib.distillation_loss(student_logits, teacher_logits, labels, temperature, alpha)
'''),
    ("02_distillation_loss", "soft_term_gradient", "T² factor left in (gradient of kd_loss)", '''
def soft_term_gradient(student_logits, teacher_logits, temperature):
    s = student_logits.detach().clone().requires_grad_(True)
    return torch.autograd.grad(kdlib.kd_loss(s, teacher_logits, temperature), s)[0]
'''),
    ("02_distillation_loss", "soft_term_gradient", "divides by T instead of T²", '''
def soft_term_gradient(student_logits, teacher_logits, temperature):
    s = student_logits.detach().clone().requires_grad_(True)
    return torch.autograd.grad(kdlib.kd_loss(s, teacher_logits, temperature) / temperature, s)[0]
'''),
    ("02_distillation_loss", "soft_term_gradient", "mutates the learner's input tensor", '''
def soft_term_gradient(student_logits, teacher_logits, temperature):
    student_logits.requires_grad_(True)
    loss = kdlib.kd_loss(student_logits, teacher_logits, temperature) / temperature**2
    loss.backward()
    return student_logits.grad
'''),
    ("02_distillation_loss", "soft_term_gradient", "calls kdlib's soft_term_gradient", '''
def soft_term_gradient(student_logits, teacher_logits, temperature):
    return kdlib.losses.soft_term_gradient(student_logits, teacher_logits, temperature)
'''),
]
