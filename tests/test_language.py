"""Character-level language models: corpus, vocabulary, token-level KD against an independent
float64 computation, perplexity hand values, seeded sampling, short training runs, and the device policy
(models left as found, inputs sent where the model is)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from device_probe import follows_meta, on_meta, untouched
from kdlib.language import (LANGUAGE_SETTINGS, char_model, corpus_vocabulary, decode, distill_sequence_level,
                            distill_token_level, encode, hidden_states, load_corpus, perplexity, sample, split_corpus,
                            student_from_teacher, teacher_text, token_kd_loss, train_language_model)
from kdlib.training import TrainSettings


class FixedDistribution(nn.Module):
    """A context-free model: the same logits at every position, whatever it reads."""

    def __init__(self, logits):
        super().__init__()
        self.fixed = nn.Parameter(torch.as_tensor(logits, dtype=torch.float64), requires_grad=False)

    def forward(self, indices, hidden=None):
        return self.fixed.expand(*indices.shape, -1), hidden  # (batch, sequence, vocab)


@pytest.fixture(scope="module")
def texts():
    return split_corpus(load_corpus())


@pytest.fixture(scope="module")
def trained(texts):
    """A tiny model before and after a short run on the start of the corpus."""
    train_text, heldout = texts
    model = char_model(len(corpus_vocabulary()), width=24, layers=1, seed=0)
    before = perplexity(model, heldout[:1500])
    train_language_model(model, train_text[:6000], epochs=4, batch_size=16, seed=0, progress=False)
    return model, before


# ----------------------------------------------------------------------------- corpus and vocabulary

def test_corpus_ships_with_the_package_and_splits_cleanly(texts):
    text = load_corpus()
    assert 30_000 <= len(text.encode("utf-8")) <= 1_000_000
    assert set(text) <= set(corpus_vocabulary()) and len(corpus_vocabulary()) == len(set(text))
    train_text, heldout = texts
    assert train_text + heldout == text
    assert train_text.endswith("\n") and 0.08 < len(heldout) / len(text) < 0.12


def test_encode_decode_hand_values_and_round_trip():
    assert encode("cab", vocabulary="abc").tolist() == [2, 0, 1]
    assert decode([2, 0, 1, 1], vocabulary="abc") == "cabb"
    sentence = "The teacher writes, the student reads."
    assert decode(encode(sentence)) == sentence
    assert encode(sentence).dtype == torch.int64


def test_encode_rejects_unknown_characters():
    with pytest.raises(ValueError, match=r"\['z'\] are not in the vocabulary"):
        encode("abz", vocabulary="abc")
    with pytest.raises(TypeError, match="text must be a str"):
        encode(["a"], vocabulary="abc")

# ----------------------------------------------------------------------------- token-level KD


def loop_token_kd(student, teacher, temperature):
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) per position with Python floats, averaged over positions."""
    def log_softmax(row):
        scaled = [v / temperature for v in row]
        top = max(scaled)
        log_total = top + math.log(sum(math.exp(v - top) for v in scaled))
        return [v - log_total for v in scaled]

    values = []
    for s_sequence, t_sequence in zip(student.tolist(), teacher.tolist()):
        for s_row, t_row in zip(s_sequence, t_sequence):
            log_s, log_t = log_softmax(s_row), log_softmax(t_row)
            values.append(temperature**2 * sum(math.exp(lt) * (lt - ls) for ls, lt in zip(log_s, log_t)))
    return sum(values) / len(values)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_token_kd_loss_matches_an_independent_loop(temperature):
    g = torch.Generator().manual_seed(0)
    student = torch.randn(2, 5, 7, generator=g, dtype=torch.float64) * 2
    teacher = torch.randn(2, 5, 7, generator=g, dtype=torch.float64) * 2
    loss = token_kd_loss(student, teacher, temperature)
    assert loss.item() == pytest.approx(loop_token_kd(student, teacher, temperature), abs=1e-12)
    assert token_kd_loss(teacher, teacher, temperature).item() == pytest.approx(0.0, abs=1e-12)


