"""Distilling a character-level language model: plain training, token-level KD, sequence-level KD.

A language model predicts the next character from the ones before. A big teacher GRU and a small
student GRU learn from ``corpus.txt``, a ~37 KB text about the course's topics that ships with
the package. The corpus was written for this project (original text, no third-party sources)
and is released under the same licence as kdlib.

Three ways to train the student:

- plain: cross-entropy on the next character of the corpus (``train_language_model``);
- token-level KD (Hinton et al. 2015 applied per position, as in Kim & Rush, EMNLP 2016):
  match the teacher's whole next-character distribution at every position (``distill_token_level``);
- DistilBERT's recipe (Sanh et al. 2019): a student of the teacher's width and half its depth, started from
  every other layer of the teacher (``student_from_teacher``), trained on token-level KD plus a cosine loss
  between the two models' last hidden states (``distill_token_level(..., cosine_weight=...)``);
- sequence-level KD (Kim & Rush, "Sequence-Level Knowledge Distillation", EMNLP 2016): train on
  text the teacher writes (``distill_sequence_level``). It needs only the teacher's outputs,
  never its probabilities: this is how a closed model behind an API gets distilled.

Shapes: character indices are int64 ``(batch, sequence)``; logits are ``(batch, sequence, vocab)``.
Devices follow ``kdlib.devices``: everything runs where the model is. Sampling draws its random numbers
on the CPU, from a CPU generator seeded with ``seed``, so one seed gives the same draws on every device.
"""
import numbers
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .arguments import (check_count, check_fraction, check_model, check_number, check_sequence_logits,
                        check_temperature, check_tensor)
from .devices import device_of, eval_mode, widest_float
from .hints import cosine_hidden_loss
from .losses import hard_loss, kd_loss
from .models import check_sizes, seeded
from .training import TrainSettings, fit, frozen_outputs

CORPUS_PATH = Path(__file__).with_name("corpus.txt")

# the training defaults of this module (kdlib.training's are for images): Adam at 3e-3, 10 epochs of 32 windows
LANGUAGE_SETTINGS = TrainSettings(epochs=10, lr=3e-3, batch_size=32)

# -----------------------------------------------------------------------------
# text and vocabulary


