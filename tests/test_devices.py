"""kdlib's device policy (kdlib.devices) in the core modules, proven on the CPU.

Every function given a model leaves its device, dtype and train/eval mode as it found them, and runs where
the model is: a copy of the model on the ``meta`` device stands in for a GPU (tests/device_probe.py).
"""
import os
import platform
import subprocess
import sys

import pytest
import torch
from torch import nn

from device_probe import QUICK, TOY, caller_model, follows_meta, on_meta, trained_in_eval_mode, untouched
from kdlib import checks, contrastive, data, devices, hints, metrics, models, relational, training

X = torch.rand(12, 1, 8, 8)
SPLIT = data.Split(X, torch.arange(12) % 10)


def mixed_mode_model():
    """A model in train mode whose batch-norm layer a caller froze (eval): the hardest mode to restore."""
    model = models.mlp((1, 8, 8), 10, width=8, depth=2, batch_norm=True, seed=0).train()
    model[2].eval()
    return model


CALLS = {
    "predict_logits": lambda m: training.predict_logits(m, X),
    "frozen_outputs": lambda m: training.frozen_outputs(m, X, features=True, batch_size=5),
    "class_count": lambda m: training.class_count(m, X),
    "evaluate": lambda m: training.evaluate(m, SPLIT),
    "inference_latency": lambda m: metrics.inference_latency(m, X, repeats=2, warmup=1),
    "penultimate": lambda m: models.penultimate(m, X),
    "parameter_count": lambda m: metrics.parameter_count(m),
    "size_in_bytes": lambda m: metrics.size_in_bytes(m),
}


@pytest.mark.parametrize("name", CALLS)
def test_the_callers_model_is_left_as_found(name):
    model = mixed_mode_model()
    before = untouched(model)
    CALLS[name](model)
    assert untouched(model) == before


@pytest.mark.parametrize("name", CALLS)
def test_functions_run_where_the_model_is(name):
    meta, seen = on_meta(mixed_mode_model())
    before = untouched(meta)
    follows_meta(lambda: CALLS[name](meta))
    assert untouched(meta) == before
    if name not in ("parameter_count", "size_in_bytes"):  # these run no layer
        assert seen and set(seen) == {"meta"}, seen


def test_training_runs_where_the_model_is_and_leaves_the_teacher_as_found():
    teacher, student = mixed_mode_model(), models.mlp((1, 8, 8), 10, width=4, depth=1, seed=1)
    before = untouched(teacher)
    training.distill(student, teacher, SPLIT, epochs=1, progress=False)
    assert untouched(teacher) == before
    assert not student.training and devices.device_of(student).type == "cpu"
    meta_teacher, seen = on_meta(teacher)
    follows_meta(lambda: training.distill(student, meta_teacher, SPLIT, epochs=1, progress=False))
    assert seen and set(seen) == {"meta"}  # the teacher pass ran on the teacher's device
    meta_student, seen = on_meta(student)
    follows_meta(lambda: training.train(meta_student, SPLIT, epochs=1, progress=False))
    assert seen and set(seen) == {"meta"}


def test_eval_mode_restores_every_submodule_even_after_an_error():
    model = mixed_mode_model()
    before = untouched(model)
    with pytest.raises(KeyError), devices.eval_mode(model):
        assert not any(m.training for m in model.modules())
        raise KeyError("inside")
    assert untouched(model) == before


def test_device_of_parameters_then_buffers_then_the_cpu():
    assert devices.device_of(nn.Linear(2, 2).to("meta")).type == "meta"
    assert devices.device_of(nn.BatchNorm1d(2, affine=False).to("meta")).type == "meta"  # buffers only
    assert devices.device_of(nn.ReLU()).type == "cpu"


def test_float64_only_where_the_device_has_it():
    assert devices.widest_float("cpu") == torch.float64 and devices.widest_float("cuda") == torch.float64
    assert devices.widest_float(torch.device("mps")) == torch.float32
    devices.synchronize("cpu")  # nothing to wait for; must not raise


