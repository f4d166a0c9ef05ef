"""
Data for the course: small grayscale digit images, splits and loaders.

Two datasets, both handwritten digits 0..9 as (N, 1, H, W) float32 images in [0, 1]:

- digits: 1797 images of 8x8 pixels from the UCI ML hand-written digits
  collection (Alpaydin & Kaynak), shipped inside scikit-learn, so it works
  offline and trains in seconds. Good for quick experiments.
- MNIST: 60000 train + 10000 test images of 28x28 pixels, by Yann LeCun and
  Corinna Cortes, licensed CC BY-SA 3.0. Read from the four standard IDX files
  in data_dir() / "mnist", optionally downloaded from a public mirror.

Knowledge distillation also needs a "transfer set": examples the student learns
from the teacher's outputs. hide_labels() marks labels as UNLABELLED to simulate
a transfer set where only a few true labels are known.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import sys
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset


class Split(NamedTuple):
    x: torch.Tensor  # (N, 1, H, W) float32 in [0, 1]
    y: torch.Tensor  # (N,) int64


class Splits(NamedTuple):
    train: Split
    val: Split
    test: Split


UNLABELLED = -1  # label value marking an example whose label is hidden (transfer-set examples)

MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# name -> (md5 of the published .gz file, md5 of its decompressed contents)
MNIST_FILES = {
    "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
}

# -----------------------------------------------------------------------------
# where the data lives

def data_dir() -> Path:
    """Folder holding downloaded datasets: $KDLIB_DATA_DIR, else a per-user cache folder (not created)."""
    if os.environ.get("KDLIB_DATA_DIR"):
        return Path(os.environ["KDLIB_DATA_DIR"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "kdlib"

# -----------------------------------------------------------------------------
# digits (8x8, ships with scikit-learn)

def load_digits() -> Split:
    """The 1797 8x8 digit images from scikit-learn, pixels 0..16 scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sklearn_digits  # imported here: only this function needs sklearn
    d = sklearn_digits()
    x = torch.as_tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.as_tensor(d.target, dtype=torch.int64)
    return Split(x, y)

# -----------------------------------------------------------------------------
# MNIST (IDX files)

def _read_bytes(path: Path) -> bytes:
    """Contents of path, decompressed if its name ends in .gz."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; check the path")
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # truncated or not gzip at all
        raise ValueError(f"{path}: cannot decompress ({e}); the file is truncated or corrupt, delete it and get it again") from None


def _parse_idx(path: Path, data: bytes, magic: int, ndim: int) -> tuple[list[int], bytes]:
    """Check an IDX header (big-endian: magic, then ndim uint32 sizes) and return (sizes, uint8 payload)."""
    header = 4 * (1 + ndim)
    # magic first: a labels file passed as images is also too short for an images header
    if len(data) >= 4 and (got := struct.unpack(">I", data[:4])[0]) != magic:
        kind = "images" if magic == 2051 else "labels"
        raise ValueError(f"{path}: expected an IDX {kind} file (magic number {magic}), got magic number {got}; "
                         "pass the images file first and the labels file second")
    if len(data) < header:
        raise ValueError(f"{path}: expected at least {header} header bytes, got a {len(data)}-byte file; "
                         "it is truncated, delete it and get it again")
    sizes = list(struct.unpack(f">{ndim}I", data[4:header]))
    expected = header + math.prod(sizes)
    if len(data) != expected:
        raise ValueError(f"{path}: header promises {'x'.join(map(str, sizes))} values, so expected {expected} bytes, "
                         f"got {len(data)} bytes; the file is truncated or corrupt, delete it and get it again")
    return sizes, data[header:]


def load_idx(images_path, labels_path) -> Split:
    """Read an IDX images file and its IDX labels file (gzip-compressed if the name ends in .gz).

    IDX format, all integers big-endian uint32:
      images: magic 2051, count, rows, cols, then count*rows*cols uint8 pixels (row-major)
      labels: magic 2049, count, then count uint8 labels
    Returns images as float32 / 255 of shape (count, 1, rows, cols) and labels as int64.
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    (n, rows, cols), pixels = _parse_idx(images_path, _read_bytes(images_path), 2051, 3)
    (m,), labels = _parse_idx(labels_path, _read_bytes(labels_path), 2049, 1)
    if n != m:
        raise ValueError(f"{images_path} has {n} images but {labels_path} has {m} labels; they should be the same count, "
                         "check that both files come from the same dataset split")
    # bytearray: torch.frombuffer wants a writable buffer
    x = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(n, 1, rows, cols).float() / 255.0
    y = torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()
    return Split(x, y)


def _md5(path: Path) -> str:
    """Hex md5 of a file's bytes, as stored (a raw file's md5 is that of the decompressed .gz)."""
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()  # integrity check, not security