def test_token_kd_loss_weights_every_position_equally():
    # one position disagrees out of 2 × 3: the loss is a sixth of that position's KD
    teacher = torch.zeros(2, 3, 4, dtype=torch.float64)
    student = teacher.clone()
    student[1, 2] = torch.tensor([2.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    single = loop_token_kd(student[1:, 2:], teacher[1:, 2:], 1.0)
    assert token_kd_loss(student, teacher, 1.0).item() == pytest.approx(single / 6, abs=1e-12)


def test_token_kd_loss_rejects_bad_shapes_and_temperatures():
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3, 5\) and \(2, 4, 5\)"):
        token_kd_loss(torch.randn(2, 3, 5), torch.randn(2, 4, 5), 2.0)
    with pytest.raises(ValueError, match=r"\(batch, sequence, vocab\) with no empty axis, got \(6, 5\)"):
        token_kd_loss(torch.randn(6, 5), torch.randn(6, 5), 2.0)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        token_kd_loss(torch.randn(1, 2, 3), torch.randn(1, 2, 3), 0.0)

# ----------------------------------------------------------------------------- perplexity


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    vocabulary = corpus_vocabulary()
    uniform = FixedDistribution(torch.zeros(len(vocabulary)))
    assert perplexity(uniform, load_corpus()[:700], context=64) == pytest.approx(len(vocabulary), rel=1e-12)


def test_perplexity_hand_value():
    # p(a) = 3/4, p(b) = 1/4 everywhere; "abab" predicts b, a, b: exp(−(ln ¼ + ln ¾ + ln ¼)/3)
    model = FixedDistribution(torch.log(torch.tensor([0.75, 0.25], dtype=torch.float64)))
    expected = math.exp(-(2 * math.log(0.25) + math.log(0.75)) / 3)
    for context in (1, 2, 128):  # a context-free model scores the same for any window
        assert perplexity(model, "abab", vocabulary="ab", context=context) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="at least 2 characters"):
        perplexity(model, "a", vocabulary="ab")


def test_short_training_run_lowers_held_out_perplexity(trained, texts):
    model, before = trained
    after = perplexity(model, texts[1][:1500])
    assert before > 0.8 * len(corpus_vocabulary())  # an untrained model is close to uniform
    assert after < 0.6 * before

# ----------------------------------------------------------------------------- sampling


def test_sample_is_seeded_and_greedy_ignores_the_seed(trained):
    model, _ = trained
    first = sample(model, "The ", 60, temperature=1.0, seed=3)
    assert first == sample(model, "The ", 60, temperature=1.0, seed=3)
    assert first != sample(model, "The ", 60, temperature=1.0, seed=4)
    assert first.startswith("The ") and len(first) == 64
    assert sample(model, "The ", 30, temperature=0, seed=1) == sample(model, "The ", 30, temperature=0, seed=2)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        sample(model, "The ", 5, temperature=-1.0)


def test_sampling_follows_the_model_distribution():
    # a context-free model with p(a) = 0.9: about 90% of a long sample is "a"
    model = FixedDistribution(torch.log(torch.tensor([0.9, 0.1])))
    text = sample(model, "b", 2000, temperature=1.0, seed=0, vocabulary="ab")[1:]
    assert abs(text.count("a") / 2000 - 0.9) < 0.03
    # temperature → 0 is greedy: only "a"
    assert sample(model, "b", 50, temperature=0, vocabulary="ab")[1:] == "a" * 50

# ----------------------------------------------------------------------------- distillation


def test_token_level_distillation_moves_the_student_toward_the_teacher(trained, texts):
    teacher, _ = trained
    heldout = encode(texts[1][:640]).view(10, 64)
    student = char_model(len(corpus_vocabulary()), width=12, layers=1, seed=5)
    with torch.no_grad():
        teacher_logits = teacher(heldout)[0]
        before = token_kd_loss(student(heldout)[0], teacher_logits, 2.0).item()
    distill_token_level(student, teacher, texts[0][:4000], alpha=1.0, epochs=3, batch_size=16, seed=0, progress=False)
    with torch.no_grad():
        after = token_kd_loss(student(heldout)[0], teacher_logits, 2.0).item()
    assert after < 0.7 * before


