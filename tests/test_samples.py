"""kdlib.samples: the shipped MNIST sample and teacher, and the functions that rebuild them."""
import hashlib
import os
from pathlib import Path

import pytest
import torch

from kdlib import data, samples
from kdlib.training import evaluate


def test_the_shipped_sample_is_50_images_of_each_digit_in_turn():
    sample = samples.mnist_sample()
    assert sample.x.shape == (500, 1, 28, 28) and sample.x.dtype == torch.float32
    assert sample.y.tolist() == list(range(10)) * 50
    assert 0 <= sample.x.min() and sample.x.max() <= 1 and sample.x.max() == 1


def test_the_shipped_teacher_is_small_and_accurate_on_the_sample():
    teacher = samples.mnist_teacher()
    assert not teacher.training
    assert samples.TEACHER_PATH.stat().st_size < 250_000
    assert evaluate(teacher, samples.mnist_sample()) > 0.95


def test_make_mnist_sample_is_stratified_and_seeded():
    images = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    split = data.Split(images, torch.arange(30) % 3)  # 10 images of each of 3 classes
    sample = samples.make_mnist_sample(split, per_class=4, seed=1)
    assert sample.y.tolist() == [0, 1, 2] * 4
    assert torch.equal(sample.x, samples.make_mnist_sample(split, per_class=4, seed=1).x)
    assert not torch.equal(sample.x, samples.make_mnist_sample(split, per_class=4, seed=2).x)
    for image, label in zip(sample.x, sample.y):  # every picked image is one of its class's images
        assert any(torch.equal(image, other) for other in split.x[split.y == label])


def test_idx_files_round_trip_and_are_byte_identical(tmp_path):
    split = samples.mnist_sample()
    images, labels = samples.idx_bytes(split)
    assert (images, labels) == samples.idx_bytes(split)  # gzip without a timestamp
    (tmp_path / "x.gz").write_bytes(images)
    (tmp_path / "y.gz").write_bytes(labels)
    again = data.load_idx(tmp_path / "x.gz", tmp_path / "y.gz")
    assert torch.equal(again.x, split.x) and torch.equal(again.y, split.y)


def test_make_mnist_teacher_is_bit_identical_for_one_seed():
    split = data.Split(torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 10)
    first, second = (samples.make_mnist_teacher(split, epochs=1, seed=3) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other = samples.make_mnist_teacher(split, epochs=1, seed=4)
    assert not torch.equal(first[1].weight, other[1].weight)


def _mnist_folder():
    folder = Path(os.environ.get("KDLIB_DATA_DIR", "/work/shared/data")) / "mnist"
    if not (folder / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("real MNIST files not available: set KDLIB_DATA_DIR to a folder holding mnist/*.gz")
    return folder


def test_the_shipped_sample_is_rebuilt_bit_for_bit_from_mnist():
    _, test = data.load_mnist(_mnist_folder())
    images, labels = samples.idx_bytes(samples.make_mnist_sample(test))
    assert hashlib.sha256(images).digest() == hashlib.sha256(samples.SAMPLE_IMAGES.read_bytes()).digest()
    assert labels == samples.SAMPLE_LABELS.read_bytes()
