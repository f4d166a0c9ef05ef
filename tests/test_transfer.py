"""kdlib.transfer: ensembled teacher labels over augmentations, and transfer sets missing classes."""
import pytest
import torch
import torch.nn.functional as F

from device_probe import follows_meta, on_meta, untouched
from kdlib import models
from kdlib.training import distill, predict_logits, train
from kdlib.transfer import digit_augmentations, ensemble_labels, rotate, shift, transfer_set_without


def test_shift_by_hand():
    x = torch.arange(9.0).reshape(1, 1, 3, 3)  # [[0,1,2],[3,4,5],[6,7,8]]
    assert shift(x, 1, 0)[0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [3, 4, 5]]
    assert shift(x, 0, -1)[0, 0].tolist() == [[1, 2, 0], [4, 5, 0], [7, 8, 0]]
    with pytest.raises(ValueError, match="smaller than the image"):
        shift(x, 3, 0)


def test_rotation_by_90_degrees_turns_the_image_and_by_0_is_identity():
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(rotate(x, 0.0), x, atol=1e-6)
    # a quarter turn lands exactly on pixel centres; positive angles turn clockwise as displayed
    assert torch.allclose(rotate(x, 90.0), torch.rot90(x, k=-1, dims=(2, 3)), atol=1e-5)


def test_augmentations_keep_shape_and_are_deterministic():
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    augmentations = digit_augmentations()
    assert len(augmentations) == 7
    outputs = [augment(x) for augment in augmentations]
    assert all(out.shape == x.shape for out in outputs)
    assert all(torch.equal(out, augment(x)) for out, augment in zip(outputs, augmentations))
    assert torch.equal(outputs[0], x) and not any(torch.equal(out, x) for out in outputs[1:])


def test_identity_ensemble_is_the_plain_prediction_and_average_matches_float64():
    teacher = models.mlp((1, 8, 8), 10, width=16, depth=1, seed=0)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    soft, hard = ensemble_labels(teacher, x, [lambda images: images], temperature=2.0)
    plain = predict_logits(teacher, x)
    assert torch.allclose(soft, F.softmax(plain / 2.0, dim=1), atol=1e-7)
    assert torch.equal(hard, plain.argmax(dim=1))
    augmentations = digit_augmentations()
    soft, hard = ensemble_labels(teacher, x, augmentations)
    expected = torch.stack([F.softmax(predict_logits(teacher, a(x)).double(), dim=1) for a in augmentations]).mean(0)
    assert torch.allclose(soft.double(), expected, atol=1e-6) and torch.equal(hard, expected.argmax(dim=1))
    assert torch.allclose(soft.sum(dim=1), torch.ones(6), atol=1e-6)


def test_ensemble_bad_inputs():
    teacher = models.mlp((1, 8, 8), 10, width=4, depth=1, seed=0)
    with pytest.raises(ValueError, match="non-empty list"):
        ensemble_labels(teacher, torch.rand(2, 1, 8, 8), [])
    with pytest.raises(ValueError, match="changed the images' shape"):
        ensemble_labels(teacher, torch.rand(2, 1, 8, 8), [lambda x: x[..., :4, :4]])
    with pytest.raises(ValueError, match="temperature"):
        ensemble_labels(teacher, torch.rand(2, 1, 8, 8), digit_augmentations(), temperature=0)


def test_transfer_set_without_classes(digits):
    reduced = transfer_set_without(digits.train, [8, 9])
    assert not torch.isin(reduced.y, torch.tensor([8, 9])).any()
    assert len(reduced.y) == int((digits.train.y < 8).sum())
    with pytest.raises(ValueError, match="leaves no examples"):
        transfer_set_without(digits.train, range(10))


def test_student_without_classes_8_and_9_rarely_gets_them_right(digits):
    teacher = models.mlp((1, 8, 8), 10, width=64, depth=1, seed=0)
    train(teacher, digits.train, epochs=10, lr=3e-3, progress=False)
    student = models.mlp((1, 8, 8), 10, width=32, depth=1, seed=1)
    distill(student, teacher, transfer_set_without(digits.train, [8, 9]), temperature=4.0, alpha=1.0, epochs=10,
            lr=3e-3, seed=0, progress=False)
    predicted = predict_logits(student, digits.test.x).argmax(dim=1)
    missing = digits.test.y >= 8
    missing_accuracy = (predicted[missing] == digits.test.y[missing]).float().mean().item()
    other_accuracy = (predicted[~missing] == digits.test.y[~missing]).float().mean().item()
    assert other_accuracy > 0.85 and missing_accuracy < other_accuracy - 0.5


def test_transfer_set_without_takes_a_tensor_of_classes(digits):
    assert torch.equal(transfer_set_without(digits.train, torch.tensor([8, 9])).y,
                       transfer_set_without(digits.train, [8, 9]).y)
    with pytest.raises(ValueError, match=r"missing_classes\[0\] must be a class of data's labels \(0 to 9\), got 10"):
        transfer_set_without(digits.train, [10])


# ---- float64 and the device policy ---------------------------------------------------------------

def test_ensemble_labels_in_float64_match_the_average_by_hand():
    teacher = models.mlp((1, 8, 8), 10, width=16, depth=1, seed=0).double()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    augmentations = digit_augmentations(15.0)
    soft, hard = ensemble_labels(teacher, x, augmentations, temperature=3.0)
    with torch.no_grad():
        expected = sum(F.softmax(teacher(a(x)) / 3.0, dim=1) for a in augmentations) / len(augmentations)
    assert soft.dtype == torch.float64 and torch.allclose(soft, expected, atol=1e-14, rtol=0)
    assert torch.equal(hard, expected.argmax(dim=1))
    # a quarter turn in float64 lands on pixel centres to float64 precision
    assert torch.allclose(rotate(x, 90.0), torch.rot90(x, k=-1, dims=(2, 3)), atol=1e-12)


@pytest.mark.parametrize("frozen_layer", [False, True])
def test_ensemble_labels_leave_the_teacher_as_found(frozen_layer):
    teacher = models.mlp((1, 8, 8), 10, width=8, depth=1, seed=0).train()
    if frozen_layer:
        teacher[1].eval()  # a caller's frozen layer inside a model in train mode
    before = untouched(teacher)
    soft, hard = ensemble_labels(teacher, torch.rand(4, 1, 8, 8), digit_augmentations())
    assert untouched(teacher) == before
    assert soft.device.type == hard.device.type == "cpu"  # where x is


def test_ensemble_labels_follow_a_teacher_on_meta():
    meta, seen = on_meta(models.mlp((1, 8, 8), 10, width=8, depth=1, seed=0))
    follows_meta(lambda: ensemble_labels(meta, torch.rand(4, 1, 8, 8), digit_augmentations()))
    assert seen and set(seen) == {"meta"}