def test_sequence_level_distillation_trains_on_teacher_text(trained, texts):
    teacher, _ = trained
    written = teacher_text(teacher, texts[0], 300, temperature=1.0, streams=4, seed=0)
    assert len(written) == 300 and set(written) <= set(corpus_vocabulary())
    assert written == teacher_text(teacher, texts[0], 300, temperature=1.0, streams=4, seed=0)
    student = char_model(len(corpus_vocabulary()), width=12, layers=1, seed=5)
    history, used = distill_sequence_level(student, teacher, texts[0], characters=1000, epochs=1, seed=0,
                                           progress=False)
    assert len(used) == 1000 and len(history.loss) == 1


@pytest.mark.parametrize("teacher_layers, student_layers", [(1, 1), (2, 1), (3, 2), (4, 2)])
def test_student_from_teacher_copies_every_other_layer(teacher_layers, student_layers):
    teacher = char_model(5, width=6, layers=teacher_layers, seed=3)
    student = student_from_teacher(teacher)
    assert student.gru.num_layers == student_layers and student.gru.hidden_size == 6
    assert torch.equal(student.embedding.weight, teacher.embedding.weight)
    assert torch.equal(student.head.weight, teacher.head.weight) and torch.equal(student.head.bias, teacher.head.bias)
    for layer in range(student_layers):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            assert torch.equal(getattr(student.gru, f"{kind}_l{layer}"), getattr(teacher.gru, f"{kind}_l{2 * layer}"))
    student.head.weight.data.add_(1.0)  # a copy, not a shared tensor
    assert not torch.equal(student.head.weight, teacher.head.weight)
    assert {p.dtype for p in student_from_teacher(teacher.double()).parameters()} == {torch.float64}


def test_hidden_states_are_what_the_head_reads():
    model = char_model(5, width=6, layers=2, seed=1)
    indices = torch.randint(0, 5, (3, 7), generator=torch.Generator().manual_seed(0))
    states = hidden_states(model, indices)
    assert states.shape == (3, 7, 6)
    torch.testing.assert_close(model.head(states), model(indices)[0])


def float64_triple_loss(student, teacher, inputs, targets, alpha, temperature, cosine_weight):
    """(1 − α)·CE + α·T²·KL(teacher ‖ student at T) + w·mean(1 − cos) at every position, float64."""
    def run(model):
        states = model.gru(model.embedding(inputs))[0]  # (N, context, width)
        return states, model.head(states)

    s_states, s_logits = run(student)
    with torch.no_grad():
        t_states, t_logits = run(teacher)
    log_q = torch.log_softmax(s_logits, -1)
    ce = -log_q.gather(-1, targets.unsqueeze(-1)).mean()
    p_t = torch.softmax(t_logits / temperature, -1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(s_logits / temperature, -1))).sum(-1).mean()
    cosine = (s_states * t_states).sum(-1) / (s_states.norm(dim=-1) * t_states.norm(dim=-1))
    return (1 - alpha) * ce + alpha * temperature**2 * kl + cosine_weight * (1 - cosine).mean()


