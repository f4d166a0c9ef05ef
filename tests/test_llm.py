"""kdlib.llm: divergences against an independent float64 computation, the addition task, TinyGPT,
generation and the GKD loop (determinism, modes, devices, bad inputs)."""
import math

import pytest
import torch

from device_probe import follows_meta, on_meta
from kdlib import llm
from kdlib.training import fit

torch.set_num_threads(1)


def random_logits(*shape, seed=0, scale=3.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def reference(student, teacher, beta, temperature=1.0):
    """Per-position divergence in float64 from probabilities, written independently of kdlib.llm."""
    q = torch.softmax(student.double() / temperature, dim=-1)
    p = torch.softmax(teacher.double() / temperature, dim=-1)
    kl = lambda x, y: (x * (x.log() - y.log())).sum(dim=-1)  # noqa: E731
    if beta == 0:
        return kl(p, q)
    if beta == 1:
        return kl(q, p)
    m = beta * p + (1 - beta) * q
    return beta * kl(p, m) + (1 - beta) * kl(q, m)


LOSSES = [(lambda s, t, **k: llm.forward_kl_loss(s, t, **k), 0.0),
          (lambda s, t, **k: llm.reverse_kl_loss(s, t, **k), 1.0)] + [
          ((lambda beta: lambda s, t, **k: llm.generalized_jsd_loss(s, t, beta=beta, **k))(beta), beta)
          for beta in (0.0, 0.1, 0.5, 0.9, 1.0)]


@pytest.mark.parametrize("loss, beta", LOSSES)
@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_value_and_gradient_match_float64(loss, beta, temperature):
    s, t = random_logits(3, 5, 7, seed=1), random_logits(3, 5, 7, seed=2)
    expected = reference(s, t, beta, temperature).mean()
    assert torch.allclose(loss(s, t, temperature=temperature).double(), expected, atol=1e-5, rtol=1e-5)
    s32 = s.clone().requires_grad_(True)
    s64 = s.double().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(s32, t, temperature=temperature), s32)
    (grad64,) = torch.autograd.grad(reference(s64, t, beta, temperature).mean(), s64)
    assert torch.allclose(grad.double(), grad64, atol=1e-5)


def test_directions_on_one_position():
    # teacher p = (1/4, 3/4), student q = (1/2, 1/2)
    s, t = torch.tensor([[[0.0, 0.0]]]), torch.tensor([[[0.0, math.log(3)]]])
    forward = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    backward = 0.5 * math.log(2) + 0.5 * math.log(2 / 3)
    assert llm.forward_kl_loss(s, t).item() == pytest.approx(forward, abs=1e-6)
    assert llm.reverse_kl_loss(s, t).item() == pytest.approx(backward, abs=1e-6)
    m = torch.tensor([0.375, 0.625], dtype=torch.float64)
    jsd = 0.5 * (torch.tensor([0.25, 0.75]) * (torch.tensor([0.25, 0.75]) / m).log()).sum() + \
        0.5 * (0.5 * (0.5 / m).log()).sum()
    assert llm.generalized_jsd_loss(s, t, beta=0.5).item() == pytest.approx(jsd.item(), abs=1e-6)


def test_jsd_is_symmetric_at_one_half_and_vanishes_towards_the_ends():
    s, t = random_logits(2, 4, 6, seed=3), random_logits(2, 4, 6, seed=4)
    assert torch.allclose(llm.generalized_jsd_loss(s, t, beta=0.5), llm.generalized_jsd_loss(t, s, beta=0.5), atol=1e-6)
    assert llm.generalized_jsd_loss(s, t, beta=1e-4) < 1e-3 < llm.forward_kl_loss(s, t)
    assert llm.generalized_jsd_loss(s, t, beta=1 - 1e-4) < 1e-3 < llm.reverse_kl_loss(s, t)
    assert llm.forward_kl_loss(s, s).item() == pytest.approx(0, abs=1e-6)