def _download(url: str, dest: Path, md5: str) -> None:
    """Fetch url to dest via a temporary file in the same folder, so dest is only ever complete and verified."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    tmp = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                f.write(chunk)
        actual = _md5(tmp)
        if actual != md5:
            raise ValueError(f"download of {url} is corrupt: expected md5 {md5}, got {actual}; try again later")
        tmp.replace(dest)  # atomic rename: dest never exists half-written
    finally:
        tmp.unlink(missing_ok=True)  # no-op after a successful replace


def _mnist_file(root: Path, name: str, download: bool) -> Path:
    """Path of a verified MNIST file, .gz or raw, downloading the .gz if missing and download is True."""
    gz_md5, raw_md5 = MNIST_FILES[name]
    gz, raw = root / f"{name}.gz", root / name
    if not gz.exists() and not raw.exists():
        if not download:
            raise FileNotFoundError(
                f"MNIST file {gz.name} (or its un-gzipped version {raw.name}) not found in {root}. "
                f"Fix: call load_mnist(download=True) to fetch it, or put the four MNIST files in {root} "
                "(or set KDLIB_DATA_DIR to a folder whose mnist/ subfolder holds them).")
        _download(MNIST_MIRROR + gz.name, gz, gz_md5)
    path, expected = (gz, gz_md5) if gz.exists() else (raw, raw_md5)
    actual = _md5(path)
    if actual != expected:
        raise ValueError(f"{path} is corrupt: expected md5 {expected}, got {actual}. "
                         "Delete it and download it again with load_mnist(download=True).")
    return path


def load_mnist(root=None, *, download: bool = False) -> tuple[Split, Split]:
    """MNIST as (train, test) with 60000 and 10000 images; root defaults to data_dir() / "mnist"."""
    root = Path(root) if root is not None else data_dir() / "mnist"
    paths = {name: _mnist_file(root, name, download) for name in MNIST_FILES}
    train = load_idx(paths["train-images-idx3-ubyte"], paths["train-labels-idx1-ubyte"])
    test = load_idx(paths["t10k-images-idx3-ubyte"], paths["t10k-labels-idx1-ubyte"])
    return train, test

# -----------------------------------------------------------------------------
# splits and hidden labels

def split_dataset(data: Split, fractions=(0.6, 0.2, 0.2), seed: int = 0) -> Splits:
    """Stratified train/val/test split: every class is cut in the same proportions; same seed, same split."""
    fractions = tuple(fractions)
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions should be 3 positive numbers summing to 1 (train, val, test), got {fractions}; "
                         "e.g. fractions=(0.6, 0.2, 0.2)")
    x, y = data
    if len(x) != len(y):
        raise ValueError(f"data.x has {len(x)} examples but data.y has {len(y)}; they should match")
    g = torch.Generator().manual_seed(seed)
    parts = [[], [], []]
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        # cut at rounded cumulative fractions so the three parts always cover the class exactly
        a = round(fractions[0] * len(idx))
        b = round((fractions[0] + fractions[1]) * len(idx))
        for part, chunk in zip(parts, (idx[:a], idx[a:b], idx[b:])):
            part.append(chunk)
    splits = []
    for part in parts:
        idx = torch.cat(part)
        idx = idx[torch.randperm(len(idx), generator=g)]  # mix the classes, which were concatenated in order
        splits.append(Split(x[idx], y[idx]))
    return Splits(*splits)


def hide_labels(labels: torch.Tensor, keep_fraction: float, seed: int = 0) -> torch.Tensor:
    """Copy of labels with all but a stratified keep_fraction per class (at least one each) set to UNLABELLED."""
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction should be in (0, 1], got {keep_fraction}; e.g. 0.1 keeps 10% of each class")
    g = torch.Generator().manual_seed(seed)
    out = torch.full_like(labels, UNLABELLED)
    for c in torch.unique(labels):
        if c == UNLABELLED:
            continue  # already hidden: stays hidden
        idx = torch.nonzero(labels == c).flatten()
        keep = max(1, round(keep_fraction * len(idx)))
        out[idx[torch.randperm(len(idx), generator=g)[:keep]]] = c
    return out

def load_splits(name="digits", seed=0, download=False) -> Splits:
    """Train/val/test of "digits" (60/20/20, offline) or "mnist" (55000/5000 of train, the official test)."""
    if name == "digits":
        return split_dataset(load_digits(), seed=seed)
    if name == "mnist":
        train, test = load_mnist(download=download)
        order = torch.randperm(len(train.x), generator=torch.Generator().manual_seed(seed))
        fit, val = order[:55000], order[55000:]
        return Splits(Split(train.x[fit], train.y[fit]), Split(train.x[val], train.y[val]), test)
    raise ValueError(f'name must be "digits" or "mnist", got {name!r}')

# -----------------------------------------------------------------------------
# loaders

def make_loader(data, batch_size: int = 64, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """DataLoader over a Split or any tuple of tensors sharing the first dimension, e.g. (x, y, teacher_logits)."""
    tensors = tuple(data)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError(f"expected a Split or a tuple of tensors, got {type(data).__name__} of "
                         f"{[type(t).__name__ for t in tensors]}; pass e.g. (x, y)")
    sizes = [len(t) for t in tensors]
    if len(set(sizes)) != 1:
        raise ValueError(f"all tensors should have the same first dimension, got sizes {sizes}; "
                         "check that they describe the same examples")
    # own generator, even without shuffling: DataLoader also draws a seed from it on every epoch,
    # and would otherwise take it from the global RNG, changing the rest of the program's randomness
    g = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(*tensors)
    order = RandomSampler(dataset, generator=g) if shuffle else SequentialSampler(dataset)
    # index whole batches at once (dataset[list_of_indices]) instead of collating one example at a time
    batches = BatchSampler(order, batch_size=batch_size, drop_last=False)
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=g, num_workers=0)
