"""Plausible wrong answers in lesson 03_logits_and_label_smoothing (see tests/mutants/__init__.py)."""

LESSON = "03_logits_and_label_smoothing"

MUTANTS = [
    (LESSON, "logit_matching_loss", "sums over the classes, averages over the batch", '''
def logit_matching_loss(student_logits, teacher_logits):
    return ((student_logits - teacher_logits) ** 2).sum(dim=-1).mean()
'''),
    (LESSON, "logit_matching_loss", "root mean squared error", '''
def logit_matching_loss(student_logits, teacher_logits):
    return ((student_logits - teacher_logits) ** 2).mean().sqrt()
'''),
    (LESSON, "logit_matching_loss", "MSE between softmax probabilities instead of logits", '''
def logit_matching_loss(student_logits, teacher_logits):
    return F.mse_loss(F.softmax(student_logits, dim=-1), F.softmax(teacher_logits, dim=-1))
'''),
    (LESSON, "logit_matching_loss", "detaches the student instead of the teacher", '''
def logit_matching_loss(student_logits, teacher_logits):
    return F.mse_loss(student_logits.detach(), teacher_logits)
'''),
    (LESSON, "logit_matching_loss", "squares the mean difference", '''
def logit_matching_loss(student_logits, teacher_logits):
    return (student_logits - teacher_logits).mean() ** 2
'''),
    (LESSON, "logit_matching_loss", "calls kdlib's logit_matching_loss", '''
def logit_matching_loss(student_logits, teacher_logits):
    return kdlib.logit_matching_loss(student_logits, teacher_logits)
'''),
    (LESSON, "soft_cross_entropy_gradient", "no T² factor", '''
def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    s = student_logits.detach().clone().requires_grad_(True)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    loss = -(p * F.log_softmax(s / temperature, dim=-1)).sum(dim=-1).mean()
    return torch.autograd.grad(loss, s)[0]
'''),
    (LESSON, "soft_cross_entropy_gradient", "closed form without the chain rule's 1/T: T² (q − p)", '''
def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    q = F.softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * (q - p) / len(student_logits)
'''),
    (LESSON, "soft_cross_entropy_gradient", "logits not divided by T", '''
def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    s = student_logits.detach().clone().requires_grad_(True)
    p = F.softmax(teacher_logits, dim=-1)
    loss = temperature**2 * -(p * F.log_softmax(s, dim=-1)).sum(dim=-1).mean()
    return torch.autograd.grad(loss, s)[0]
'''),
    (LESSON, "soft_cross_entropy_gradient", "softmax over the batch (dim=0)", '''
def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    s = student_logits.detach().clone().requires_grad_(True)
    p = F.softmax(teacher_logits / temperature, dim=0)
    loss = temperature**2 * -(p * F.log_softmax(s / temperature, dim=0)).sum(dim=-1).mean()
    return torch.autograd.grad(loss, s)[0]
'''),
    (LESSON, "soft_cross_entropy_gradient", "sums over the batch instead of averaging", '''
def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    q = F.softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature * (q - p)
'''),
    (LESSON, "soft_cross_entropy_gradient", "sign flipped: p − q", '''
def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    q = F.softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature * (p - q) / len(student_logits)
'''),
    (LESSON, "soft_cross_entropy_gradient", "mutates the learner's input tensor", '''
def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    student_logits.requires_grad_(True)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    loss = temperature**2 * -(p * F.log_softmax(student_logits / temperature, dim=-1)).sum(dim=-1).mean()
    loss.backward()
    return student_logits.grad
'''),
    (LESSON, "soft_cross_entropy_gradient", "uses kdlib's kd_loss", '''
def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    s = student_logits.detach().clone().requires_grad_(True)
    return torch.autograd.grad(kdlib.kd_loss(s, teacher_logits, temperature), s)[0]
'''),
    (LESSON, "class_spread_ratio", "between-centroid mean includes the zero diagonal", '''
def class_spread_ratio(features, labels):
    classes = labels.unique()
    centroids = torch.stack([features[labels == c].mean(dim=0) for c in classes])
    own = centroids[torch.searchsorted(classes, labels)]
    return (features - own).norm(dim=1).mean() / torch.cdist(centroids, centroids).mean()
'''),
    (LESSON, "class_spread_ratio", "squared distances", '''
def class_spread_ratio(features, labels):
    classes = labels.unique()
    centroids = torch.stack([features[labels == c].mean(dim=0) for c in classes])
    own = centroids[torch.searchsorted(classes, labels)]
    return ((features - own) ** 2).sum(dim=1).mean() / (torch.pdist(centroids) ** 2).mean()
'''),
    (LESSON, "class_spread_ratio", "within measured to the mean of all examples", '''
def class_spread_ratio(features, labels):
    classes = labels.unique()
    centroids = torch.stack([features[labels == c].mean(dim=0) for c in classes])
    return (features - features.mean(dim=0)).norm(dim=1).mean() / torch.pdist(centroids).mean()
'''),
    (LESSON, "class_spread_ratio", "within averaged per class, not per example", '''
def class_spread_ratio(features, labels):
    classes = labels.unique()
    centroids = torch.stack([features[labels == c].mean(dim=0) for c in classes])
    within = torch.stack([(features[labels == c] - centroids[i]).norm(dim=1).mean() for i, c in enumerate(classes)])
    return within.mean() / torch.pdist(centroids).mean()
'''),
    (LESSON, "class_spread_ratio", "assumes the labels are 0 .. C−1", '''
def class_spread_ratio(features, labels):
    centroids = torch.stack([features[labels == c].mean(dim=0) for c in range(int(labels.max()) + 1)])
    return (features - centroids[labels]).norm(dim=1).mean() / torch.pdist(centroids).mean()
'''),
    (LESSON, "soft_cross_entropy_gradient", "calls kdlib's soft_cross_entropy_gradient", '''
def soft_cross_entropy_gradient(student_logits, teacher_logits, temperature):
    return kdlib.losses.soft_cross_entropy_gradient(student_logits, teacher_logits, temperature)
'''),
    (LESSON, "class_spread_ratio", "calls kdlib's class_spread_ratio", '''
def class_spread_ratio(features, labels):
    return metrics.class_spread_ratio(features, labels)
'''),
]