def test_mask_counts_only_kept_positions():
    s, t = random_logits(2, 3, 5, seed=5), random_logits(2, 3, 5, seed=6)
    mask = torch.tensor([[True, False, False], [False, False, True]])
    expected = reference(s, t, 1.0)[mask].mean()
    assert llm.reverse_kl_loss(s, t, mask=mask).double().item() == pytest.approx(expected.item(), abs=1e-6)
    expected = reference(s, t, 0.3)[mask].mean()
    assert llm.generalized_jsd_loss(s, t, 0.3, mask=mask).double().item() == pytest.approx(expected.item(), abs=1e-6)


BAD_LOSS_CALLS = [
    (dict(student_logits=torch.zeros(2, 5)), ValueError, "(batch, sequence, vocab)"),
    (dict(student_logits=torch.zeros(2, 3, 4)), ValueError, "same shape"),
    (dict(student_logits=torch.zeros(2, 3, 5, dtype=torch.int64)), TypeError, "floating-point"),
    (dict(student_logits=[[0.0]]), TypeError, "torch.Tensor"),
    (dict(teacher_logits=torch.full((2, 3, 5), float("nan"))), ValueError, "NaN"),
    (dict(teacher_logits=torch.full((2, 3, 5), float("inf"))), ValueError, "infinite"),
    (dict(student_logits=torch.zeros(0, 3, 5), teacher_logits=torch.zeros(0, 3, 5)), ValueError, "empty"),
    (dict(temperature=0.0), ValueError, "temperature"),
    (dict(temperature=True), TypeError, "temperature"),
    (dict(mask=torch.ones(2, 3)), TypeError, "mask"),
    (dict(mask=torch.ones(3, 2, dtype=torch.bool)), ValueError, "mask"),
    (dict(mask=torch.zeros(2, 3, dtype=torch.bool)), ValueError, "no position"),
]


@pytest.mark.parametrize("function", [llm.forward_kl_loss, llm.reverse_kl_loss, llm.generalized_jsd_loss])
@pytest.mark.parametrize("changes, error, words", BAD_LOSS_CALLS)
def test_bad_loss_inputs_are_named(function, changes, error, words):
    arguments = dict(student_logits=torch.zeros(2, 3, 5), teacher_logits=torch.zeros(2, 3, 5)) | changes
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        function(**arguments)


@pytest.mark.parametrize("beta, error", [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                         (True, TypeError), ("0.5", TypeError)])
def test_bad_beta(beta, error):
    with pytest.raises(error, match="beta"):
        llm.generalized_jsd_loss(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3), beta=beta)


def test_gaussian_fits_cover_or_seek_modes():
    positions = torch.linspace(-5, 5, 41, dtype=torch.float64)
    target = 0.5 * torch.exp(-0.5 * ((positions + 2.5) / 0.6) ** 2) + 0.5 * torch.exp(-0.5 * ((positions - 2.5) / 0.6) ** 2)
    target = target / target.sum()
    mean_f, std_f, q_f = llm.fit_gaussian(target, positions, beta=0.0, mean=1.0, std=0.5)
    mean_r, std_r, q_r = llm.fit_gaussian(target, positions, beta=1.0, mean=1.0, std=0.5)
    assert abs(mean_f) < 0.2 and std_f > 2.0  # covers both modes, puts mass in the valley between them
    assert abs(mean_r - 2.5) < 0.05 and abs(std_r - 0.6) < 0.05  # seeks the nearer mode and fits it
    assert llm.fit_gaussian(target, positions, beta=1.0, mean=-1.0, std=0.5)[0] == pytest.approx(-2.5, abs=0.05)
    assert q_f.sum().item() == pytest.approx(1.0) and q_r.shape == target.shape
    with pytest.raises(ValueError, match="sum to 1"):
        llm.fit_gaussian(target * 2, positions, beta=0.0)

# ---- the task ----------------------------------------------------------------


