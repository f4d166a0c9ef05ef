"""Plausible wrong answers in lesson 04_relational_kd (see tests/mutants/__init__.py)."""

MUTANTS = [
    ("04_relational_kd", "rkd_distance_loss", "no normalisation by the mean distance", '''
def rkd_distance_loss(student_emb, teacher_emb):
    student = (student_emb[:, None, :] - student_emb[None, :, :]).norm(dim=-1)
    teacher = (teacher_emb[:, None, :] - teacher_emb[None, :, :]).norm(dim=-1).detach()
    return F.smooth_l1_loss(student, teacher)
'''),
    ("04_relational_kd", "rkd_distance_loss", "mean distance over all N² entries, zero diagonal included", '''
def rkd_distance_loss(student_emb, teacher_emb):
    def normalised(emb):
        d = (emb[:, None, :] - emb[None, :, :]).norm(dim=-1)
        return d / d.mean()
    return F.smooth_l1_loss(normalised(student_emb), normalised(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_distance_loss", "mean distance over the off-diagonal pairs, not the nonzero ones", '''
def rkd_distance_loss(student_emb, teacher_emb):
    def normalised(emb):
        d = (emb[:, None, :] - emb[None, :, :]).norm(dim=-1)
        n = len(emb)
        return d / (d.sum() / (n * n - n))
    return F.smooth_l1_loss(normalised(student_emb), normalised(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_distance_loss", "MSE instead of smooth-L1", '''
def rkd_distance_loss(student_emb, teacher_emb):
    def normalised(emb):
        d = (emb[:, None, :] - emb[None, :, :]).norm(dim=-1)
        return d / d[d > 0].mean()
    return F.mse_loss(normalised(student_emb), normalised(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_distance_loss", "teacher not detached", '''
def rkd_distance_loss(student_emb, teacher_emb):
    def normalised(emb):
        d = (emb[:, None, :] - emb[None, :, :]).norm(dim=-1)
        return d / d[d > 0].mean()
    return F.smooth_l1_loss(normalised(student_emb), normalised(teacher_emb))
'''),
    ("04_relational_kd", "rkd_distance_loss", "both sides divided by the teacher's mean distance", '''
def rkd_distance_loss(student_emb, teacher_emb):
    student = (student_emb[:, None, :] - student_emb[None, :, :]).norm(dim=-1)
    teacher = (teacher_emb[:, None, :] - teacher_emb[None, :, :]).norm(dim=-1).detach()
    mu = teacher[teacher > 0].mean()
    return F.smooth_l1_loss(student / mu, teacher / mu)
'''),
    ("04_relational_kd", "rkd_distance_loss", "squared distances", '''
def rkd_distance_loss(student_emb, teacher_emb):
    def normalised(emb):
        d = (emb[:, None, :] - emb[None, :, :]).pow(2).sum(-1)
        return d / d[d > 0].mean()
    return F.smooth_l1_loss(normalised(student_emb), normalised(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_distance_loss", "sqrt of the sum of squares: NaN gradient at the zero diagonal", '''
def rkd_distance_loss(student_emb, teacher_emb):
    def normalised(emb):
        d = (emb[:, None, :] - emb[None, :, :]).pow(2).sum(-1).sqrt()
        return d / d[d > 0].mean()
    return F.smooth_l1_loss(normalised(student_emb), normalised(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_distance_loss", "torch.cdist's default (dot-product) path for batches over 25 rows", '''
def rkd_distance_loss(student_emb, teacher_emb):
    def normalised(emb):
        d = torch.cdist(emb, emb)
        return d / d[d > 0].mean()
    return F.smooth_l1_loss(normalised(student_emb), normalised(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_distance_loss", "calls kdlib's rkd_distance_loss", '''
def rkd_distance_loss(student_emb, teacher_emb):
    return kdlib.relational.rkd_distance_loss(student_emb, teacher_emb)
'''),
    ("04_relational_kd", "rkd_angle_loss", "difference vectors not normalised", '''
def rkd_angle_loss(student_emb, teacher_emb):
    def cosines(emb):
        differences = emb[None, :, :] - emb[:, None, :]
        return differences @ differences.transpose(1, 2)
    return F.smooth_l1_loss(cosines(student_emb), cosines(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_angle_loss", "MSE instead of smooth-L1", '''
def rkd_angle_loss(student_emb, teacher_emb):
    def cosines(emb):
        unit = F.normalize(emb[None, :, :] - emb[:, None, :], dim=-1)
        return unit @ unit.transpose(1, 2)
    return F.mse_loss(cosines(student_emb), cosines(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_angle_loss", "teacher not detached", '''
def rkd_angle_loss(student_emb, teacher_emb):
    def cosines(emb):
        unit = F.normalize(emb[None, :, :] - emb[:, None, :], dim=-1)
        return unit @ unit.transpose(1, 2)
    return F.smooth_l1_loss(cosines(student_emb), cosines(teacher_emb))
'''),
    ("04_relational_kd", "rkd_angle_loss", "cosines between the embeddings themselves: no vertex", '''
def rkd_angle_loss(student_emb, teacher_emb):
    def cosines(emb):
        unit = F.normalize(emb, dim=-1)
        return unit @ unit.T
    return F.smooth_l1_loss(cosines(student_emb), cosines(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_angle_loss", "difference vectors normalised along the batch axis", '''
def rkd_angle_loss(student_emb, teacher_emb):
    def cosines(emb):
        unit = F.normalize(emb[None, :, :] - emb[:, None, :], dim=1)
        return unit @ unit.transpose(1, 2)
    return F.smooth_l1_loss(cosines(student_emb), cosines(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_angle_loss", "averaged over the distinct triples only", '''
def rkd_angle_loss(student_emb, teacher_emb):
    def cosines(emb):
        unit = F.normalize(emb[None, :, :] - emb[:, None, :], dim=-1)
        return unit @ unit.transpose(1, 2)
    n = len(student_emb)
    index = torch.arange(n)
    distinct = (index[:, None, None] != index[None, :, None]) & (index[:, None, None] != index[None, None, :]) \\
        & (index[None, :, None] != index[None, None, :])
    return F.smooth_l1_loss(cosines(student_emb)[distinct], cosines(teacher_emb.detach())[distinct])
'''),
    ("04_relational_kd", "rkd_angle_loss", "the vectors divided by their norm: NaN at the zero vectors", '''
def rkd_angle_loss(student_emb, teacher_emb):
    def cosines(emb):
        differences = emb[None, :, :] - emb[:, None, :]
        unit = differences / differences.norm(dim=-1, keepdim=True)
        return torch.nan_to_num(unit @ unit.transpose(1, 2))
    return F.smooth_l1_loss(cosines(student_emb), cosines(teacher_emb.detach()))
'''),
    ("04_relational_kd", "rkd_angle_loss", "calls kdlib's rkd_angle_loss", '''
def rkd_angle_loss(student_emb, teacher_emb):
    return kdlib.relational.rkd_angle_loss(student_emb, teacher_emb)
'''),
]
