"""Malformed calls to kdlib.samples: picking the shipped MNIST sample and training the shipped teacher."""
import torch

from kdlib import data
from kdlib.samples import make_mnist_sample, make_mnist_teacher

X = torch.zeros(6, 1, 28, 28)
SPLIT = data.Split(X, torch.arange(6) % 3)  # 2 images of each of 3 classes

BAD_CALLS = [
    ("sample of images without labels", lambda: make_mnist_sample(X), TypeError,
     "test must be a kdlib.data.Split (x, y) of tensors, got Tensor"),
    ("sample of an empty split", lambda: make_mnist_sample(data.Split(X[:0], SPLIT.y[:0])), ValueError,
     "test is empty; expected at least one example"),
    ("sample of 0 per class", lambda: make_mnist_sample(SPLIT, per_class=0), ValueError,
     "per_class must be an integer >= 1, got 0"),
    ("sample of 2.5 per class", lambda: make_mnist_sample(SPLIT, per_class=2.5), TypeError,
     "per_class must be an integer >= 1, got float 2.5"),
    ("sample larger than a class", lambda: make_mnist_sample(SPLIT, per_class=3), ValueError,
     "per_class must be at most the smallest class's size, got 3 but class 0 has 2 images"),
    ("sample with seed -1", lambda: make_mnist_sample(SPLIT, seed=-1), ValueError,
     "seed must be an integer >= 0, got -1"),
    ("teacher from images without labels", lambda: make_mnist_teacher(X), TypeError,
     "train_split must be a kdlib.data.Split (x, y) of tensors, got Tensor"),
    ("teacher from float labels", lambda: make_mnist_teacher(data.Split(X, SPLIT.y.float())), TypeError,
     "train_split.y must be int64 class indices, got dtype torch.float32"),
    ("teacher for 0 epochs", lambda: make_mnist_teacher(SPLIT, epochs=0), ValueError,
     "epochs must be an integer >= 1, got 0"),
    ("teacher with seed 1.0", lambda: make_mnist_teacher(SPLIT, seed=1.0), TypeError,
     "seed must be an integer >= 0, got float 1.0"),
]