def test_completions_are_correct_additions():
    assert llm.prompt_text(123, 459, 3, trace=False) == "123+459="
    assert llm.completion_text(123, 459, 3, trace=False) == "0582."
    assert llm.prompt_text(123, 459, 3, trace=True) == "123+459:"
    assert llm.completion_text(123, 459, 3, trace=True) == "218050=0582."  # 3+9=12, 2+5+1=8, 1+4=5
    assert llm.completion_text(999, 1, 3, trace=True) == "010101=1000."
    a, b = llm.problems(200, 3, seed=0)
    for trace in (False, True):
        prompts, completions = llm.tokens(a, b, 3, trace)
        assert llm.answers_correct(completions, a, b, 3).all()
        assert llm.decode(prompts[0]) + llm.decode(completions[0]) == llm.prompt_text(a[0].item(), b[0].item(), 3, trace) \
            + llm.completion_text(a[0].item(), b[0].item(), 3, trace)
    wrong = completions.clone()
    wrong[:, -2] = (wrong[:, -2] + 1) % 10
    assert not llm.answers_correct(wrong, a, b, 3).any()
    small_a, small_b = llm.problems(100, 3, seed=0, low_digits=2)
    assert small_a.max() < 100 and small_b.max() < 100
    assert torch.equal(llm.problems(5, 3, seed=7)[0], llm.problems(5, 3, seed=7)[0])
    with pytest.raises(ValueError, match="vocabulary"):
        llm.encode("12-3")
    with pytest.raises(TypeError, match="count"):
        llm.problems(2.5, 3, seed=0)
    with pytest.raises(ValueError, match="below 10"):
        llm.tokens(torch.tensor([1000]), torch.tensor([1]), 3, False)
    with pytest.raises(TypeError, match="int64"):
        llm.tokens(torch.tensor([1.0]), torch.tensor([1.0]), 3, False)
    with pytest.raises(ValueError, match="one shape"):
        llm.tokens(torch.tensor([1, 2]), torch.tensor([1]), 3, False)


def test_correct_prefix_fraction():
    truth = torch.tensor([[1, 2, 3], [1, 2, 3]])
    generated = torch.tensor([[1, 2, 3], [1, 9, 3]])  # the second row goes wrong at token 2 and stays wrong
    assert llm.correct_prefix_fraction(generated, truth).tolist() == [1.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="one shape"):
        llm.correct_prefix_fraction(generated[:, :2], truth)

# ---- the model and generation --------------------------------------------------


def test_tiny_gpt_is_seeded_and_causal():
    model = llm.tiny_gpt(width=16, layers=1, heads=2, seed=3)
    same = llm.tiny_gpt(width=16, layers=1, heads=2, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), same.parameters()))
    x = llm.encode("12+34=046.").unsqueeze(0)
    y = x.clone()
    y[0, -1] = 3
    assert torch.equal(model(x)[:, :-1], model(y)[:, :-1])  # the last token changes no earlier prediction
    with pytest.raises(ValueError, match="context"):
        model(torch.zeros(1, 25, dtype=torch.int64))
    with pytest.raises(ValueError, match="multiple of heads"):
        llm.tiny_gpt(width=10, heads=4)
    with pytest.raises(TypeError, match="layers"):
        llm.tiny_gpt(layers=1.0)


def test_generate_is_seeded_and_leaves_the_model_as_it_was():
    model = llm.tiny_gpt(width=16, layers=1, heads=2, seed=0).train()
    prompts, _ = llm.tokens(*llm.problems(8, 3, seed=0), 3, False)
    before = prompts.clone()
    first = llm.generate(model, prompts, 5, temperature=1.0, seed=4)
    assert first.shape == (8, 5) and first.dtype == torch.int64
    assert torch.equal(first, llm.generate(model, prompts, 5, temperature=1.0, seed=4))
    assert torch.equal(prompts, before) and model.training
    greedy = llm.generate(model, prompts, 5, temperature=0)
    with torch.no_grad():
        model.eval()
        assert torch.equal(greedy[:, 0], model(prompts)[:, -1].argmax(dim=-1))
    for bad, error in [(dict(temperature=-1.0), ValueError), (dict(length=0), ValueError),
                       (dict(prompts=prompts.float()), TypeError), (dict(prompts=prompts + 20), ValueError)]:
        with pytest.raises(error):
            llm.generate(**(dict(model=model, prompts=prompts, length=5) | bad))


