"""Plausible wrong answers in lesson 06_many_teachers (see tests/mutants/__init__.py)."""

MUTANTS = [
    ("06_many_teachers", "ensemble_soft_targets", "averages the logits, then one softmax", '''
def ensemble_soft_targets(teacher_logits_list, temperature, weights=None):
    if weights is None:
        weights = [1.0] * len(teacher_logits_list)
    weights = torch.tensor(weights) / sum(weights)
    mean_logits = sum(w * t for w, t in zip(weights, teacher_logits_list))
    return F.softmax(mean_logits / temperature, dim=-1)
'''),
    ("06_many_teachers", "ensemble_soft_targets", "softmax without dividing by T", '''
def ensemble_soft_targets(teacher_logits_list, temperature, weights=None):
    probabilities = torch.stack([F.softmax(t, dim=-1) for t in teacher_logits_list])
    if weights is None:
        weights = [1.0] * len(teacher_logits_list)
    weights = torch.tensor(weights, dtype=probabilities.dtype)
    weights = weights / weights.sum()
    return (weights[:, None, None] * probabilities).sum(dim=0)
'''),
    ("06_many_teachers", "ensemble_soft_targets", "weights not divided by their sum", '''
def ensemble_soft_targets(teacher_logits_list, temperature, weights=None):
    probabilities = torch.stack([F.softmax(t / temperature, dim=-1) for t in teacher_logits_list])
    if weights is None:
        return probabilities.mean(dim=0)
    weights = torch.tensor(weights, dtype=probabilities.dtype)
    return (weights[:, None, None] * probabilities).sum(dim=0)
'''),
    ("06_many_teachers", "ensemble_soft_targets", "weights ignored (plain mean)", '''
def ensemble_soft_targets(teacher_logits_list, temperature, weights=None):
    probabilities = torch.stack([F.softmax(t / temperature, dim=-1) for t in teacher_logits_list])
    return probabilities.mean(dim=0)
'''),
    ("06_many_teachers", "ensemble_soft_targets", "averages over the batch axis instead of the teachers", '''
def ensemble_soft_targets(teacher_logits_list, temperature, weights=None):
    probabilities = torch.stack([F.softmax(t / temperature, dim=-1) for t in teacher_logits_list], dim=1)
    if weights is None:
        return probabilities.mean(dim=0)
    weights = torch.tensor(weights, dtype=probabilities.dtype)
    weights = weights / weights.sum()
    return (weights[None, :, None] * probabilities).sum(dim=0)
'''),
    ("06_many_teachers", "ensemble_soft_targets", "softmax over the batch axis (dim=0)", '''
def ensemble_soft_targets(teacher_logits_list, temperature, weights=None):
    probabilities = torch.stack([F.softmax(t / temperature, dim=0) for t in teacher_logits_list])
    if weights is None:
        weights = [1.0] * len(teacher_logits_list)
    weights = torch.tensor(weights, dtype=probabilities.dtype)
    weights = weights / weights.sum()
    return (weights[:, None, None] * probabilities).sum(dim=0)
'''),
    ("06_many_teachers", "ensemble_soft_targets", "calls kdlib's ensemble_soft_targets", '''
def ensemble_soft_targets(teacher_logits_list, temperature, weights=None):
    return kdlib.ensembles.ensemble_soft_targets(teacher_logits_list, temperature, weights)
'''),
    ("06_many_teachers", "hint_loss", "teacher features not detached", '''
def hint_loss(student_features, teacher_features, regressor):
    return 0.5 * (regressor(student_features) - teacher_features).pow(2).mean()
'''),
    ("06_many_teachers", "hint_loss", "regressor applied to the teacher's features", '''
def hint_loss(student_features, teacher_features, regressor):
    return 0.5 * (student_features - regressor(teacher_features.detach())).pow(2).mean()
'''),
    ("06_many_teachers", "hint_loss", "sum of squared errors instead of the mean", '''
def hint_loss(student_features, teacher_features, regressor):
    return 0.5 * (regressor(student_features) - teacher_features.detach()).pow(2).sum()
'''),
    ("06_many_teachers", "hint_loss", "F.mse_loss without the ½", '''
def hint_loss(student_features, teacher_features, regressor):
    return F.mse_loss(regressor(student_features), teacher_features.detach())
'''),
    ("06_many_teachers", "hint_loss", "summed over the features, averaged over the batch only", '''
def hint_loss(student_features, teacher_features, regressor):
    squared = (regressor(student_features) - teacher_features.detach()).pow(2)
    return 0.5 * squared.flatten(1).sum(dim=1).mean()
'''),
    ("06_many_teachers", "hint_loss", "calls kdlib's hint_loss", '''
def hint_loss(student_features, teacher_features, regressor):
    return kdlib.hints.hint_loss(student_features, teacher_features, regressor)
'''),
]
