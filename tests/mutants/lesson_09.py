"""Plausible wrong answers in lesson 09_distilling_language_models (see tests/mutants/__init__.py)."""

MUTANTS = [
    ("09_distilling_language_models", "token_kd_loss", "reduction='mean' also averages over the vocabulary", '''
def token_kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(log_q, p, reduction="mean")
'''),
    ("09_distilling_language_models", "token_kd_loss", "KL in the wrong direction (student ‖ teacher)", '''
def token_kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * (log_q.exp() * (log_q - log_p)).sum(dim=-1).mean()
'''),
    ("09_distilling_language_models", "token_kd_loss", "softmax over the time axis instead of the vocabulary", '''
def token_kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=1)
    return temperature**2 * (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
'''),
    ("09_distilling_language_models", "token_kd_loss", "batchmean on 3-D logits: averages over the batch only (× time)", '''
def token_kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(log_q, p, reduction="batchmean")
'''),
    ("09_distilling_language_models", "token_kd_loss", "no T² factor", '''
def token_kd_loss(student_logits, teacher_logits, temperature):
    vocab = student_logits.shape[-1]
    log_q = F.log_softmax(student_logits.reshape(-1, vocab) / temperature, dim=-1)
    p = F.softmax(teacher_logits.reshape(-1, vocab) / temperature, dim=-1)
    return F.kl_div(log_q, p, reduction="batchmean")
'''),
    ("09_distilling_language_models", "token_kd_loss", "softmax without dividing by T", '''
def token_kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits, dim=-1)
    log_p = F.log_softmax(teacher_logits, dim=-1)
    return temperature**2 * (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
'''),
    ("09_distilling_language_models", "token_kd_loss", "sums over the positions instead of averaging", '''
def token_kd_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(log_q, p, reduction="sum")
'''),
    ("09_distilling_language_models", "token_kd_loss", "nn.KLDivLoss fed probabilities instead of log-probabilities", '''
def token_kd_loss(student_logits, teacher_logits, temperature):
    vocab = student_logits.shape[-1]
    q = F.softmax(student_logits.reshape(-1, vocab) / temperature, dim=-1)
    p = F.softmax(teacher_logits.reshape(-1, vocab) / temperature, dim=-1)
    return temperature**2 * torch.nn.KLDivLoss(reduction="batchmean")(q, p)
'''),
    ("09_distilling_language_models", "token_kd_loss", "calls kdlib's token_kd_loss", '''
def token_kd_loss(student_logits, teacher_logits, temperature):
    return kdlib.language.token_kd_loss(student_logits, teacher_logits, temperature)
'''),
]
