"""Plausible wrong answers in lesson 01_soft_targets (see tests/mutants/__init__.py)."""

MUTANTS = [
    ("01_soft_targets", "soft_targets", "softmax without dividing by T", '''
def soft_targets(logits, temperature):
    return torch.softmax(logits, dim=-1)
'''),
    ("01_soft_targets", "soft_targets", "multiplies the logits by T", '''
def soft_targets(logits, temperature):
    return torch.softmax(logits * temperature, dim=-1)
'''),
    ("01_soft_targets", "soft_targets", "normalises over the batch (dim=0)", '''
def soft_targets(logits, temperature):
    return torch.softmax(logits / temperature, dim=0)
'''),
    ("01_soft_targets", "soft_targets", "exp without subtracting the row maximum (overflow)", '''
def soft_targets(logits, temperature):
    e = torch.exp(logits / temperature)
    return e / e.sum(dim=-1, keepdim=True)
'''),
    ("01_soft_targets", "soft_targets", "calls kdlib's soft_targets through an alias", '''
from kdlib.losses import soft_targets as reference

def soft_targets(logits, temperature):
    return reference(logits, temperature)
'''),
    ("01_soft_targets", "class_similarity", "sums instead of averaging", '''
def class_similarity(probabilities, labels, classes):
    return torch.stack([probabilities[labels == c].sum(dim=0) for c in range(classes)])
'''),
    ("01_soft_targets", "class_similarity", "groups by predicted instead of true class", '''
def class_similarity(probabilities, labels, classes):
    predicted = probabilities.argmax(dim=1)
    return torch.stack([probabilities[predicted == c].mean(dim=0) for c in range(classes)])
'''),
    ("01_soft_targets", "class_similarity", "transposed (rows are the suggested class)", '''
def class_similarity(probabilities, labels, classes):
    return torch.stack([probabilities[labels == c].mean(dim=0) for c in range(classes)]).T
'''),
    ("01_soft_targets", "entropy", "0 · log 0 gives nan", '''
def entropy(probabilities):
    return -(probabilities * probabilities.log()).sum(dim=-1)
'''),
    ("01_soft_targets", "entropy", "bits instead of nats", '''
def entropy(probabilities):
    return -torch.special.xlogy(probabilities, probabilities).sum(dim=-1) / math.log(2)
'''),
    ("01_soft_targets", "entropy", "missing minus sign", '''
def entropy(probabilities):
    return torch.special.xlogy(probabilities, probabilities).sum(dim=-1)
'''),
]