def _check_text(name, text, at_least=0):
    """A str of at least ``at_least`` characters."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    if len(text) < at_least:
        raise ValueError(f"{name} must have at least {at_least} characters, got {len(text)}")


def load_corpus():
    """The course corpus as one string (original text written for kdlib)."""
    return CORPUS_PATH.read_text(encoding="utf-8")


def split_corpus(text, heldout_fraction=0.1):
    """(training text, held-out text): the last ``heldout_fraction`` of ``text``, cut at a line break."""
    _check_text("text", text, at_least=2)
    check_fraction("heldout_fraction", heldout_fraction)
    cut = int(len(text) * (1 - heldout_fraction))
    line_break = text.find("\n", cut)
    cut = line_break + 1 if line_break != -1 else cut  # start the held-out part on a fresh line
    if not 0 < cut < len(text):
        raise ValueError(f"heldout_fraction={heldout_fraction} leaves an empty part of a text of {len(text)} "
                         "characters; expected a fraction in (0, 1) that keeps both parts")
    return text[:cut], text[cut:]


def build_vocabulary(text):
    """The sorted distinct characters of ``text`` as a string: character vocabulary[i] has index i."""
    _check_text("text", text, at_least=1)
    return "".join(sorted(set(text)))


_corpus_vocabulary = None


def corpus_vocabulary():
    """The vocabulary of the shipped corpus, the default wherever a ``vocabulary`` is optional."""
    global _corpus_vocabulary
    if _corpus_vocabulary is None:
        _corpus_vocabulary = build_vocabulary(load_corpus())
    return _corpus_vocabulary


def _vocabulary(vocabulary, **models):
    """``vocabulary`` (None: the corpus's), checked: a str of distinct characters, of which every model given
    by keyword (e.g. ``student=..., teacher=...``) scores exactly one logit each."""
    vocabulary = corpus_vocabulary() if vocabulary is None else vocabulary
    _check_text("vocabulary", vocabulary, at_least=1)
    if len(set(vocabulary)) != len(vocabulary):
        repeated = sorted({c for c in vocabulary if vocabulary.count(c) > 1})
        raise ValueError(f"vocabulary must list each character once, got {repeated!r} more than once")
    sizes = {name: _vocab_size(name, model) for name, model in models.items()}
    if any(size != len(vocabulary) for size in sizes.values()):
        raise ValueError(f"every model must score the vocabulary's {len(vocabulary)} characters, got "
                         + ", ".join(f"{name} {size}" for name, size in sizes.items()))
    return vocabulary


def encode(text, vocabulary=None):
    """Characters → int64 indices ``(len(text),)`` on the CPU; a character outside the vocabulary is an error."""
    _check_text("text", text)
    vocabulary = _vocabulary(vocabulary)
    index = {character: i for i, character in enumerate(vocabulary)}
    unknown = sorted(set(text) - index.keys())
    if unknown:
        raise ValueError(f"characters {unknown!r} are not in the vocabulary of {len(vocabulary)} characters {vocabulary!r}")
    return torch.tensor([index[character] for character in text], dtype=torch.int64)


def decode(indices, vocabulary=None):
    """Indices (a 1-D integer tensor on any device, or a list/tuple/range of ints) → string."""
    vocabulary = _vocabulary(vocabulary)
    if torch.is_tensor(indices):
        check_tensor("indices", indices, dims=1)
        indices = indices.tolist()
    if not isinstance(indices, (list, tuple, range)) or not all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in indices):
        raise TypeError(f"indices must be a 1-D integer tensor or a sequence of ints, got {type(indices).__name__} "
                        f"{str(indices)[:60]}")
    outside = sorted({i for i in indices if not 0 <= i < len(vocabulary)})
    if outside:
        raise ValueError(f"indices must be in [0, {len(vocabulary) - 1}] for a vocabulary of {len(vocabulary)} "
                         f"characters, got {outside[:5]}")
    return "".join(vocabulary[i] for i in indices)

# -----------------------------------------------------------------------------
# the model


class CharModel(nn.Module):
    """Embedding → GRU → Linear: ``(batch, sequence)`` indices → ``(batch, sequence, vocab)`` logits.

    ``forward`` also takes and returns the GRU's hidden state, so text can be generated one
    character at a time without re-reading the prompt.
    """

    def __init__(self, vocab_size, width, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width)
        self.gru = nn.GRU(width, width, num_layers=layers, batch_first=True)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, indices, hidden=None):
        states, hidden = self.gru(self.embedding(indices), hidden)  # (batch, sequence, width)
        return self.head(states), hidden  # (batch, sequence, vocab), (layers, batch, width)


def char_model(vocab_size, width=128, layers=1, seed=0):
    """A character-level GRU language model whose initial weights depend only on ``seed``."""
    check_sizes(vocab_size=vocab_size, width=width, layers=layers)
    return seeded(seed, lambda: CharModel(vocab_size, width, layers))


def _check_char_model(name, model):
    if not isinstance(model, CharModel):
        raise TypeError(f"{name} must be a CharModel (made by char_model), whose GRU states can be read, got "
                        f"{type(model).__name__}")


def hidden_states(model, indices):
    """The last GRU layer's state at every position: (batch, sequence) indices → (batch, sequence, width).

    These are the vectors the model's head turns into logits: what DistilBERT's cosine loss compares.
    """
    _check_char_model("model", model)
    check_tensor("indices", indices, dims=2)
    if indices.dtype != torch.int64:
        raise TypeError(f"indices must be an int64 tensor of character indices, got dtype {indices.dtype}")
    return model.gru(model.embedding(indices.to(device_of(model))))[0]


def student_from_teacher(teacher):
    """DistilBERT's initialisation (Sanh et al. 2019): the teacher's width, half its layers (rounded up),
    started from one teacher layer out of two (student layer k ← teacher layer 2k; Hugging Face's script keeps
    BERT's layers 0, 2, 4, 7, 9, 11) and from the teacher's embedding and head. A new model on the teacher's
    device and in its dtype; every weight is copied, none is drawn."""
    _check_char_model("teacher", teacher)
    gru = teacher.gru
    student = char_model(teacher.embedding.num_embeddings, gru.hidden_size, (gru.num_layers + 1) // 2)
    student.to(device=device_of(teacher), dtype=teacher.head.weight.dtype)
    with torch.no_grad():
        student.embedding.load_state_dict(teacher.embedding.state_dict())
        student.head.load_state_dict(teacher.head.state_dict())
        for layer in range(student.gru.num_layers):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(student.gru, f"{kind}_l{layer}").copy_(getattr(gru, f"{kind}_l{2 * layer}"))
    return student


def _logits(model, indices):
    """Logits of a model that returns (logits, hidden) or logits alone."""
    out = model(indices)
    return out[0] if isinstance(out, tuple) else out  # (batch, sequence, vocab)


class _Reading(nn.Module):
    """A language model seen through ``read(model, indices)`` (its logits, or its hidden states), as
    kdlib.training.frozen_outputs expects of a model: one tensor out."""

    def __init__(self, model, read):
        super().__init__()
        self.model, self.read = model, read

    def forward(self, indices):
        return self.read(self.model, indices)  # (batch, sequence, vocab or width)


@torch.no_grad()
def _vocab_size(name, model):
    """How many characters ``model`` scores: the width of its logits on one index (read where it is, in eval mode)."""
    check_model(name, model)
    try:
        with eval_mode(model):
            logits = _logits(model, torch.zeros(1, 1, dtype=torch.int64, device=device_of(model)))
    except (RuntimeError, TypeError) as error:
        raise TypeError(f"{name} must be a language model reading (batch, sequence) int64 indices, such as "
                        f"char_model(...); reading one index failed: {error}") from error
    if not torch.is_tensor(logits) or logits.dim() != 3:
        raise ValueError(f"{name} must return logits of shape (batch, sequence, vocab), got "
                         f"{tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__}")
    return logits.shape[-1]

# -----------------------------------------------------------------------------
# losses and metrics


def token_kd_loss(student_logits, teacher_logits, temperature):
    """Token-level KD: Hinton et al.'s kd_loss at every position, averaged over all positions.

    loss = mean over (batch, sequence) of T² · KL(softmax(t/T) ‖ softmax(s/T)), the word-level
    KD of Kim & Rush (EMNLP 2016) for characters. Logits are (batch, sequence, vocab), finite.
    """
    check_sequence_logits("student_logits", student_logits)
    check_sequence_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student_logits and teacher_logits must have the same shape (batch, sequence, vocab), got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    vocab = student_logits.shape[-1]
    # every position is one row of an ordinary (rows, classes) KD problem; kd_loss checks values and devices
    return kd_loss(student_logits.reshape(-1, vocab), teacher_logits.reshape(-1, vocab), temperature)


@torch.no_grad()
def perplexity(model, text, vocabulary=None, context=128):
    """exp(mean negative log-likelihood of each next character of ``text``).

    The text is read in consecutive windows of ``context`` predictions, each starting from an
    empty state, so every character but the first is predicted once. A uniform model scores
    exactly the vocabulary size. Runs where the model is, in eval mode; its mode is restored.
    """
    vocabulary = _vocabulary(vocabulary, model=model)
    _check_text("text", text, at_least=2)  # one character to read, one to predict
    check_count("context", context)
    device = device_of(model)
    indices = encode(text, vocabulary).to(device)
    # summed on the device in its widest float: one host read at the end, not one per window
    total, count = torch.zeros((), dtype=widest_float(device), device=device), 0
    with eval_mode(model):
        for start in range(0, len(indices) - 1, context):
            window = indices[start : start + context + 1].unsqueeze(0)  # (1, ≤ context + 1)
            logits = _logits(model, window[:, :-1])  # (1, sequence, vocab)
            total += F.cross_entropy(logits[0].to(total.dtype), window[0, 1:], reduction="sum")
            count += window.shape[1] - 1
    return (total / count).exp().item()

# -----------------------------------------------------------------------------
# generation


@torch.no_grad()
def _generate(model, prompts, length, temperature, generator):
    """Continue each row of ``prompts`` (streams, prompt) by ``length`` characters → (streams, length) on the CPU.

    The model runs where it is; each draw is made on the CPU with the CPU ``generator``, from float64
    probabilities (the CPU has float64 on every machine), so a seed draws alike on every device.
    """
    device = device_of(model)
    logits, hidden = model(prompts.to(device))  # read the prompts once
    generated = []
    for _ in range(length):
        last = logits[:, -1]  # (streams, vocab)
        if temperature == 0:
            next_index = last.argmax(dim=-1, keepdim=True)  # greedy: the most likely character
        else:
            probabilities = F.softmax(last.cpu().double() / temperature, dim=-1)  # (streams, vocab) on the CPU
            next_index = torch.multinomial(probabilities, 1, generator=generator).to(device)  # (streams, 1)
        generated.append(next_index)
        logits, hidden = model(next_index, hidden)
    return torch.cat(generated, dim=1).cpu()  # (streams, length)


def sample(model, prompt, length, temperature=1.0, seed=0, vocabulary=None):
    """``prompt`` followed by ``length`` characters drawn one at a time from softmax(logits / temperature).

    temperature = 0 is greedy decoding (always the most likely character). Same seed, same text, on any
    device the model is on (up to the device's arithmetic). The model's mode is left as it was.
    """
    vocabulary = _vocabulary(vocabulary, model=model)
    _check_text("prompt", prompt, at_least=1)
    check_count("length", length)
    check_number("temperature", temperature, inclusive=True)  # 0: greedy decoding
    check_count("seed", seed, low=0)
    generator = torch.Generator().manual_seed(seed)
    with eval_mode(model):
        continuation = _generate(model, encode(prompt, vocabulary).unsqueeze(0), length, temperature, generator)
    return prompt + decode(continuation[0], vocabulary)


def teacher_text(teacher, prompts_from, characters, temperature=1.0, streams=64, prompt_length=16, seed=0,
                 vocabulary=None):
    """About ``characters`` characters written by ``teacher``: the transfer set of sequence-level KD.

    ``streams`` continuations are generated side by side, each after a ``prompt_length`` prompt cut
    at a random position of ``prompts_from``; the continuations (without their prompts) are joined.
    The teacher runs where it is, in eval mode; its mode is left as it was.
    """
    vocabulary = _vocabulary(vocabulary, teacher=teacher)
    check_count("characters", characters)
    check_number("temperature", temperature, inclusive=True)  # 0: greedy decoding
    check_count("streams", streams)
    check_count("prompt_length", prompt_length)
    check_count("seed", seed, low=0)
    _check_text("prompts_from", prompts_from, at_least=prompt_length + 1)  # one prompt and a character to spare
    prompt_indices = encode(prompts_from, vocabulary)
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(prompt_indices) - prompt_length, (streams,), generator=generator)
    prompts = torch.stack([prompt_indices[s : s + prompt_length] for s in starts.tolist()])  # (streams, prompt)
    with eval_mode(teacher):
        written = _generate(teacher, prompts, -(-characters // streams), temperature, generator)  # (streams, length)
    return "".join(decode(row, vocabulary) for row in written)[:characters]

# -----------------------------------------------------------------------------
# training


# TrainSettings: LANGUAGE_SETTINGS unless the caller gives settings; val refused (it scores images and labels)
_settings = partial(TrainSettings.for_sequences, LANGUAGE_SETTINGS, score_with="language.perplexity(model, text)")


def _windows(text, vocabulary, context):
    """Inputs and next-character targets of overlapping windows (stride context / 2): (N, context) each, on the CPU."""
    _check_text("text", text)
    check_count("context", context)
    indices = encode(text, vocabulary)
    if len(indices) < context + 1:
        raise ValueError(f"text must have more than context={context} characters, got {len(indices)}")
    starts = range(0, len(indices) - context, max(1, context // 2))
    windows = torch.stack([indices[s : s + context + 1] for s in starts])  # (N, context + 1)
    return windows[:, :-1], windows[:, 1:]


def _next_character_loss(logits, targets):
    """Cross-entropy of every next character: (batch, context, vocab) logits, (batch, context) targets."""
    return hard_loss(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def train_language_model(model, text, *, vocabulary=None, context=64, settings=None, **overrides):
    """Plain training: cross-entropy of every next character of ``text``, in windows of ``context``.

    ``settings``/keywords: see kdlib.training.TrainSettings; the defaults are LANGUAGE_SETTINGS (epochs=10,
    lr=3e-3, batch_size=32). Trains where the model is (or on ``device=``); returns a History.
    """
    vocabulary = _vocabulary(vocabulary, model=model)
    settings = _settings(settings, **overrides)
    inputs, targets = _windows(text, vocabulary, context)

    def batch_loss(model, x, y):
        return _next_character_loss(_logits(model, x), y)

    return fit(model, (inputs, targets), batch_loss, settings, desc="language model")


def distill_token_level(student, teacher, text, *, temperature=2.0, alpha=0.5, cosine_weight=0.0, vocabulary=None,
                        context=64, settings=None, **overrides):
    """Token-level KD: (1 − α)·CE(next character) + α·token_kd_loss(student, teacher, T) on ``text``,
    plus ``cosine_weight``·cosine_hidden_loss(student's, teacher's hidden_states) when it is > 0.

    The cosine term is DistilBERT's (Sanh et al. 2019); Hugging Face's training script weighs
    5·KD(T = 2) + 2·CE + 1·cosine, here alpha=5/7, cosine_weight=1/7 (Adam does not see the overall scale).
    It needs CharModels of one width. The teacher's logits (and states) for every window are computed once,
    where the teacher is, and reused every epoch. ``settings``/keywords: as for train_language_model.
    """
    vocabulary = _vocabulary(vocabulary, student=student, teacher=teacher)
    check_temperature(temperature)
    check_fraction("alpha", alpha)
    check_number("cosine_weight", cosine_weight, inclusive=True)
    if cosine_weight:
        _check_same_width(student, teacher)
    settings = _settings(settings, **overrides)
    inputs, targets = _windows(text, vocabulary, context)
    teacher_logits = frozen_outputs(_Reading(teacher, _logits), inputs)  # (N, context, vocab), on the CPU like inputs
    tensors = (inputs, targets, teacher_logits)
    if cosine_weight:
        tensors += (frozen_outputs(_Reading(teacher, hidden_states), inputs),)  # (N, context, width)

    def batch_loss(model, x, y, t, *t_states):  # t_states: () or the teacher's (batch, context, width) states
        def hinton(logits):  # (batch, context, vocab)
            return (1 - alpha) * _next_character_loss(logits, y) + alpha * token_kd_loss(logits, t, temperature)

        if not t_states:
            return hinton(_logits(model, x))
        states = hidden_states(model, x)  # (batch, context, width): the head reads them, the cosine compares them
        return hinton(model.head(states)) + cosine_weight * cosine_hidden_loss(states, *t_states)

    return fit(student, tensors, batch_loss, settings, desc="token-level KD")


def _check_same_width(student, teacher):
    _check_char_model("student", student)
    _check_char_model("teacher", teacher)
    widths = student.gru.hidden_size, teacher.gru.hidden_size
    if widths[0] != widths[1]:
        raise ValueError(f"cosine_weight > 0 compares hidden states, so student and teacher need one width, got "
                         f"{widths[0]} and {widths[1]}; use cosine_weight=0, or student_from_teacher(teacher)")


def distill_sequence_level(student, teacher, text, *, characters=None, sampling_temperature=1.0, vocabulary=None,
                           context=64, settings=None, **overrides):
    """Sequence-level KD (Kim & Rush 2016): plain training on ``characters`` of text the teacher wrote.

    Prompts are cut from ``text``; ``sampling_temperature`` = 0 writes greedily (the teacher's
    mode, as Kim & Rush's beam search approximates), 1 samples its full distribution. The
    student never sees the teacher's probabilities, only its text. ``settings``/keywords: as for
    train_language_model (its seed also seeds the teacher's writing). Returns (history, the text).
    """
    vocabulary = _vocabulary(vocabulary, student=student, teacher=teacher)
    _check_text("text", text)
    check_number("sampling_temperature", sampling_temperature, inclusive=True)  # 0: greedy decoding
    if characters is not None:
        check_count("characters", characters)
    settings = _settings(settings, **overrides)
    written = teacher_text(teacher, text, characters or len(text), sampling_temperature, seed=settings.seed,
                           vocabulary=vocabulary)
    history = train_language_model(student, written, vocabulary=vocabulary, context=context, settings=settings)
    return history, written