@pytest.mark.parametrize("alpha, cosine_weight", [(5 / 7, 1 / 7), (0.0, 0.5), (1.0, 0.0)])
def test_one_step_of_the_triple_loss_matches_a_float64_gradient(alpha, cosine_weight):
    vocabulary, text, context, lr, temperature = "ab c", "abc cab bca ab ca" * 3, 8, 0.05, 2.0
    teacher = char_model(4, width=5, layers=2, seed=0)
    student = student_from_teacher(teacher)
    with torch.no_grad():  # a student that differs from the teacher's layers
        for parameter in student.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
    reference = {name: p.detach().double().clone() for name, p in student.named_parameters()}
    indices = encode(text, vocabulary)
    starts = range(0, len(indices) - context, context // 2)  # windows of context + 1, stride context / 2
    windows = torch.stack([indices[s : s + context + 1] for s in starts])
    student64, teacher64 = student_from_teacher(teacher).double(), copy.deepcopy(teacher).double()
    student64.load_state_dict(reference)
    loss = float64_triple_loss(student64, teacher64, windows[:, :-1], windows[:, 1:], alpha, temperature,
                               cosine_weight)
    loss.backward()
    # one batch holding every window, one SGD step (momentum's first step is the plain gradient)
    distill_token_level(student, teacher, text, temperature=temperature, alpha=alpha, cosine_weight=cosine_weight,
                        vocabulary=vocabulary, context=context, epochs=1, batch_size=len(windows), lr=lr,
                        optimizer="sgd", progress=False)
    for name, p in student64.named_parameters():
        expected = reference[name] - lr * p.grad
        torch.testing.assert_close(dict(student.named_parameters())[name].double(), expected, atol=2e-6, rtol=1e-5)


def test_the_cosine_term_turns_the_student_states_toward_the_teachers(trained, texts):
    teacher, _ = trained
    window = encode(texts[1][:320]).view(5, 64)
    with torch.no_grad():
        target = hidden_states(teacher, window)
    turned = {}
    for weight in (0.0, 1.0):
        student = char_model(len(corpus_vocabulary()), width=24, layers=1, seed=7)  # the teacher's width
        distill_token_level(student, teacher, texts[0][:3000], alpha=1.0, cosine_weight=weight, epochs=2,
                            batch_size=16, seed=0, progress=False)
        with torch.no_grad():
            turned[weight] = F.cosine_similarity(hidden_states(student, window), target, dim=-1).mean().item()
    assert turned[1.0] > turned[0.0] + 0.2 and turned[1.0] > 0.5


def test_char_model_is_seeded_and_checks_sizes():
    first, second = char_model(10, width=8, seed=2), char_model(10, width=8, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    logits, hidden = first(torch.zeros(3, 5, dtype=torch.int64))
    assert logits.shape == (3, 5, 10) and hidden.shape == (1, 3, 8)
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        char_model(10, width=0)


def test_language_training_keeps_its_own_defaults_and_takes_settings():
    text = "abba cab " * 12  # 108 characters
    vocabulary = " abc"
    by_keywords, by_settings = char_model(4, width=6, seed=1), char_model(4, width=6, seed=1)
    history = train_language_model(by_keywords, text, vocabulary=vocabulary, context=8, epochs=2, seed=3,
                                   progress=False)
    settings = TrainSettings.of(LANGUAGE_SETTINGS, epochs=2, seed=3, progress=False)
    again = train_language_model(by_settings, text, vocabulary=vocabulary, context=8, settings=settings)
    assert again.loss == history.loss
    assert all(torch.equal(a, b) for a, b in zip(by_keywords.parameters(), by_settings.parameters()))
    defaults = train_language_model(char_model(4, width=6), text, vocabulary=vocabulary, context=8, progress=False)
    assert len(defaults.loss) == LANGUAGE_SETTINGS.epochs == 10 and defaults.lr[0] == LANGUAGE_SETTINGS.lr == 3e-3

# ----------------------------------------------------------------------------- fixed bugs, in float64


def test_perplexity_sums_in_float64_whatever_the_model_dtype():
    # a float32 model: every window's log-likelihood is summed in float64 (widest_float on the CPU)
    model = char_model(3, width=5, seed=4)
    indices = encode("abcab" * 20, vocabulary="abc")
    with torch.no_grad():
        logits = model(indices[:-1].unsqueeze(0))[0][0].double()  # (99, 3): one window holds the whole text
    expected = F.cross_entropy(logits, indices[1:], reduction="sum").div(99).exp().item()
    assert perplexity(model, "abcab" * 20, vocabulary="abc", context=128) == pytest.approx(expected, rel=1e-12)


def test_sampling_draws_on_a_cpu_generator_from_float64_probabilities():
    # the documented recipe: softmax(last logits / T) in float64 on the CPU, one multinomial draw per character
    model = char_model(3, width=5, seed=4)
    generator, indices, hidden = torch.Generator().manual_seed(7), encode("ab", vocabulary="abc").unsqueeze(0), None
    with torch.no_grad():
        logits, hidden = model(indices)
        drawn = []
        for _ in range(12):
            probabilities = F.softmax(logits[:, -1].double() / 0.7, dim=-1)
            drawn.append(torch.multinomial(probabilities, 1, generator=generator))
            logits, hidden = model(drawn[-1], hidden)
    expected = "ab" + decode(torch.cat(drawn, dim=1)[0], vocabulary="abc")
    assert sample(model, "ab", 12, temperature=0.7, seed=7, vocabulary="abc") == expected


def test_decode_refuses_ids_outside_the_vocabulary():
    assert decode(torch.tensor([2, 0]), vocabulary="abc") == "ca" and decode([], vocabulary="abc") == ""
    with pytest.raises(ValueError, match=r"in \[0, 2\].*got \[-1, 3\]"):
        decode([3, -1, 0], vocabulary="abc")  # -1 used to decode silently as the last character

# ----------------------------------------------------------------------------- device policy

VOCABULARY = corpus_vocabulary()
TEXT = load_corpus()[:600]


def tiny(seed=0):
    return char_model(len(VOCABULARY), width=6, seed=seed)


def in_train_mode(model):
    return model.train()


def with_a_frozen_gru(model):
    """A training model with one submodule in eval mode: only eval_mode's restore brings both back."""
    model.train()
    model.gru.eval()
    return model


def quiet(**settings):
    return dict(context=16, epochs=1, batch_size=8, progress=False, **settings)


LOOKS = {  # public functions that take a model only to read it: (model) -> result
    "perplexity": lambda model: perplexity(model, TEXT[:200], context=32),
    "sample": lambda model: sample(model, "The ", 8, temperature=0.9, seed=1),
    "sample greedy": lambda model: sample(model, "The ", 8, temperature=0),
    "teacher_text": lambda model: teacher_text(model, TEXT, 40, streams=4, seed=2),
}
TEACHES = {  # distillation functions: (student, teacher) -> history
    "distill_token_level": lambda student, teacher: distill_token_level(student, teacher, TEXT, **quiet()),
    "distill_sequence_level": lambda student, teacher: distill_sequence_level(student, teacher, TEXT, characters=200,
                                                                              **quiet()),
    "distill_token_level with the cosine term": lambda student, teacher: distill_token_level(
        student, teacher, TEXT, cosine_weight=0.2, **quiet()),
}


@pytest.mark.parametrize("mode", [in_train_mode, with_a_frozen_gru])
@pytest.mark.parametrize("name", LOOKS)
def test_reading_a_model_leaves_it_as_found(name, mode):
    model = mode(tiny())
    before = untouched(model)
    LOOKS[name](model)
    assert untouched(model) == before


@pytest.mark.parametrize("mode", [in_train_mode, with_a_frozen_gru])
@pytest.mark.parametrize("name", TEACHES)
def test_distilling_leaves_the_teacher_as_found_and_the_student_in_eval_mode(name, mode):
    student, teacher = in_train_mode(tiny(1)), mode(tiny())
    student_before, teacher_before = untouched(student), untouched(teacher)
    TEACHES[name](student, teacher)
    assert untouched(teacher) == teacher_before
    modes, tensors = untouched(student)
    assert tensors == student_before[1] and not any(training for _, training in modes)


def test_training_ends_in_eval_mode_on_the_model_device():
    model = in_train_mode(tiny())
    before = untouched(model)
    train_language_model(model, TEXT, **quiet())
    modes, tensors = untouched(model)
    assert tensors == before[1] and not any(training for _, training in modes)


@pytest.mark.parametrize("name", LOOKS)
def test_reading_follows_the_model_device(name):
    meta, seen = on_meta(tiny())
    follows_meta(lambda: LOOKS[name](meta))
    assert seen and set(seen) == {"meta"}


def test_training_follows_the_model_device():
    meta, seen = on_meta(tiny())
    follows_meta(lambda: train_language_model(meta, TEXT, **quiet()))
    assert seen and set(seen) == {"meta"}


@pytest.mark.parametrize("on", ["student", "teacher"])
@pytest.mark.parametrize("name", TEACHES)
def test_distilling_follows_each_model_device(name, on):
    meta, seen = on_meta(tiny())
    student, teacher = (meta, tiny(1)) if on == "student" else (tiny(1), meta)
    follows_meta(lambda: TEACHES[name](student, teacher))
    assert seen and set(seen) == {"meta"}


def test_hidden_states_follow_the_model_device():
    meta, seen = on_meta(tiny())
    follows_meta(lambda: hidden_states(meta, encode("The ").unsqueeze(0)))
    assert seen and set(seen) == {"meta"}


def test_a_student_from_the_teacher_is_made_where_the_teacher_is():
    teacher = char_model(len(VOCABULARY), width=6, layers=2).to("meta")
    student = student_from_teacher(teacher)
    assert {p.device.type for p in student.parameters()} == {"meta"}
