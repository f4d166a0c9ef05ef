"""Distilling a character-level language model: plain training, token-level KD, sequence-level KD.

A language model predicts the next character from the ones before. A big teacher GRU and a small
student GRU learn from ``corpus.txt``, a ~37 KB text about the course's topics that ships with
the package. The corpus was written for this project (original text, no third-party sources)
and is released under the same licence as kdlib.

Three ways to train the student:

- plain: cross-entropy on the next character of the corpus (``train_language_model``);
- token-level KD (Hinton et al. 2015 applied per position, as in Kim & Rush, EMNLP 2016):
  match the teacher's whole next-character distribution at every position (``distill_token_level``);
- sequence-level KD (Kim & Rush, "Sequence-Level Knowledge Distillation", EMNLP 2016): train on
  text the teacher writes (``distill_sequence_level``). It needs only the teacher's outputs,
  never its probabilities: this is how a closed model behind an API gets distilled.

Shapes: character indices are int64 ``(batch, sequence)``; logits are ``(batch, sequence, vocab)``.
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .losses import _check_fraction, _check_temperature, kd_loss
from .models import _check_sizes, _seeded
from .training import _fit, default_device

CORPUS_PATH = Path(__file__).with_name("corpus.txt")

# -----------------------------------------------------------------------------
# text and vocabulary


def load_corpus():
    """The course corpus as one string (original text written for kdlib)."""
    return CORPUS_PATH.read_text(encoding="utf-8")


def split_corpus(text, heldout_fraction=0.1):
    """(training text, held-out text): the last ``heldout_fraction`` of ``text``, cut at a line break."""
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    cut = int(len(text) * (1 - heldout_fraction))
    line_break = text.find("\n", cut)
    cut = line_break + 1 if line_break != -1 else cut  # start the held-out part on a fresh line
    return text[:cut], text[cut:]


def build_vocabulary(text):
    """The sorted distinct characters of ``text`` as a string: character vocabulary[i] has index i."""
    return "".join(sorted(set(text)))


_corpus_vocabulary = None


def corpus_vocabulary():
    """The vocabulary of the shipped corpus, the default wherever a ``vocabulary`` is optional."""
    global _corpus_vocabulary
    if _corpus_vocabulary is None:
        _corpus_vocabulary = build_vocabulary(load_corpus())
    return _corpus_vocabulary


def encode(text, vocabulary=None):
    """Characters → int64 indices ``(len(text),)``; a character outside the vocabulary is an error."""
    vocabulary = vocabulary or corpus_vocabulary()
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    index = {character: i for i, character in enumerate(vocabulary)}
    unknown = sorted(set(text) - index.keys())
    if unknown:
        raise ValueError(f"characters {unknown!r} are not in the vocabulary of {len(vocabulary)} characters {vocabulary!r}")
    return torch.tensor([index[character] for character in text], dtype=torch.int64)


def decode(indices, vocabulary=None):
    """int indices (any 1-D sequence) → string."""
    vocabulary = vocabulary or corpus_vocabulary()
    return "".join(vocabulary[i] for i in torch.as_tensor(indices).tolist())

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
    _check_sizes(vocab_size=vocab_size, width=width, layers=layers)
    return _seeded(seed, lambda: CharModel(vocab_size, width, layers))


def _logits(model, indices):
    """Logits of a model that returns (logits, hidden) or logits alone."""
    out = model(indices)
    return out[0] if isinstance(out, tuple) else out  # (batch, sequence, vocab)

# -----------------------------------------------------------------------------
# losses and metrics


def _check_sequence_logits(name, logits):
    if not torch.is_tensor(logits) or not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.dim() != 3 or 0 in logits.shape:
        raise ValueError(f"{name} must have shape (batch, sequence, vocab), got shape {tuple(logits.shape)}")


def token_kd_loss(student_logits, teacher_logits, temperature):
    """Token-level KD: Hinton et al.'s kd_loss at every position, averaged over all positions.

    loss = mean over (batch, sequence) of T² · KL(softmax(t/T) ‖ softmax(s/T)), the word-level
    KD of Kim & Rush (EMNLP 2016) for characters. Logits are (batch, sequence, vocab).
    """
    _check_sequence_logits("student_logits", student_logits)
    _check_sequence_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student_logits and teacher_logits must have the same shape (batch, sequence, vocab), got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    vocab = student_logits.shape[-1]
    # every position is one row of an ordinary (rows, classes) KD problem
    return kd_loss(student_logits.reshape(-1, vocab), teacher_logits.reshape(-1, vocab), temperature)


@torch.no_grad()
def perplexity(model, text, vocabulary=None, context=128):
    """exp(mean negative log-likelihood of each next character of ``text``).

    The text is read in consecutive windows of ``context`` predictions, each starting from an
    empty state, so every character but the first is predicted once. A uniform model scores
    exactly the vocabulary size.
    """
    indices = encode(text, vocabulary)
    if len(indices) < 2:
        raise ValueError(f"text must have at least 2 characters (one to read, one to predict), got {len(indices)}")
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(indices) - 1, context):
        window = indices[start : start + context + 1].unsqueeze(0)  # (1, ≤ context + 1)
        logits = _logits(model, window[:, :-1])  # (1, sequence, vocab)
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), window[:, 1:].reshape(-1), reduction="sum")
        total, count = total + nll.item(), count + window.shape[1] - 1
    model.train(was_training)
    return torch.tensor(total / count, dtype=torch.float64).exp().item()

# -----------------------------------------------------------------------------
# generation


@torch.no_grad()
def _generate(model, prompts, length, temperature, generator):
    """Continue each row of ``prompts`` (streams, prompt) by ``length`` characters → (streams, length)."""
    logits, hidden = model(prompts)  # read the prompts once
    generated = []
    for _ in range(length):
        last = logits[:, -1]  # (streams, vocab)
        if temperature == 0:
            next_index = last.argmax(dim=-1, keepdim=True)  # greedy: the most likely character
        else:
            probabilities = F.softmax(last.double() / temperature, dim=-1)
            next_index = torch.multinomial(probabilities, 1, generator=generator)  # (streams, 1)
        generated.append(next_index)
        logits, hidden = model(next_index, hidden)
    return torch.cat(generated, dim=1)  # (streams, length)


def sample(model, prompt, length, temperature=1.0, seed=0, vocabulary=None):
    """``prompt`` followed by ``length`` characters drawn one at a time from softmax(logits / temperature).

    temperature = 0 is greedy decoding (always the most likely character). Same seed, same text.
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt must be a non-empty str, got {prompt!r}")
    if temperature != 0:
        _check_temperature(temperature)
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    continuation = _generate(model, encode(prompt, vocabulary).unsqueeze(0), length, temperature, generator)
    model.train(was_training)
    return prompt + decode(continuation[0], vocabulary)


