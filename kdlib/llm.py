"""Distilling language models the way it is done now: reverse KL, on-policy students, reasoning traces.

- Losses between a student's and a teacher's next-token distributions at every position
  (logits ``(batch, sequence, vocab)``), named as in Hugging Face TRL's ``GKDTrainer``:
  ``forward_kl_loss`` KL(teacher ‖ student) (token-level KD, mode-covering), ``reverse_kl_loss``
  KL(student ‖ teacher) (MiniLLM, Gu et al., ICLR 2024: mode-seeking) and ``generalized_jsd_loss``
  with ``beta`` (GKD, Agarwal et al., ICLR 2024), which is the forward KL at ``beta=0`` and the
  reverse KL at ``beta=1``.
- ``TinyGPT``: a decoder-only transformer small enough to read in one screen.
- A task whose answers can be checked: addition of ``digits``-digit numbers, answered directly
  (``"123+459=0582."``) or after a step-by-step trace that adds from the last digit with carries
  (``"123+459:218050=0582."``: digit 2 carry 1, digit 8 carry 0, digit 5 carry 0).
- ``generate`` (sampling or greedy), ``train_on_text`` (cross-entropy on completions: the teacher, or
  a student on text the teacher wrote) and ``distill``, GKD: each batch is, with probability
  ``lmbda``, the student's own samples (on-policy), else the given (teacher-written) completions;
  the teacher scores every completion token. Both are batch losses on kdlib.training.fit, the one
  loop, with its TrainSettings (an epoch is one pass over the prompts).

Token indices are int64 ``(batch, sequence)``; a prompt is followed by a completion and the losses
count only the completion's tokens.
"""
import math
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .arguments import (check_count, check_fraction, check_model, check_number, check_same_device,
                        check_sequence_logits, check_temperature, check_tensor)
from .devices import device_of, eval_mode
from .models import check_sizes, seeded
from .training import TrainSettings, fit, frozen_outputs

VOCABULARY = "0123456789+=:."  # digits, plus, '=' (answer follows), ':' (trace follows), '.' (end)
TEACHER_PATH = Path(__file__).with_name("llm_teacher.pt")  # made by benchmarks/llm.py --make-teacher
STUDENT_PATH = Path(__file__).with_name("llm_student.pt")  # the students' common start, made by the same run
# the training defaults of this module (kdlib.training's are for images): Adam at 3e-3, 2 epochs of 64 problems
LLM_SETTINGS = TrainSettings(epochs=2, lr=3e-3, batch_size=64)

# -----------------------------------------------------------------------------
# input checks: the shared ones of kdlib.arguments, plus this module's token indices and masks