def test_shipped_teacher_solves_addition_in_both_formats():
    teacher = llm.load_teacher()
    a, b = llm.problems(300, 3, seed=2)
    assert llm.accuracy(teacher, a, b, 3, trace=True) >= 0.99
    assert llm.accuracy(teacher, a, b, 3, trace=False) >= 0.95
    assert not teacher.training

# ---- training ------------------------------------------------------------------


def small_setup(seed=0):
    a, b = llm.problems(256, 2, seed=seed)
    prompts, completions = llm.tokens(a, b, 2, False)
    return prompts, completions


def test_train_on_text_is_bit_identical_and_learns():
    prompts, completions = small_setup()
    runs = []
    for _ in range(2):
        model = llm.tiny_gpt(width=16, layers=1, heads=2, seed=0)
        history = llm.train_on_text(model, prompts, completions, epochs=4, lr=1e-2, batch_size=32, seed=5,
                                    progress=False)
        runs.append((history.loss, [p.clone() for p in model.parameters()]))
        assert not model.training  # kdlib's training functions return the model in eval mode
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) == 4
    assert all(torch.equal(p, q) for p, q in zip(runs[0][1], runs[1][1]))
    assert runs[0][0][-1] < runs[0][0][0]
    other = llm.tiny_gpt(width=16, layers=1, heads=2, seed=0)
    assert llm.train_on_text(other, prompts, completions, epochs=4, lr=1e-2, batch_size=32, seed=6,
                             progress=False).loss != runs[0][0]  # another seed, other batches


def test_train_on_text_minimises_the_cross_entropy_of_the_completions_only():
    """One plain SGD step of fit equals a step on the float64 cross-entropy of the completion tokens."""
    prompts, completions = small_setup()
    prompts, completions = prompts[:4], completions[:4]
    model = llm.tiny_gpt(width=8, layers=1, heads=2, seed=2)
    reference = llm.tiny_gpt(width=8, layers=1, heads=2, seed=2).double()
    llm.train_on_text(model, prompts, completions, epochs=1, batch_size=4, optimizer="sgd", lr=0.1, progress=False)
    logits = reference(torch.cat([prompts, completions], dim=1))  # (4, prompt + completion, vocab)
    log_q = torch.log_softmax(logits[:, prompts.shape[1] - 1:-1], dim=-1)  # predictions of the completion tokens
    loss = -log_q.gather(-1, completions.unsqueeze(-1)).mean()
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    for p, p0, g in zip(model.parameters(), reference.parameters(), grads):
        assert torch.allclose(p.double(), p0 - 0.1 * g, atol=1e-5)  # SGD with momentum: the first step is lr · grad


@pytest.mark.parametrize("lmbda, beta", [(0.0, 0.0), (1.0, 1.0), (0.5, 0.5)])
def test_distill_is_bit_identical_and_leaves_the_teacher_alone(lmbda, beta):
    prompts, completions = small_setup()
    teacher = llm.tiny_gpt(width=16, layers=1, heads=2, seed=9)
    llm.train_on_text(teacher, prompts, completions, epochs=2, lr=1e-2, batch_size=32, progress=False)
    teacher.train()
    teacher_before = [p.clone() for p in teacher.parameters()]
    runs = []
    for _ in range(2):
        student = llm.tiny_gpt(width=8, layers=1, heads=2, seed=1)
        history = llm.distill(student, teacher, prompts, completions, epochs=2, lmbda=lmbda, beta=beta, lr=1e-2,
                              batch_size=64, seed=3, progress=False)
        runs.append((history.loss, [p.clone() for p in student.parameters()]))
        assert not student.training and teacher.training  # the student ends in eval mode; the teacher as it was
    assert runs[0][0] == runs[1][0] and all(math.isfinite(v) and v >= 0 for v in runs[0][0])
    assert all(torch.equal(p, q) for p, q in zip(runs[0][1], runs[1][1]))
    assert all(torch.equal(p, q) for p, q in zip(teacher.parameters(), teacher_before))


