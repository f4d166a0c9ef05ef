"""kdlib.assistants: a distillation chain is distill applied link by link; the gap sweep's bookkeeping."""
import pytest
import torch

from device_probe import follows_meta, held_by_a_caller, on_meta, trained_in_eval_mode, untouched
from kdlib import data, models
from kdlib.assistants import distill_chain, evaluate_each, gap_sweep, trace_distillation
from kdlib.metrics import parameter_count
from kdlib.training import TrainSettings, distill, evaluate, train


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
    with pytest.raises(ValueError, match=r"models must hold at least 2 model\(s\), got 1"):
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
    with pytest.raises(ValueError, match="student_lr must be a finite number > 0, got 0"):
        gap_sweep(build_teacher, [32], lambda seed: mlp(4, seed), digits.train, digits.val, student_lr=0)


def test_settings_and_keywords_are_the_same_run(digits, teacher):
    by_keywords = distill_chain([teacher, mlp(8, seed=1)], digits.train, epochs=1, lr=3e-3, seed=2, progress=False)
    settings = TrainSettings(epochs=1, lr=3e-3, seed=2, progress=False)
    by_settings = distill_chain([teacher, mlp(8, seed=1)], digits.train, settings=settings)
    overridden = distill_chain([teacher, mlp(8, seed=1)], digits.train, settings=TrainSettings.of(settings, seed=0),
                               seed=2)
    assert same_weights(by_keywords[1], by_settings[1]) and same_weights(by_keywords[1], overridden[1])


# ---- device policy: models are left as found, students end in eval mode, everything runs where the model is ----

TOY = data.Split(torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(24) % 10)
QUICK = dict(epochs=1, progress=False)


def caller_model(frozen_layer, seed=0):
    return held_by_a_caller(mlp(8, seed), frozen_layer)


@pytest.mark.parametrize("frozen_layer", [False, True])
def test_chain_leaves_the_teacher_as_found_and_students_in_eval_mode(frozen_layer):
    teacher = caller_model(frozen_layer)
    before = untouched(teacher)
    chain = distill_chain([teacher, caller_model(frozen_layer, 1), mlp(4, 2)], TOY, **QUICK)
    assert untouched(teacher) == before
    assert all(trained_in_eval_mode(model) for model in chain[1:])


@pytest.mark.parametrize("frozen_layer", [False, True])
def test_evaluate_each_leaves_every_model_as_found(frozen_layer):
    chain = [caller_model(frozen_layer, seed) for seed in range(2)]
    before = [untouched(model) for model in chain]
    evaluate_each(chain, TOY)
    assert [untouched(model) for model in chain] == before


def test_chain_and_evaluate_each_follow_models_on_meta():
    for call in (lambda models: distill_chain(models, TOY, **QUICK), lambda models: evaluate_each(models, TOY)):
        metas = [on_meta(mlp(8, seed)) for seed in range(2)]
        follows_meta(lambda: call([meta for meta, _ in metas]))
        seen = [device for _, devices in metas for device in devices]
        assert seen and set(seen) == {"meta"}


def test_gap_sweep_trains_its_models_where_they_are_built_and_leaves_them_in_eval_mode():
    built = []

    def keep(model):
        built.append(model)
        return model

    gap_sweep(lambda width, seed: keep(mlp(width, seed)), [4], lambda seed: keep(mlp(2, seed)), TOY, TOY, **QUICK)
    assert len(built) == 2 and all(trained_in_eval_mode(model) for model in built)
    seen = []

    def on_meta_too(model):
        meta, devices = on_meta(model)
        seen.append(devices)
        return meta

    follows_meta(lambda: gap_sweep(lambda width, seed: on_meta_too(mlp(width, seed)), [4],
                                   lambda seed: on_meta_too(mlp(2, seed)), TOY, TOY, **QUICK))
    seen = [device for devices in seen for device in devices]
    assert seen and set(seen) == {"meta"}