def _check_pair(student_logits, teacher_logits, temperature, mask):
    check_sequence_logits("student_logits", student_logits)
    check_sequence_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError("student_logits and teacher_logits must have the same shape (batch, sequence, vocab), got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    check_same_device("student_logits", student_logits, "teacher_logits", teacher_logits)
    check_temperature(temperature)
    if mask is not None:
        if not torch.is_tensor(mask) or mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (batch, sequence), got {getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.shape != student_logits.shape[:2]:
            raise ValueError(f"mask must have shape {tuple(student_logits.shape[:2])} (batch, sequence), "
                             f"got {tuple(mask.shape)}")
        check_same_device("mask", mask, "student_logits", student_logits)
        if not mask.any():
            raise ValueError("mask selects no position: at least one position must count")


def _check_tokens(name, tokens):
    """Token indices: a non-empty int64 (batch, sequence) tensor of indices into VOCABULARY."""
    check_tensor(name, tokens)
    if tokens.dtype != torch.int64:
        raise TypeError(f"{name} must be an int64 tensor (batch, sequence), got dtype {tokens.dtype}")
    if tokens.dim() != 2 or 0 in tokens.shape:
        raise ValueError(f"{name} must have shape (batch, sequence) with no empty axis, got {tuple(tokens.shape)}")
    if tokens.min() < 0 or tokens.max() >= len(VOCABULARY):
        raise ValueError(f"{name} must hold token indices in [0, {len(VOCABULARY) - 1}], got values from "
                         f"{tokens.min().item()} to {tokens.max().item()}")


def _masked_mean(per_position, mask):
    """Mean of a (batch, sequence) tensor over the positions the mask keeps (all when mask is None)."""
    return per_position.mean() if mask is None else per_position[mask].mean()

# -----------------------------------------------------------------------------
# losses: every position of a sequence is one distribution to match


def forward_kl_loss(student_logits, teacher_logits, temperature=1.0, mask=None):
    """Token-level KD (Hinton et al. 2015 at every position; Kim & Rush 2016): mode-covering.

    loss = mean over positions of KL(p ‖ q) = Σ_v p_v (log p_v − log q_v), p = softmax(t/T) the
    teacher, q = softmax(s/T) the student. No T² factor (as TRL's generalized_jsd_loss); at T = 1
    it equals kdlib.language.token_kd_loss. ``mask`` (batch, sequence) bool keeps the positions to count.
    """
    _check_pair(student_logits, teacher_logits, temperature, mask)
    log_q = F.log_softmax(student_logits / temperature, dim=-1)  # (batch, sequence, vocab)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1)  # (batch, sequence)
    return _masked_mean(kl, mask)


def reverse_kl_loss(student_logits, teacher_logits, temperature=1.0, mask=None):
    """MiniLLM (Gu et al., ICLR 2024): the reverse KL, mode-seeking.

    loss = mean over positions of KL(q ‖ p) = Σ_v q_v (log q_v − log p_v), q = softmax(s/T) the
    student, p = softmax(t/T) the teacher. The student's own probabilities weight the log-ratio, so
    it pays nothing for ignoring what the teacher might say and a lot for saying what it would not.
    """
    _check_pair(student_logits, teacher_logits, temperature, mask)
    log_q = F.log_softmax(student_logits / temperature, dim=-1)  # (batch, sequence, vocab)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    kl = (log_q.exp() * (log_q - log_p)).sum(dim=-1)  # (batch, sequence)
    return _masked_mean(kl, mask)


def generalized_jsd_loss(student_logits, teacher_logits, beta=0.5, temperature=1.0, mask=None):
    """GKD (Agarwal et al., ICLR 2024, eq. 1), in Hugging Face TRL's convention.

    m = β p + (1 − β) q;  loss = mean over positions of β KL(p ‖ m) + (1 − β) KL(q ‖ m), with p the
    teacher's and q the student's softmax(logits / T). As TRL does, β = 0 returns the forward KL
    KL(p ‖ q) and β = 1 the reverse KL KL(q ‖ p) exactly; in between the value shrinks to 0 towards
    either end (it is β·(1 − β)·O(‖p − q‖²)), so a β near 0 or 1 also means a small gradient.
    """
    check_fraction("beta", beta)
    _check_pair(student_logits, teacher_logits, temperature, mask)
    if beta == 0:
        return forward_kl_loss(student_logits, teacher_logits, temperature, mask)
    if beta == 1:
        return reverse_kl_loss(student_logits, teacher_logits, temperature, mask)
    log_q = F.log_softmax(student_logits / temperature, dim=-1)  # (batch, sequence, vocab)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_m = torch.logsumexp(torch.stack([log_p + math.log(beta), log_q + math.log(1 - beta)]), dim=0)
    kl_p = (log_p.exp() * (log_p - log_m)).sum(dim=-1)  # (batch, sequence)
    kl_q = (log_q.exp() * (log_q - log_m)).sum(dim=-1)
    return _masked_mean(beta * kl_p + (1 - beta) * kl_q, mask)

# -----------------------------------------------------------------------------
# a 1-D picture: fit a discretised Gaussian to a two-humped distribution


def gaussian_logits(positions, mean, log_std):
    """Logits of a Gaussian discretised on ``positions`` (bins,): −(x − μ)² / (2σ²)."""
    return -0.5 * ((positions - mean) / log_std.exp()) ** 2  # (bins,)


def fit_gaussian(target_probabilities, positions, beta, mean=0.0, std=1.0, steps=400, lr=0.05):
    """Fit a discretised Gaussian q to ``target_probabilities`` p (bins,) by minimising generalized_jsd_loss.

    ``beta`` = 0 is the forward KL(p ‖ q), 1 the reverse KL(q ‖ p). Adam from the given ``mean`` and
    ``std``; returns (mean, std, q) with q the fitted probabilities (bins,), detached.
    """
    if not torch.is_tensor(target_probabilities) or target_probabilities.dim() != 1:
        raise ValueError(f"target_probabilities must be a 1-D tensor (bins,), got {getattr(target_probabilities, 'shape', type(target_probabilities).__name__)}")
    if not torch.is_tensor(positions) or positions.shape != target_probabilities.shape:
        raise ValueError(f"positions must be a tensor of shape {tuple(target_probabilities.shape)}, "
                         f"got {getattr(positions, 'shape', type(positions).__name__)}")
    if (target_probabilities <= 0).any() or not torch.isclose(target_probabilities.sum().double(), torch.tensor(1.0, dtype=torch.float64)):
        raise ValueError("target_probabilities must be positive and sum to 1")
    check_number("std", std)
    check_count("steps", steps)
    target_logits = target_probabilities.log().reshape(1, 1, -1)
    mean_ = torch.tensor(float(mean), dtype=positions.dtype, requires_grad=True)
    log_std = torch.tensor(math.log(std), dtype=positions.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([mean_, log_std], lr=lr)
    for _ in range(steps):
        logits = gaussian_logits(positions, mean_, log_std).reshape(1, 1, -1)
        loss = generalized_jsd_loss(logits, target_logits, beta=beta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    q = F.softmax(gaussian_logits(positions, mean_, log_std), dim=-1).detach()
    return mean_.item(), log_std.exp().item(), q

# -----------------------------------------------------------------------------
# the task: addition, answered directly or after a step-by-step trace


def encode(text):
    """Characters of VOCABULARY → int64 indices (len(text),)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    unknown = sorted(set(text) - set(VOCABULARY))
    if unknown:
        raise ValueError(f"characters {unknown!r} are not in the vocabulary {VOCABULARY!r}")
    return torch.tensor([VOCABULARY.index(c) for c in text], dtype=torch.int64)


def decode(indices):
    """Token indices (any 1-D sequence of ints, on any device) → string."""
    indices = torch.as_tensor(indices).tolist()
    outside = sorted({i for i in indices if not 0 <= i < len(VOCABULARY)})
    if outside:
        raise ValueError(f"indices must be in [0, {len(VOCABULARY) - 1}] for the vocabulary {VOCABULARY!r}, got {outside[:5]}")
    return "".join(VOCABULARY[i] for i in indices)


def problems(count, digits, seed, low_digits=None):
    """``count`` pairs (a, b) of non-negative ints below 10**digits, drawn with ``seed``: two (count,) int64 tensors.

    With ``low_digits``, both numbers are below 10**low_digits (written with ``digits`` digits,
    leading zeros): the short problems a model trains on, to test on longer ones.
    """
    check_count("count", count)
    check_count("digits", digits)
    check_count("seed", seed, low=0)
    if low_digits is not None:
        check_count("low_digits", low_digits)
    high = 10 ** (digits if low_digits is None else low_digits)
    generator = torch.Generator().manual_seed(seed)
    numbers_ = torch.randint(0, high, (2, count), generator=generator)
    return numbers_[0], numbers_[1]


def prompt_text(a, b, digits, trace):
    """'aaa+bbb=' (answer directly) or 'aaa+bbb:' (write the trace first), numbers with leading zeros."""
    return f"{a:0{digits}d}+{b:0{digits}d}{':' if trace else '='}"


def completion_text(a, b, digits, trace):
    """The correct completion: the (digits + 1)-digit sum and '.', after the trace when ``trace``.

    The trace adds from the last digit: for each position, the sum digit and the carry out.
    """
    answer = f"{a + b:0{digits + 1}d}."
    if not trace:
        return answer
    steps, carry = "", 0
    for i in range(digits):
        column = (a // 10**i) % 10 + (b // 10**i) % 10 + carry
        carry = column // 10
        steps += f"{column % 10}{carry}"
    return steps + "=" + answer


def tokens(a, b, digits, trace):
    """Prompts (N, 2·digits + 2) and correct completions (N, completion length) as int64 token indices."""
    if not (torch.is_tensor(a) and torch.is_tensor(b) and a.dtype == b.dtype == torch.int64):
        raise TypeError(f"a and b must be int64 tensors, got {getattr(a, 'dtype', type(a).__name__)} and "
                        f"{getattr(b, 'dtype', type(b).__name__)}")
    if a.shape != b.shape or a.dim() != 1 or (a < 0).any() or (b < 0).any():
        raise ValueError(f"a and b must be 1-D tensors of one shape of non-negative numbers, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if max(a.max().item(), b.max().item()) >= 10**digits:
        raise ValueError(f"a and b must be below 10**digits = {10**digits}, got up to {max(a.max().item(), b.max().item())}")
    pairs = list(zip(a.tolist(), b.tolist()))
    prompts = torch.stack([encode(prompt_text(x, y, digits, trace)) for x, y in pairs])
    completions = torch.stack([encode(completion_text(x, y, digits, trace)) for x, y in pairs])
    return prompts, completions


def answers_correct(completions, a, b, digits):
    """(N,) bool: does each completion end with the right answer ('…=dddd.' or 'dddd.')?"""
    _check_tokens("completions", completions)
    truth = torch.stack([encode(f"{x + y:0{digits + 1}d}.") for x, y in zip(a.tolist(), b.tolist())])
    truth = truth.to(completions.device)
    return (completions[:, -truth.shape[1]:] == truth).all(dim=1)

# -----------------------------------------------------------------------------
# the model: a decoder-only transformer (GPT) in one screen


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x):  # (batch, sequence, width)
        batch, sequence, width = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(width, dim=-1)
        q, k, v = (t.view(batch, sequence, self.heads, -1).transpose(1, 2) for t in (q, k, v))  # (b, heads, s, w/h)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # each position sees itself and the past
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, sequence, width))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """Token + position embeddings → ``layers`` blocks → LayerNorm → logits over the vocabulary."""

    def __init__(self, vocab_size, context, width, layers, heads):
        super().__init__()
        self.context = context
        self.token = nn.Embedding(vocab_size, width)
        self.position = nn.Embedding(context, width)
        self.blocks = nn.Sequential(*[Block(width, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, indices):  # (batch, sequence) → (batch, sequence, vocab)
        if indices.shape[1] > self.context:
            raise ValueError(f"sequence of {indices.shape[1]} tokens is longer than the model's context {self.context}")
        positions = torch.arange(indices.shape[1], device=indices.device)
        x = self.token(indices) + self.position(positions)  # (batch, sequence, width)
        return self.head(self.ln(self.blocks(x)))


def tiny_gpt(width=64, layers=2, heads=4, context=24, seed=0):
    """A TinyGPT over VOCABULARY whose initial weights depend only on ``seed``."""
    check_sizes(width=width, layers=layers, heads=heads, context=context)
    if width % heads:
        raise ValueError(f"width must be a multiple of heads, got width={width} and heads={heads}")
    return seeded(seed, lambda: TinyGPT(len(VOCABULARY), context, width, layers, heads))


def _load(path):
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = tiny_gpt(**saved["config"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def load_teacher():
    """The pretrained teacher shipped with kdlib: TinyGPT width 64, 2 layers, solving 3-digit addition in both
    formats (made from seed 0 by ``python benchmarks/llm.py --make-teacher``)."""
    return _load(TEACHER_PATH)


def load_student_start():
    """The students' shipped starting point: TinyGPT width 32, 2 layers, after 15 epochs (480 steps) of token-level
    KD on the teacher's traces (supervised fine-tuning, where GKD's students start), stopped while it solves
    about 8% of the validation problems (5 more epochs reach 100%), so methods have room to differ. Made by
    the same script."""
    return _load(STUDENT_PATH)

# -----------------------------------------------------------------------------
# generation


@torch.no_grad()
def generate(model, prompts, length, temperature=1.0, seed=0):
    """Continue each prompt (batch, prompt) by ``length`` tokens → completions (batch, length), on the model's device.

    Each token is drawn from softmax(logits / temperature); temperature = 0 is greedy (the most
    likely token). Runs in eval mode, restored afterwards; one ``seed`` gives the same tokens.
    """
    check_model("model", model)
    _check_tokens("prompts", prompts)
    check_count("length", length)
    check_count("seed", seed, low=0)
    check_number("temperature", temperature, inclusive=True)  # 0: greedy
    device = device_of(model)
    generator = torch.Generator(device=device).manual_seed(seed)
    sequence = prompts.to(device)
    with eval_mode(model):
        for _ in range(length):
            last = model(sequence)[:, -1]  # (batch, vocab)
            if temperature == 0:
                next_token = last.argmax(dim=-1, keepdim=True)
            else:
                next_token = torch.multinomial(F.softmax(last / temperature, dim=-1), 1, generator=generator)  # (batch, 1)
            sequence = torch.cat([sequence, next_token], dim=1)
    return sequence[:, prompts.shape[1]:]


def accuracy(model, a, b, digits, trace, temperature=0.0, seed=0):
    """Fraction of problems (a, b) whose generated completion ends with the right answer (greedy by default)."""
    prompts, completions = tokens(a, b, digits, trace)
    generated = generate(model, prompts, completions.shape[1], temperature=temperature, seed=seed)
    return answers_correct(generated, a, b, digits).float().mean().item()


def correct_prefix_fraction(generated, completions):
    """(length,) float: fraction of rows whose first k + 1 generated tokens are all correct, for each k.

    A curve that falls along the sequence shows errors compounding: once wrong, a row stays wrong.
    """
    _check_tokens("generated", generated)
    _check_tokens("completions", completions)
    if generated.shape != completions.shape:
        raise ValueError(f"generated and completions must have one shape, got {tuple(generated.shape)} and {tuple(completions.shape)}")
    right = (generated == completions.to(generated.device)).long()  # (batch, length)
    return right.cumprod(dim=1).float().mean(dim=0)

# -----------------------------------------------------------------------------
# training


# TrainSettings: LLM_SETTINGS unless the caller gives settings; val refused (it scores images and labels)
_settings = partial(TrainSettings.for_sequences, LLM_SETTINGS, score_with="llm.accuracy(model, a, b, digits, trace)")


def _check_text_pairs(prompts, completions):
    _check_tokens("prompts", prompts)
    _check_tokens("completions", completions)
    if len(prompts) != len(completions):
        raise ValueError(f"prompts and completions must have one row each, got {len(prompts)} and {len(completions)}")


def train_on_text(model, prompts, completions, *, settings=None, **overrides):
    """Cross-entropy on the completion tokens after each prompt (teacher forcing), with kdlib.training.fit.

    The teacher learns the correct completions this way; a student trained on completions the
    teacher wrote is sequence-level KD (Kim & Rush 2016), the R1-distillation recipe.
    ``settings``/keywords: see kdlib.training.TrainSettings; the defaults are LLM_SETTINGS (epochs=2,
    lr=3e-3, batch_size=64), an epoch being one pass over the prompts. Returns a History.
    """
    check_model("model", model)
    _check_text_pairs(prompts, completions)
    settings = _settings(settings, **overrides)
    first = prompts.shape[1] - 1  # the position that predicts the first completion token

    def batch_loss(model, prompts, completions):  # (batch, prompt), (batch, completion)
        logits = model(torch.cat([prompts, completions], dim=1)[:, :-1])[:, first:]  # (batch, completion, vocab)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), completions.reshape(-1))

    return fit(model, (prompts, completions), batch_loss, settings, desc="train on text")


def distill(student, teacher, prompts, completions, *, lmbda=0.0, beta=0.0, temperature=1.0, settings=None,
            **overrides):
    """Generalized KD (Agarwal et al., ICLR 2024), with TRL GKDTrainer's knobs, on kdlib.training.fit.

    Each batch of prompts is, with probability ``lmbda``, on-policy: the student writes the
    completions itself, sampling at ``temperature``; otherwise it uses the given ``completions``
    (text the teacher wrote: off-policy). Either way the teacher scores every completion token and
    the student minimises generalized_jsd_loss(beta) over them: β = 0 forward KL, β = 1 reverse KL.
    λ = 0, β = 0 is token-level KD on the teacher's text; λ = 1 with β = 1 is on-policy reverse KL,
    as in MiniLLM. The coin and the samples come from a generator seeded with the settings' seed.
    The teacher is frozen and runs where it is; with λ = 0 the text never changes, so it scores the text
    once, before training, instead of every batch of every epoch. ``settings``/keywords: as for train_on_text.
    """
    check_model("student", student)
    check_model("teacher", teacher)
    _check_text_pairs(prompts, completions)
    check_fraction("lmbda", lmbda)
    check_fraction("beta", beta)
    check_temperature(temperature)
    settings = _settings(settings, **overrides)
    first = prompts.shape[1] - 1  # the position that predicts the first completion token

    def teacher_logits(sequence):  # (batch, prompt + completion − 1) → (batch, completion, vocab)
        return frozen_outputs(teacher, sequence)[:, first:]

    def loss(student, sequence, teacher_logits):
        return generalized_jsd_loss(student(sequence)[:, first:], teacher_logits, beta=beta)

    if lmbda == 0:  # off-policy only: the same batches as below, with the teacher's logits cached
        sequences = torch.cat([prompts, completions], dim=1)[:, :-1]
        return fit(student, (sequences, teacher_logits(sequences)), loss, settings, desc="distill")
    coin = torch.Generator().manual_seed(settings.seed + 1)  # which batches are on-policy, and their samples' seeds

    def batch_loss(student, prompts, completions):  # (batch, prompt), (batch, completion)
        if torch.rand((), generator=coin).item() < lmbda:  # on-policy: the student's own samples
            seed = int(torch.randint(2**62, (), generator=coin))
            completions = generate(student, prompts, completions.shape[1], temperature, seed=seed)
        sequence = torch.cat([prompts, completions], dim=1)[:, :-1]
        return loss(student, sequence, teacher_logits(sequence))

    return fit(student, (prompts, completions), batch_loss, settings, desc="distill")