def test_distill_minimises_the_generalized_jsd_of_the_completions():
    """Off-policy, one plain SGD step of distill equals a step on the float64 divergence of the completion tokens."""
    prompts, completions = small_setup()
    prompts, completions = prompts[:4], completions[:4]
    teacher = llm.tiny_gpt(width=8, layers=1, heads=2, seed=9)
    student = llm.tiny_gpt(width=8, layers=1, heads=2, seed=2)
    reference_student = llm.tiny_gpt(width=8, layers=1, heads=2, seed=2).double()
    llm.distill(student, teacher, prompts, completions, beta=0.3, temperature=2.0, epochs=1, batch_size=4,
                optimizer="sgd", lr=0.1, progress=False)  # temperature only samples: the loss is at T = 1
    sequence = torch.cat([prompts, completions], dim=1)[:, :-1]
    first = prompts.shape[1] - 1
    with torch.no_grad():
        teacher_logits = teacher.double()(sequence)[:, first:]
    loss = reference(reference_student(sequence)[:, first:], teacher_logits, 0.3).mean()
    grads = torch.autograd.grad(loss, list(reference_student.parameters()))
    for p, p0, g in zip(student.parameters(), reference_student.parameters(), grads):
        assert torch.allclose(p.double(), p0 - 0.1 * g, atol=1e-5)


def test_off_policy_distill_scores_the_text_once_and_trains_as_a_teacher_scoring_every_batch_would():
    """λ = 0: the teacher reads the whole text once, before training, and the run is bit for bit fit's run with
    the teacher scoring each batch as it comes (the same batches, the same logits)."""
    prompts, completions = small_setup()
    teacher = llm.tiny_gpt(width=16, layers=1, heads=2, seed=9)
    rows = []
    teacher.register_forward_hook(lambda module, inputs, output: rows.append(len(inputs[0])))
    student = llm.tiny_gpt(width=8, layers=1, heads=2, seed=1)
    history = llm.distill(student, teacher, prompts, completions, beta=0.5, epochs=3, lr=1e-2, batch_size=16, seed=3,
                          progress=False)
    assert sum(rows) == len(prompts), rows  # every sequence scored once, not once per epoch
    first = prompts.shape[1] - 1

    def scored_per_batch(model, prompts, completions):
        sequence = torch.cat([prompts, completions], dim=1)[:, :-1]
        with torch.no_grad():
            teacher_logits = teacher(sequence)[:, first:]
        return llm.generalized_jsd_loss(model(sequence)[:, first:], teacher_logits, beta=0.5)

    reference = llm.tiny_gpt(width=8, layers=1, heads=2, seed=1)
    reference_history = fit(reference, (prompts, completions), scored_per_batch, epochs=3, lr=1e-2, batch_size=16,
                            seed=3, progress=False)
    assert history.loss == reference_history.loss
    assert all(torch.equal(p, q) for p, q in zip(student.parameters(), reference.parameters()))


@pytest.mark.parametrize("lmbda", [0.0, 1.0])
def test_the_teacher_scores_where_it_is(lmbda):
    """A teacher on another device (meta stands in for a GPU) gets the text there, cached or per batch."""
    prompts, completions = small_setup()
    meta_teacher, seen = on_meta(llm.tiny_gpt(width=8, layers=1, heads=2, seed=9))
    follows_meta(lambda: llm.distill(llm.tiny_gpt(width=8, layers=1, heads=2, seed=1), meta_teacher, prompts,
                                     completions, lmbda=lmbda, epochs=1, batch_size=64, progress=False))
    assert seen and set(seen) == {"meta"}


