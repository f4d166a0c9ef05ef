"""Plausible wrong answers in lesson 10_distilling_llms (see tests/mutants/__init__.py)."""

LESSON = "10_distilling_llms"

MUTANTS = [
    (LESSON, "reverse_kl_loss", "the forward KL (teacher ‖ student): lesson 09's direction", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
'''),
    (LESSON, "reverse_kl_loss", "F.kl_div(log_q, p) as in lesson 02: also the forward KL", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    vocab = student_logits.shape[-1]
    log_q = F.log_softmax(student_logits.reshape(-1, vocab) / temperature, dim=-1)
    p = F.softmax(teacher_logits.reshape(-1, vocab) / temperature, dim=-1)
    return F.kl_div(log_q, p, reduction="batchmean")
'''),
    (LESSON, "reverse_kl_loss", "multiplies by T² as lesson 02's kd_loss does", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * (log_q.exp() * (log_q - log_p)).sum(dim=-1).mean()
'''),
    (LESSON, "reverse_kl_loss", "softmax without dividing by T", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits, dim=-1)
    log_p = F.log_softmax(teacher_logits, dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum(dim=-1).mean()
'''),
    (LESSON, "reverse_kl_loss", "averages over the vocabulary too (.mean() instead of .sum(dim=-1))", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    return (log_q.exp() * (log_q - log_p)).mean()
'''),
    (LESSON, "reverse_kl_loss", "F.kl_div with reduction='batchmean' on 3-D logits: divides by the batch only", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)
'''),
    (LESSON, "reverse_kl_loss", "softmax over the sequence axis instead of the vocabulary", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=1)
    return (log_q.exp() * (log_q - log_p)).sum(dim=-1).mean()
'''),
    (LESSON, "reverse_kl_loss", "sums over the positions instead of averaging", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum()
'''),
    (LESSON, "reverse_kl_loss", "detaches the student's weights q: right value, wrong gradient", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    return (log_q.exp().detach() * (log_q - log_p)).sum(dim=-1).mean()
'''),
    (LESSON, "reverse_kl_loss", "calls kdlib's reverse_kl_loss", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    return kdlib.llm.reverse_kl_loss(student_logits, teacher_logits, temperature)
'''),
    (LESSON, "reverse_kl_loss", "calls kdlib's generalized_jsd_loss with beta = 1", '''
def reverse_kl_loss(student_logits, teacher_logits, temperature):
    return kdlib.llm.generalized_jsd_loss(student_logits, teacher_logits, beta=1.0, temperature=temperature)
'''),
    (LESSON, "correct_prefix_fraction", "accuracy of each position on its own (no cumulative product)", '''
def correct_prefix_fraction(generated, completions):
    return (generated == completions).float().mean(dim=0)
'''),
    (LESSON, "correct_prefix_fraction", "cumulative product along the batch axis", '''
def correct_prefix_fraction(generated, completions):
    return (generated == completions).long().cumprod(dim=0).float().mean(dim=0)
'''),
    (LESSON, "correct_prefix_fraction", "averages along the sequence instead of over the rows", '''
def correct_prefix_fraction(generated, completions):
    return (generated == completions).long().cumprod(dim=1).float().mean(dim=1)
'''),
    (LESSON, "correct_prefix_fraction", "cumulative mean of the per-position accuracy", '''
def correct_prefix_fraction(generated, completions):
    per_position = (generated == completions).float().mean(dim=0)
    return per_position.cumsum(dim=0) / torch.arange(1, len(per_position) + 1)
'''),
    (LESSON, "correct_prefix_fraction", "counts of correct rows instead of fractions", '''
def correct_prefix_fraction(generated, completions):
    return (generated == completions).long().cumprod(dim=1).sum(dim=0).float()
'''),
    (LESSON, "correct_prefix_fraction", "fraction of rows with all tokens right, repeated (no per-length curve)", '''
def correct_prefix_fraction(generated, completions):
    whole = (generated == completions).all(dim=1).float().mean()
    return whole.repeat(generated.shape[1])
'''),
    (LESSON, "correct_prefix_fraction", "off by one: entry k counts the first k tokens, starting from 1.0", '''
def correct_prefix_fraction(generated, completions):
    curve = (generated == completions).long().cumprod(dim=1).float().mean(dim=0)
    return torch.cat([torch.ones(1), curve[:-1]])
'''),
    (LESSON, "correct_prefix_fraction", "calls kdlib's correct_prefix_fraction", '''
def correct_prefix_fraction(generated, completions):
    return kdlib.llm.correct_prefix_fraction(generated, completions)
'''),
]
