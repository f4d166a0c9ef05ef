"""A little MNIST shipped inside kdlib, so a lesson can show MNIST offline and in seconds.

- ``mnist_sample()``: 500 images of the official MNIST *test* set, 50 per class (kdlib/mnist_sample-*.gz,
  IDX format, read by ``kdlib.data.load_idx``).
- ``mnist_teacher()``: a 2×64 MLP (55,050 parameters, 215 KB) trained on the 55,000 training images of
  ``data.load_splits("mnist")`` (kdlib/mnist_teacher.pt); it never saw the sample's images.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, licensed CC BY-SA 3.0
(https://creativecommons.org/licenses/by-sa/3.0/); the sample is a subset of it under the same licence.
``python -c "from kdlib import samples; samples.write_files()"`` rebuilds both files bit for bit from the full
MNIST (``data.load_mnist``, single-threaded) and prints their sha256.
"""
import gzip
import hashlib
import io
import struct
from pathlib import Path

import torch

from .arguments import check_count, check_split
from .data import Split, load_idx, load_splits
from .models import mlp
from .training import evaluate, train

FOLDER = Path(__file__).parent
SAMPLE_IMAGES = FOLDER / "mnist_sample-images-idx3-ubyte.gz"
SAMPLE_LABELS = FOLDER / "mnist_sample-labels-idx1-ubyte.gz"
TEACHER_PATH = FOLDER / "mnist_teacher.pt"
TEACHER = dict(width=64, depth=2)  # the shipped teacher's mlp() settings
TEACHER_EPOCHS = 9  # the best of 12 epochs on the 5,000 validation images (0.968)


def mnist_sample():
    """The shipped 500 MNIST test images (50 per class) as a Split of (500, 1, 28, 28) floats in [0, 1]."""
    return load_idx(SAMPLE_IMAGES, SAMPLE_LABELS)


def mnist_teacher():
    """The shipped MNIST teacher, a 2×64 kdlib.models.mlp in eval mode on the CPU (made by make_mnist_teacher)."""
    model = mlp((1, 28, 28), 10, **TEACHER)
    model.load_state_dict(torch.load(TEACHER_PATH, map_location="cpu", weights_only=True))
    return model.eval()


def make_mnist_sample(test, per_class=50, seed=0):
    """``per_class`` images of each class of ``test``, drawn at random (seed), classes in turn 0, 1, ..., 9, 0, ..."""
    check_split(test, "test")
    check_count("per_class", per_class)
    check_count("seed", seed, low=0)
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(test.y):
        idx = torch.nonzero(test.y == c).flatten()
        if len(idx) < per_class:
            raise ValueError(f"per_class must be at most the smallest class's size, got {per_class} but class "
                             f"{int(c)} has {len(idx)} images")
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    order = torch.stack(picks, dim=1).flatten()  # (per_class * classes,): one image of each class in turn
    return Split(test.x[order], test.y[order])


def make_mnist_teacher(train_split, epochs=TEACHER_EPOCHS, seed=0):
    """A 2×64 MLP trained with Adam (lr 1e-3, batches of 128) on ``train_split``; bit-identical for one seed
    and one thread count."""
    check_split(train_split, "train_split")
    check_count("epochs", epochs)
    check_count("seed", seed, low=0)
    model = mlp(tuple(train_split.x.shape[1:]), 10, **TEACHER, seed=seed)
    train(model, train_split, epochs=epochs, lr=1e-3, batch_size=128, seed=seed)
    return model


def idx_bytes(split):
    """(images, labels) IDX files of a Split of [0, 1] images, gzip-compressed with a fixed timestamp."""
    n, _, rows, cols = split.x.shape
    pixels = (split.x * 255).round().to(torch.uint8).flatten().numpy().tobytes()
    labels = split.y.to(torch.uint8).numpy().tobytes()
    return (gzip.compress(struct.pack(">IIII", 2051, n, rows, cols) + pixels, mtime=0),
            gzip.compress(struct.pack(">II", 2049, n) + labels, mtime=0))


def write_files():
    """Rebuild the sample and the teacher from the full MNIST; returns {file name: sha256}."""
    torch.set_num_threads(1)
    splits = load_splits("mnist")
    images, labels = idx_bytes(make_mnist_sample(splits.test))
    teacher = make_mnist_teacher(splits.train)
    print(f"\nteacher: validation accuracy {evaluate(teacher, splits.val):.4f}, test {evaluate(teacher, splits.test):.4f}")
    buffer = io.BytesIO()
    torch.save(teacher.state_dict(), buffer)
    contents = {SAMPLE_IMAGES: images, SAMPLE_LABELS: labels, TEACHER_PATH: buffer.getvalue()}
    digests = {}
    for path, payload in contents.items():
        path.write_bytes(payload)
        digests[path.name] = hashlib.sha256(payload).hexdigest()
        print(f"wrote kdlib/{path.name} sha256 {digests[path.name]}")
    return digests
