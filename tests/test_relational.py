"""Relational KD (Park et al. CVPR 2019): hand values, an independent loop computation, invariances,
gradients, errors, and a short digits run where RKD must shape the student's embedding."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from device_probe import QUICK, TOY, caller_model, hinton_objective64
from kdlib.data import Split, load_splits
from kdlib.models import mlp, penultimate
from kdlib.relational import (distill_relational, pairwise_distances, recall_at_1, rkd_angle_loss,
                              rkd_distance_loss, rkd_loss)
from kdlib.training import TrainSettings, distill, train

# a 3-4-5 right triangle (teacher) and three evenly spaced collinear points (student)
TRIANGLE = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
LINE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]], dtype=torch.float64)


def huber(x):
    return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5


def loop_distance_loss(student, teacher):
    """RKD-D written out with Python loops over pairs, in float64."""
    def normalised(points):
        n = len(points)
        d = [[math.dist(points[i], points[j]) for j in range(n)] for i in range(n)]
        nonzero = [v for row in d for v in row if v > 0]
        mean = sum(nonzero) / len(nonzero)
        return [[v / mean for v in row] for row in d]

    s, t = normalised(student.tolist()), normalised(teacher.tolist())
    n = len(s)
    return sum(huber(s[i][j] - t[i][j]) for i in range(n) for j in range(n)) / n**2


def loop_angle_loss(student, teacher):
    """RKD-A written out with Python loops over triples, in float64; degenerate triples count as cos 0."""
    def cosine(points, i, j, k):
        a = [p - q for p, q in zip(points[i], points[j])]
        b = [p - q for p, q in zip(points[k], points[j])]
        na, nb = math.hypot(*a), math.hypot(*b)
        if na == 0 or nb == 0:
            return 0.0
        return sum(x * y for x, y in zip(a, b)) / (na * nb)

    s, t = student.tolist(), teacher.tolist()
    n = len(s)
    triples = list(itertools.product(range(n), repeat=3))
    return sum(huber(cosine(s, i, j, k) - cosine(t, i, j, k)) for i, j, k in triples) / n**3


# ----------------------------------------------------------------------------- hand values

def test_pairwise_distances_of_a_right_triangle():
    expected = torch.tensor([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(pairwise_distances(TRIANGLE), expected, atol=1e-12)


def test_distance_loss_hand_value():
    # teacher distances 3, 4, 5 / mean 4 -> 0.75, 1, 1.25; student 1, 2, 1 / mean 4/3 -> 0.75, 1.5, 0.75.
    # Pairs (0,2) and (1,2) differ by ±0.5, each counted twice: 4 · 0.5 · 0.5² / 9 = 1/18.
    loss = rkd_distance_loss(LINE, TRIANGLE)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(1 / 18, abs=1e-12)


def test_angle_loss_hand_value():
    # Teacher cosines at vertices 0, 1, 2: 0, 3/5, 4/5. Student (collinear): 1, -1, 1.
    # Differences 1, -1.6, 0.2 -> Huber 0.5, 1.1, 0.02, each for two ordered pairs (i, k):
    # 2 · 1.62 / 27 = 0.12. Triples with i = k agree (cos 1) and degenerate ones are 0 for both.
    assert rkd_angle_loss(LINE, TRIANGLE).item() == pytest.approx(0.12, abs=1e-12)


def test_rkd_loss_weights_the_two_terms():
    expected = 25 * (1 / 18) + 50 * 0.12
    assert rkd_loss(LINE, TRIANGLE).item() == pytest.approx(expected, abs=1e-10)
    assert rkd_loss(LINE, TRIANGLE, distance_weight=1.0, angle_weight=2.0).item() == pytest.approx(1 / 18 + 0.24, abs=1e-12)


def test_losses_match_independent_loop_computation_with_different_widths():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(6, 3, generator=g, dtype=torch.float64)
    teacher = torch.randn(6, 5, generator=g, dtype=torch.float64) * 3
    teacher[4] = teacher[1]  # a repeated teacher embedding: zero distance and degenerate angles
    assert rkd_distance_loss(student, teacher).item() == pytest.approx(loop_distance_loss(student, teacher), abs=1e-12)
    assert rkd_angle_loss(student, teacher).item() == pytest.approx(loop_angle_loss(student, teacher), abs=1e-10)
    # large enough differences to reach the linear branch of the Huber loss as well
    far = torch.randn(6, 2, generator=g, dtype=torch.float64) ** 3 * 10
    assert rkd_distance_loss(far, teacher).item() == pytest.approx(loop_distance_loss(far, teacher), abs=1e-12)


def test_recall_at_1_hand_value():
    points = torch.tensor([[0.0], [1.0], [10.0], [12.0]])
    labels = torch.tensor([0, 1, 2, 2])
    # 0 -> 1 (other label), 1 -> 0 (other), 10 -> 12 (same), 12 -> 10 (same)
    assert recall_at_1(points, labels) == 0.5
    assert recall_at_1(points, labels, chunk_size=1) == 0.5  # chunks must not shift the self-exclusion
    assert recall_at_1(points, torch.tensor([3, 3, 3, 3])) == 1.0


# ----------------------------------------------------------------------------- invariances

def rotation(angle):
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


def test_losses_invariant_to_scaling_rotating_and_shifting_the_teacher():
    g = torch.Generator().manual_seed(1)
    student = torch.randn(8, 4, generator=g, dtype=torch.float64)
    teacher = torch.randn(8, 2, generator=g, dtype=torch.float64)
    moved = 7.5 * teacher @ rotation(0.9).T + torch.tensor([3.0, -2.0], dtype=torch.float64)
    for loss in (rkd_distance_loss, rkd_angle_loss):
        assert loss(student, moved).item() == pytest.approx(loss(student, teacher).item(), abs=1e-12)
        assert loss(student, teacher).item() > 1e-3  # not trivially zero


def test_zero_loss_when_student_is_teacher_up_to_scale_even_in_another_width():
    g = torch.Generator().manual_seed(2)
    teacher = torch.randn(7, 3, generator=g, dtype=torch.float64)
    # embed the teacher in 5 dimensions with orthonormal columns, then scale by 0.01
    basis, _ = torch.linalg.qr(torch.randn(5, 3, generator=g, dtype=torch.float64))  # (5, 3)
    student = 0.01 * teacher @ basis.T  # (7, 5)
    assert rkd_distance_loss(student, teacher).item() == pytest.approx(0.0, abs=1e-12)
    assert rkd_angle_loss(student, teacher).item() == pytest.approx(0.0, abs=1e-12)
    assert rkd_loss(student, teacher).item() == pytest.approx(0.0, abs=1e-10)


# ----------------------------------------------------------------------------- gradients

def test_gradient_reaches_student_only():
    g = torch.Generator().manual_seed(3)
    student = torch.randn(5, 3, generator=g, requires_grad=True)
    teacher = torch.randn(5, 4, generator=g, requires_grad=True)
    rkd_loss(student, teacher).backward()
    assert teacher.grad is None
    assert student.grad is not None and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


def test_gradient_is_finite_when_student_embeddings_coincide():
    student = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [3.0, 1.0]], requires_grad=True)
    teacher = torch.randn(4, 3, generator=torch.Generator().manual_seed(4))
    rkd_loss(student, teacher).backward()
    assert torch.isfinite(student.grad).all()


def test_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(5)
    student = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(5, 2, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: rkd_loss(s, teacher, 1.0, 2.0), (student,))


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("loss", [rkd_distance_loss, rkd_angle_loss, rkd_loss])
def test_batch_mismatch_raises(loss):
    with pytest.raises(ValueError, match="same batch.*4 and 5"):
        loss(torch.randn(4, 3), torch.randn(5, 3))


@pytest.mark.parametrize("shape", [(6,), (2, 3, 4)])
def test_non_2d_input_raises(shape):
    with pytest.raises(ValueError, match=r"\(batch, features\)"):
        rkd_distance_loss(torch.randn(*shape), torch.randn(6, 2))
    with pytest.raises(ValueError, match=r"\(batch, features\)"):
        rkd_angle_loss(torch.randn(6, 2), torch.randn(*shape))


# ----------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def digits_and_teacher():
    splits = load_splits("digits", seed=0)
    teacher = mlp((1, 8, 8), 10, width=128, depth=2, seed=0)
    train(teacher, splits.train, epochs=15, progress=False)
    return splits, teacher


def test_rkd_shapes_the_student_embedding_on_digits(digits_and_teacher):
    splits, teacher = digits_and_teacher
    kd_student = mlp((1, 8, 8), 10, width=16, depth=1, seed=0)
    rkd_student = mlp((1, 8, 8), 10, width=16, depth=1, seed=0)
    distill(kd_student, teacher, splits.train, epochs=6, seed=0, progress=False)
    distill_relational(rkd_student, teacher, splits.train, epochs=6, seed=0, progress=False)
    x, y = splits.test
    with torch.no_grad():
        teacher_features = penultimate(teacher, x[:128])
        kd_features, rkd_features = penultimate(kd_student, x), penultimate(rkd_student, x)
        kd_relations = rkd_loss(kd_features[:128], teacher_features)
        rkd_relations = rkd_loss(rkd_features[:128], teacher_features)
    # on held-out digits the RKD student's features keep the teacher's relations better ...
    assert rkd_relations < 0.7 * kd_relations
    # ... and its nearest neighbours share their labels more often
    assert recall_at_1(rkd_features, y) > recall_at_1(kd_features, y) + 0.02


def test_distill_relational_is_deterministic(digits_and_teacher):
    splits, teacher = digits_and_teacher
    small = Split(splits.train.x[:200], splits.train.y[:200])
    weights = []
    for how in (dict(epochs=1, batch_size=32, seed=7, progress=False),
                dict(settings=TrainSettings(epochs=1, batch_size=32, seed=7, progress=False)),
                dict(settings=TrainSettings(epochs=3, batch_size=32, seed=7, progress=False), epochs=1)):
        student = mlp((1, 8, 8), 10, width=8, depth=1, seed=3)
        distill_relational(student, teacher, small, **how)  # the lessons' keywords, or settings, or both
        weights.append(torch.cat([p.flatten() for p in student.parameters()]))
    assert all(torch.equal(weights[0], w) for w in weights[1:])


def test_one_full_batch_step_records_the_float64_loss():
    """History.loss[0] of a one-batch epoch is (1 − α)·CE(labelled rows) + α·T²·KL + λ_D·RKD-D + λ_A·RKD-A,
    recomputed here in float64 with the loop versions of the RKD terms, from copies of the untrained models."""
    alpha, temperature, distance_weight, angle_weight = 0.6, 2.0, 3.0, 5.0
    t64 = caller_model("train", width=6).double().eval()  # the teacher runs frozen, in eval mode
    s64 = mlp((1, 8, 8), 3, width=4, depth=1, seed=1).double()
    x = TOY.x.double()
    with torch.no_grad():
        f_s, f_t = s64[:-1](x), t64[:-1](x)
        s, t = s64[-1](f_s), t64[-1](f_t)
        kd = hinton_objective64(s, F.softmax(t / temperature, dim=1), TOY.y, temperature, alpha)
    expected = kd.item() + distance_weight * loop_distance_loss(f_s, f_t) + angle_weight * loop_angle_loss(f_s, f_t)
    history = distill_relational(mlp((1, 8, 8), 3, width=4, depth=1, seed=1), caller_model("train", width=6), TOY,
                                 temperature=temperature, alpha=alpha, distance_weight=distance_weight,
                                 angle_weight=angle_weight, epochs=1, batch_size=len(TOY.x), progress=False)
    assert history.loss[0] == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------- devices

def test_relations_on_the_logits_record_their_float64_loss():
    """With layer="logits" the RKD terms compare the two models' logits instead of their penultimate features."""
    alpha, temperature, distance_weight, angle_weight = 0.6, 2.0, 3.0, 5.0
    t64 = caller_model("train", width=6).double().eval()
    s64 = mlp((1, 8, 8), 3, width=4, depth=1, seed=1).double()
    with torch.no_grad():
        s, t = s64(TOY.x.double()), t64(TOY.x.double())  # (N, 3) logits
        kd = hinton_objective64(s, F.softmax(t / temperature, dim=1), TOY.y, temperature, alpha)
    expected = kd.item() + distance_weight * loop_distance_loss(s, t) + angle_weight * loop_angle_loss(s, t)
    history = distill_relational(mlp((1, 8, 8), 3, width=4, depth=1, seed=1), caller_model("train", width=6), TOY,
                                 temperature=temperature, alpha=alpha, distance_weight=distance_weight,
                                 angle_weight=angle_weight, layer="logits", epochs=1, batch_size=len(TOY.x),
                                 progress=False)
    assert history.loss[0] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="layer must be one of"):
        distill_relational(mlp((1, 8, 8), 3, width=4, depth=1, seed=1), caller_model("train", width=6), TOY,
                           layer="features", **QUICK)


def tensors_in(value):
    if torch.is_tensor(value):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from tensors_in(item)
    elif isinstance(value, dict):
        yield from tensors_in(list(value.values()))


class DeviceMixes(TorchFunctionMode):
    """Records every torch call whose tensor arguments sit on more than one device: meta, unlike CUDA, accepts
    a CPU index tensor, so the meta probe alone would not see one."""

    def __init__(self):
        super().__init__()
        self.mixed = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if len({t.device for t in tensors_in((args, kwargs))}) > 1:
            self.mixed.append(getattr(func, "__name__", str(func)))
        return func(*args, **kwargs)


def test_recall_at_1_makes_its_tensors_where_the_embeddings_are():
    embeddings, labels = torch.randn(6, 3, device="meta"), torch.arange(6, device="meta")
    with DeviceMixes() as probe, pytest.raises(RuntimeError, match="meta"):  # only reading the count fails on meta
        recall_at_1(embeddings, labels, chunk_size=4)
    assert probe.mixed == []
    with DeviceMixes() as probe:  # the probe itself sees a mix
        torch.zeros(3, device="meta")[torch.arange(2)] = 1.0
    assert probe.mixed