# Methods that train a student on the teacher's features. Hints and CRD also train modules of their own (a
# regressor, projection heads) and return (History, those modules); relational KD returns a History.
FEATURE_METHODS = {
    "hints": hints.distill_with_hints,
    "relational": relational.distill_relational,
    "contrastive": contrastive.distill_contrastive,
}


@pytest.mark.parametrize("mode", ["train", "mixed"])
@pytest.mark.parametrize("method", FEATURE_METHODS)
def test_feature_methods_leave_the_teacher_as_found_and_end_in_eval_mode(method, mode):
    teacher, student = caller_model(mode), caller_model(mode, width=4, seed=1)
    before, student_before = untouched(teacher), untouched(student)
    weights = {name: value.clone() for name, value in teacher.state_dict().items()}  # batch-norm statistics too
    result = FEATURE_METHODS[method](student, teacher, TOY, **QUICK)
    assert untouched(teacher) == before
    assert all(torch.equal(value, weights[name]) for name, value in teacher.state_dict().items())
    assert trained_in_eval_mode(student, student_before)
    if isinstance(result, tuple):
        assert not result[1].training and devices.device_of(result[1]) == devices.device_of(student)


@pytest.mark.parametrize("which", ["student", "teacher"])
@pytest.mark.parametrize("method", FEATURE_METHODS)
def test_feature_methods_follow_a_model_on_meta(method, which):
    models_ = {"student": caller_model("train", width=4, seed=1), "teacher": caller_model("train")}
    models_[which], seen = on_meta(models_[which])
    follows_meta(lambda: FEATURE_METHODS[method](models_["student"], models_["teacher"], TOY, **QUICK))
    assert seen and set(seen) == {"meta"}


X86_WITH_AVX2 = platform.machine().lower() in ("x86_64", "amd64") and devices._has_avx2()


@pytest.mark.skipif(not X86_WITH_AVX2, reason="the kernels are pinned on x86-64 CPUs with AVX2 only")
def test_import_kdlib_pins_the_cpu_kernels_unless_the_user_chose_them():
    """A fresh interpreter: `import kdlib` before any tensor operation gives torch's AVX2 kernels (this machine may
    have AVX-512); a variable the user set wins; imported after torch has computed, it is too late to pin."""
    env = {k: v for k, v in os.environ.items() if k not in devices.PINNED_KERNELS}

    def capability(code, **extra):
        run = subprocess.run([sys.executable, "-c", code + "; print(torch.backends.cpu.get_cpu_capability())"],
                             env={**env, **extra}, capture_output=True, text=True, check=True)
        return run.stdout.strip()

    assert capability("import torch, kdlib") == "AVX2"
    assert capability("import torch, kdlib", ATEN_CPU_CAPABILITY="default") == "DEFAULT"
    native = capability("import torch")
    assert capability("import torch; torch.ones(3).sum(); import kdlib") == native


@pytest.mark.skipif(not X86_WITH_AVX2, reason="the kernels are pinned on x86-64 CPUs with AVX2 only")
def test_this_suite_runs_on_the_pinned_kernels():
    """The stored lessons' numbers were computed with the pinned kernels; the suite compares against them."""
    assert torch.backends.cpu.get_cpu_capability() == "AVX2"


def test_a_failed_claim_stops_the_reference_run_and_is_reported_elsewhere(monkeypatch, capsys):
    """Lessons check their text with check_claim: strict where the stored numbers reproduce, a note elsewhere."""
    assert checks.reference_run() == (X86_WITH_AVX2 and torch.__version__.startswith(checks.REFERENCE_TORCH + "."))
    checks.check_claim(True, "holds")
    monkeypatch.setattr(checks, "reference_run", lambda: True)
    with pytest.raises(AssertionError, match="the text says 0.845"):
        checks.check_claim(False, "the text says 0.845, this run gives 0.838")
    monkeypatch.setattr(checks, "reference_run", lambda: False)
    checks._explain_once.cache_clear()  # the explanation comes once per process
    checks.check_claim(False, "the text says 0.845, this run gives 0.838")
    out = capsys.readouterr().out
    assert "Not as in the text on this machine: the text says 0.845, this run gives 0.838\n" in out and "reference run" in out
