"""kdlib.assistants: a distillation chain is distill applied link by link; the gap sweep's bookkeeping."""
import pytest
import torch

from kdlib import data, models
from kdlib.assistants import distill_chain, evaluate_each, gap_sweep, trace_distillation
from kdlib.metrics import parameter_count
from kdlib.training import distill, evaluate, train


@pytest.fixture(scope="module")
def teacher(digits):
    net = models.mlp((1, 8, 8), 10, width=128, depth=2, seed=0)
    train(net, digits.train, epochs=10, lr=3e-3, progress=False)
    return net


def mlp(width, seed=0):
    return models.mlp((1, 8, 8), 10, width=width, depth=1, seed=seed)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_chain_of_teacher_and_student_is_plain_distill(digits, teacher):
    chained = distill_chain([teacher, mlp(16, seed=1)], digits.train, epochs=2, seed=4, progress=False)
    direct = mlp(16, seed=1)
    distill(direct, teacher, digits.train, epochs=2, seed=4, progress=False)
    assert len(chained) == 2 and chained[0] is teacher
    assert same_weights(chained[1], direct)


def test_each_link_learns_from_the_model_just_before_it(digits, teacher):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    teacher_, assistant, student = distill_chain([teacher, mlp(32, seed=1), mlp(8, seed=2)], digits.train,
                                                 temperature=3.0, alpha=0.7, epochs=2, seed=5, progress=False)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # the teacher is frozen
    expected_assistant, expected_student = mlp(32, seed=1), mlp(8, seed=2)
    distill(expected_assistant, teacher, digits.train, temperature=3.0, alpha=0.7, epochs=2, seed=5, progress=False)
    distill(expected_student, expected_assistant, digits.train, temperature=3.0, alpha=0.7, epochs=2, seed=5,
            progress=False)
    assert same_weights(assistant, expected_assistant) and same_weights(student, expected_student)
    # distilled from the teacher directly instead, the student would differ
    skipped = mlp(8, seed=2)
    distill(skipped, teacher, digits.train, temperature=3.0, alpha=0.7, epochs=2, seed=5, progress=False)
    assert not same_weights(student, skipped)


def test_chain_is_deterministic_and_learns(digits, teacher):
    runs = [distill_chain([teacher, mlp(32, seed=1), mlp(16, seed=2)], digits.train, epochs=8, lr=3e-3, seed=0,
                          progress=False) for _ in range(2)]
    assert same_weights(runs[0][2], runs[1][2])
    accuracies = evaluate_each(runs[0], digits.test)
    assert len(accuracies) == 3 and accuracies[0] == evaluate(teacher, digits.test)
    assert accuracies[0] > 0.9 and accuracies[1] > 0.85 and accuracies[2] > 0.7, accuracies  # untrained: ~0.1


def test_chain_rejects_too_few_models_and_non_models(digits, teacher):
    with pytest.raises(ValueError, match=r"at least one model to distil, got 1 model\(s\)"):
        distill_chain([teacher], digits.train)
    with pytest.raises(TypeError, match="list of torch.nn.Module, got Sequential"):
        distill_chain(teacher, digits.train)


def test_gap_sweep_trains_each_teacher_and_distils_the_same_student(digits):
    def build_teacher(width, seed):
        return models.mlp((1, 8, 8), 10, width=width, depth=1, seed=seed)

    sweep = gap_sweep(build_teacher, [8, 64], lambda seed: mlp(4, seed), digits.train, digits.val,
                      epochs=2, seed=3, progress=False)
    assert sweep.sizes == [8, 64]
    assert sweep.teacher_parameters == [parameter_count(build_teacher(8, 0)), parameter_count(build_teacher(64, 0))]
    # by hand for the second size: train the teacher, distil a fresh student with the same seed
    teacher_ = build_teacher(64, 3)
    train(teacher_, digits.train, epochs=2, seed=3, progress=False)
    student_ = mlp(4, 3)
    distill(student_, teacher_, digits.train, epochs=2, seed=3, progress=False)
    assert sweep.teacher_accuracy[1] == evaluate(teacher_, digits.val)
    assert sweep.student_accuracy[1] == evaluate(student_, digits.val)
    with pytest.raises(ValueError, match="at least one size"):
        gap_sweep(build_teacher, [], lambda seed: mlp(4, seed), digits.train, digits.val)


def test_gap_sweep_distils_on_student_data_when_given(digits):
    hidden = data.Split(digits.train.x, data.hide_labels(digits.train.y, 0.05, seed=0))
    build_teacher = lambda width, seed: mlp(width, seed)  # noqa: E731
    full = gap_sweep(build_teacher, [32], lambda seed: mlp(16, seed), digits.train, digits.val, alpha=0.5,
                     epochs=3, lr=3e-3, progress=False)
    transfer = gap_sweep(build_teacher, [32], lambda seed: mlp(16, seed), digits.train, digits.val, alpha=0.5,
                         student_data=hidden, epochs=3, lr=3e-3, progress=False)
    assert full.teacher_accuracy == transfer.teacher_accuracy  # teachers always see every label
    assert full.student_accuracy != transfer.student_accuracy


def test_trace_distillation_records_each_link_in_call_order(digits, teacher):
    chain = [teacher, mlp(16, seed=1), mlp(8, seed=2)]
    returned, links = trace_distillation(distill_chain, chain, digits.train, epochs=1, progress=False)
    assert returned == chain
    assert len(links) == 2
    assert links[0][0] is chain[1] and links[0][1] is chain[0]  # assistant from teacher
    assert links[1][0] is chain[2] and links[1][1] is chain[1]  # student from assistant

    def every_model_from_the_teacher(models, data_):
        for model in models[1:]:
            distill(model, models[0], data_, epochs=1, progress=False)
        return "done"

    result, links = trace_distillation(every_model_from_the_teacher, chain, digits.train)
    assert result == "done" and [t is teacher for _, t in links] == [True, True]
    assert trace_distillation(lambda: 3) == (3, [])
    with pytest.raises(TypeError, match="function must be callable, got int"):
        trace_distillation(3)


def test_gap_sweep_trains_students_at_their_own_learning_rate(digits):
    build_teacher = lambda width, seed: mlp(width, seed)  # noqa: E731
    sweep = gap_sweep(build_teacher, [32], lambda seed: mlp(4, seed), digits.train, digits.val, epochs=2,
                      student_lr=3e-2, seed=1, progress=False)
    teacher_ = mlp(32, 1)
    train(teacher_, digits.train, epochs=2, seed=1, progress=False)  # teachers keep lr (default 1e-3)
    student_ = mlp(4, 1)
    distill(student_, teacher_, digits.train, epochs=2, lr=3e-2, seed=1, progress=False)
    assert sweep.teacher_accuracy == [evaluate(teacher_, digits.val)]
    assert sweep.student_accuracy == [evaluate(student_, digits.val)]
    with pytest.raises(ValueError, match="student_lr must be > 0, got 0"):
        gap_sweep(build_teacher, [32], lambda seed: mlp(4, seed), digits.train, digits.val, student_lr=0)