def test_on_policy_batches_use_the_students_samples():
    prompts, completions = small_setup()
    teacher = llm.tiny_gpt(width=8, layers=1, heads=2, seed=9)
    garbage = torch.zeros_like(completions)  # off-policy text that the on-policy run must never read
    runs = []
    for text in (garbage, completions):
        student = llm.tiny_gpt(width=8, layers=1, heads=2, seed=1)
        runs.append(llm.distill(student, teacher, prompts, text, epochs=1, lmbda=1.0, batch_size=64, seed=0,
                                progress=False).loss)
    assert runs[0] == runs[1]
    student = llm.tiny_gpt(width=8, layers=1, heads=2, seed=1)
    off = llm.distill(student, teacher, prompts, garbage, epochs=1, lmbda=0.0, batch_size=64, seed=0, progress=False)
    assert off.loss != runs[0]


def test_val_function_records_a_learning_curve_without_changing_the_run():
    prompts, completions = small_setup()
    a, b = llm.problems(64, 2, seed=9)
    runs = []
    for val in (None, lambda model: llm.accuracy(model, a, b, 2, False)):
        student = llm.tiny_gpt(width=8, layers=1, heads=2, seed=1)
        history = llm.train_on_text(student, prompts, completions, epochs=3, lr=1e-2, seed=0, val=val, progress=False)
        runs.append((student, history))
    (plain, plain_history), (scored, scored_history) = runs
    assert plain_history.val_accuracy == [] and len(scored_history.val_accuracy) == 3
    assert scored_history.val_accuracy[-1] == llm.accuracy(scored, a, b, 2, False)
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), scored.parameters()))


@pytest.mark.parametrize("changes, error, words", [
    (dict(lmbda=1.5), ValueError, "lmbda"), (dict(beta=-0.5), ValueError, "beta"),
    (dict(temperature=0.0), ValueError, "temperature"), (dict(epochs=0), ValueError, "epochs"),
    (dict(batch_size=2.0), TypeError, "batch_size"), (dict(lr=float("nan")), ValueError, "lr"),
    (dict(completions="0582."), TypeError, "completions"), (dict(student="model"), TypeError, "student"),
    (dict(teacher=None), TypeError, "teacher"), (dict(steps=3), TypeError, "steps"),
    (dict(val=(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64))), ValueError, "val"),
])
def test_bad_distill_inputs_are_named(changes, error, words):
    prompts, completions = small_setup()
    arguments = dict(student=llm.tiny_gpt(width=8, layers=1, heads=2), teacher=llm.tiny_gpt(width=8, layers=1, heads=2),
                     prompts=prompts, completions=completions, epochs=1) | changes
    with pytest.raises(error, match=words):
        llm.distill(**arguments)


def test_prompts_and_completions_must_pair_up():
    prompts, completions = small_setup()
    with pytest.raises(ValueError, match="one row each"):
        llm.train_on_text(llm.tiny_gpt(width=8, layers=1, heads=2), prompts, completions[:-1], epochs=1)


@pytest.mark.skipif(not (torch.backends.mps.is_available() or torch.cuda.is_available()), reason="no GPU or MPS here")
def test_distill_runs_where_the_student_is():
    device = "cuda" if torch.cuda.is_available() else "mps"
    prompts, completions = small_setup()
    student = llm.tiny_gpt(width=8, layers=1, heads=2).to(device)
    teacher = llm.tiny_gpt(width=8, layers=1, heads=2, seed=2).to(device)
    llm.distill(student, teacher, prompts, completions, epochs=1, lmbda=1.0, batch_size=64, progress=False)
    assert next(student.parameters()).device.type == device and prompts.device.type == "cpu"