def teacher_text(teacher, prompts_from, characters, temperature=1.0, streams=64, prompt_length=16, seed=0,
                 vocabulary=None):
    """About ``characters`` characters written by ``teacher``: the transfer set of sequence-level KD.

    ``streams`` continuations are generated side by side, each after a ``prompt_length`` prompt cut
    at a random position of ``prompts_from``; the continuations (without their prompts) are joined.
    """
    if temperature != 0:
        _check_temperature(temperature)
    prompt_indices = encode(prompts_from, vocabulary)
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(prompt_indices) - prompt_length, (streams,), generator=generator)
    prompts = torch.stack([prompt_indices[s : s + prompt_length] for s in starts.tolist()])  # (streams, prompt)
    was_training = teacher.training
    teacher.eval()
    written = _generate(teacher, prompts, -(-characters // streams), temperature, generator)  # (streams, length)
    teacher.train(was_training)
    return "".join(decode(row, vocabulary) for row in written)[:characters]

# -----------------------------------------------------------------------------
# training


def _windows(text, vocabulary, context):
    """Inputs and next-character targets of overlapping windows (stride context / 2): (N, context) each."""
    indices = encode(text, vocabulary)
    if len(indices) < context + 1:
        raise ValueError(f"text must have more than context={context} characters, got {len(indices)}")
    starts = range(0, len(indices) - context, max(1, context // 2))
    windows = torch.stack([indices[s : s + context + 1] for s in starts])  # (N, context + 1)
    return windows[:, :-1], windows[:, 1:]


def train_language_model(model, text, *, vocabulary=None, context=64, epochs=10, lr=3e-3, batch_size=32, seed=0,
                         progress=True):
    """Plain training: cross-entropy of every next character of ``text``."""
    inputs, targets = _windows(text, vocabulary, context)

    def batch_loss(model, x, y):
        logits = _logits(model, x)  # (batch, context, vocab)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    return _fit(model, (inputs, targets), batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                weight_decay=0.0, val=None, device=default_device(), progress=progress, desc="language model")


def distill_token_level(student, teacher, text, *, temperature=2.0, alpha=0.5, vocabulary=None, context=64,
                        epochs=10, lr=3e-3, batch_size=32, seed=0, progress=True):
    """Token-level KD: (1 − α)·CE(next character) + α·token_kd_loss(student, teacher, T) on ``text``.

    The teacher's logits for every window are computed once and reused every epoch.
    """
    _check_temperature(temperature)
    _check_fraction("alpha", alpha)
    inputs, targets = _windows(text, vocabulary, context)
    device = default_device()
    teacher.to(device).eval()
    with torch.no_grad():
        teacher_logits = torch.cat([_logits(teacher, inputs[i : i + 256].to(device)).cpu()
                                    for i in range(0, len(inputs), 256)])  # (N, context, vocab)

    def batch_loss(model, x, y, t):
        logits = _logits(model, x)  # (batch, context, vocab)
        hard = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        return (1 - alpha) * hard + alpha * token_kd_loss(logits, t, temperature)

    return _fit(student, (inputs, targets, teacher_logits), batch_loss, epochs=epochs, lr=lr, batch_size=batch_size,
                seed=seed, weight_decay=0.0, val=None, device=device, progress=progress, desc="token-level KD")


def distill_sequence_level(student, teacher, text, *, characters=None, sampling_temperature=1.0, vocabulary=None,
                           context=64, epochs=10, lr=3e-3, batch_size=32, seed=0, progress=True):
    """Sequence-level KD (Kim & Rush 2016): plain training on ``characters`` of text the teacher wrote.

    Prompts are cut from ``text``; ``sampling_temperature`` = 0 writes greedily (the teacher's
    mode, as Kim & Rush's beam search approximates), 1 samples its full distribution. The
    student never sees the teacher's probabilities, only its text. Returns (history, the text).
    """
    written = teacher_text(teacher, text, characters or len(text), sampling_temperature, seed=seed,
                           vocabulary=vocabulary)
    history = train_language_model(student, written, vocabulary=vocabulary, context=context, epochs=epochs, lr=lr,
                                   batch_size=batch_size, seed=seed, progress=progress)
    return history, written
