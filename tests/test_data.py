"""Tests for kdlib.data: loaders of digits/IDX/MNIST, splits, hidden labels, DataLoaders."""
import gzip
import io
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch

from kdlib import data
from kdlib.data import UNLABELLED, Split, hide_labels, load_digits, load_idx, load_mnist, make_loader, split_dataset

NAMES = list(data.MNIST_FILES)


def _shared_mnist() -> Path:
    """Folder with the real MNIST .gz files: $KDLIB_DATA_DIR/mnist, else /work/shared/data/mnist, else skip."""
    if os.environ.get("KDLIB_DATA_DIR"):
        return Path(os.environ["KDLIB_DATA_DIR"]) / "mnist"
    fallback = Path("/work/shared/data/mnist")
    if not fallback.exists():
        pytest.skip("real MNIST files not available: set KDLIB_DATA_DIR to a folder holding mnist/*.gz")
    return fallback


@pytest.fixture(scope="module")
def mnist_dir() -> Path:
    return _shared_mnist()


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return load_mnist(mnist_dir)


@pytest.fixture
def mnist_copy(mnist_dir, tmp_path) -> Path:
    """A writable copy of the real .gz files."""
    for name in NAMES:
        shutil.copyfile(mnist_dir / f"{name}.gz", tmp_path / f"{name}.gz")
    return tmp_path

# -----------------------------------------------------------------------------
# digits

def test_load_digits():
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1  # 0..16 scaled, and both ends occur
    assert set(y.tolist()) == set(range(10))

# -----------------------------------------------------------------------------
# IDX

def _idx_bytes(images: torch.Tensor, labels: torch.Tensor) -> tuple[bytes, bytes]:
    n, rows, cols = images.shape
    img = struct.pack(">4I", 2051, n, rows, cols) + bytes(images.flatten().tolist())
    lab = struct.pack(">2I", 2049, n) + bytes(labels.tolist())
    return img, lab


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_round_trip(tmp_path, gz):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 3, 4), generator=g, dtype=torch.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the range
    labels = torch.tensor([0, 9, 3, 255, 7], dtype=torch.uint8)
    img, lab = _idx_bytes(images, labels)
    suffix, write = (".gz", gzip.compress) if gz else ("", lambda b: b)
    (tmp_path / f"img{suffix}").write_bytes(write(img))
    (tmp_path / f"lab{suffix}").write_bytes(write(lab))
    x, y = load_idx(tmp_path / f"img{suffix}", str(tmp_path / f"lab{suffix}"))  # str paths accepted too
    assert x.shape == (5, 1, 3, 4) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert torch.equal((x * 255).round().to(torch.uint8).squeeze(1), images)
    assert torch.equal(y, labels.long())


def _write_idx(tmp_path) -> tuple[Path, Path]:
    img, lab = _idx_bytes(torch.zeros(4, 2, 2, dtype=torch.uint8), torch.arange(4, dtype=torch.uint8))
    (tmp_path / "img").write_bytes(img)
    (tmp_path / "lab").write_bytes(lab)
    return tmp_path / "img", tmp_path / "lab"


def test_load_idx_truncated(tmp_path):
    img, lab = _write_idx(tmp_path)
    img.write_bytes(img.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"img.*expected 32 bytes, got 31"):
        load_idx(img, lab)


def test_load_idx_truncated_gz(tmp_path):
    img, lab = _write_idx(tmp_path)
    packed = gzip.compress(img.read_bytes())
    (tmp_path / "img.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match="img.gz"):
        load_idx(tmp_path / "img.gz", lab)


def test_load_idx_wrong_magic(tmp_path):
    img, lab = _write_idx(tmp_path)
    with pytest.raises(ValueError, match=r"lab.*2051"):
        load_idx(lab, img)  # swapped
    img.write_bytes(struct.pack(">I", 2050) + img.read_bytes()[4:])
    with pytest.raises(ValueError, match=r"img.*magic number 2051\), got magic number 2050"):
        load_idx(img, lab)


def test_load_idx_count_mismatch(tmp_path):
    img, lab = _write_idx(tmp_path)
    lab.write_bytes(struct.pack(">2I", 2049, 3) + bytes(3))
    with pytest.raises(ValueError, match="4 images.*3 labels"):
        load_idx(img, lab)

# -----------------------------------------------------------------------------
# MNIST on the real files

def test_load_mnist(mnist):
    train, test = mnist
    for split, n in [(train, 60000), (test, 10000)]:
        assert split.x.shape == (n, 1, 28, 28) and split.x.dtype == torch.float32
        assert split.y.shape == (n,) and split.y.dtype == torch.int64
        assert 0 <= split.x.min() and split.x.max() == 1
        counts = torch.bincount(split.y, minlength=10)
        assert len(counts) == 10
        assert (counts > 0.08 * n).all() and (counts < 0.12 * n).all()  # roughly balanced classes
    assert torch.bincount(test.y).tolist()[:2] == [980, 1135]  # published counts of 0s and 1s in the test set


def test_load_mnist_default_root(mnist_dir, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA_DIR", str(mnist_dir.parent))
    _, test = load_mnist()
    assert len(test.y) == 10000


def test_load_mnist_accepts_raw(mnist_copy, mnist):
    gz = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    (mnist_copy / "t10k-labels-idx1-ubyte").write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    _, test = load_mnist(mnist_copy)
    assert torch.equal(test.y, mnist[1].y)


def test_load_mnist_corrupt_raw(mnist_copy):
    gz = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(gz.read_bytes()))
    raw[100] ^= 1  # still a valid IDX file, only md5 can tell
    (mnist_copy / "t10k-labels-idx1-ubyte").write_bytes(raw)
    gz.unlink()
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*md5"):
        load_mnist(mnist_copy)


def test_load_mnist_corrupt(mnist_copy):
    path = mnist_copy / "train-labels-idx1-ubyte.gz"
    b = bytearray(path.read_bytes())
    b[len(b) // 2] ^= 0xFF
    path.write_bytes(b)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz.*md5") as e:
        load_mnist(mnist_copy)
    assert "elete" in str(e.value)  # tells to delete it


def test_load_mnist_missing(mnist_copy):
    (mnist_copy / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte") as e:
        load_mnist(mnist_copy)
    assert "download=True" in str(e.value) and str(mnist_copy) in str(e.value)

# -----------------------------------------------------------------------------
# download, offline: urlopen is replaced by a fake

class FakeResponse(io.BytesIO):
    """Stands in for what urlopen returns: readable and usable in a with statement."""


class BrokenResponse(FakeResponse):
    """A response whose connection drops after the first 1000 bytes."""
    def read(self, n=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection lost")
        return super().read(1000)


def test_download(mnist_dir, tmp_path, monkeypatch):
    urls = []
    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return FakeResponse((mnist_dir / url.rsplit("/", 1)[1]).read_bytes())
    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    root = tmp_path / "new" / "mnist"  # created on demand
    train, test = load_mnist(root, download=True)
    assert len(train.y) == 60000 and len(test.y) == 10000
    assert sorted(urls) == sorted(data.MNIST_MIRROR + f"{n}.gz" for n in NAMES)
    assert sorted(p.name for p in root.iterdir()) == sorted(f"{n}.gz" for n in NAMES)
    load_mnist(root, download=True)  # second time: everything present, no fetch
    assert len(urls) == 4


def test_download_wrong_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(b"not mnist" * 1000))
    with pytest.raises(ValueError, match="md5"):
        load_mnist(tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temp file left behind


def test_download_interrupted(tmp_path, monkeypatch):
    monkeypatch.setattr(data.urllib.request, "urlopen",
                        lambda url, timeout=None: BrokenResponse(bytes(5000)))
    with pytest.raises(ConnectionResetError):
        load_mnist(tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []

# -----------------------------------------------------------------------------
# split_dataset

@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _ids(split: Split) -> list:
    """Examples as hashable pixel tuples; a list, not a set, since digits holds a few duplicate images."""
    return [tuple(row.tolist()) for row in split.x.flatten(1)]


def test_split_sizes_and_disjoint(digits):
    s = split_dataset(digits)
    n = len(digits.y)
    assert sum(len(p.y) for p in s) == n
    for part, f in zip(s, (0.6, 0.2, 0.2)):
        assert abs(len(part.y) - f * n) <= 10  # per-class rounding: at most 1 off per class
        assert len(part.x) == len(part.y)
    # together the three splits hold every example exactly once
    together = sorted(_ids(s.train) + _ids(s.val) + _ids(s.test))
    assert together == sorted(_ids(digits))


def test_split_disjoint_by_index():
    # unique values as x make it easy to trace every example
    x = torch.arange(100, dtype=torch.float32).view(100, 1, 1, 1)
    y = torch.arange(100) % 4
    s = split_dataset(Split(x, y), (0.5, 0.3, 0.2), seed=1)
    ids = [set(p.x.flatten().long().tolist()) for p in s]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert set().union(*ids) == set(range(100))
    for p in s:  # labels travel with their images
        assert torch.equal(p.y, p.x.flatten().long() % 4)


def test_split_stratified(digits):
    s = split_dataset(digits, (0.5, 0.25, 0.25))
    total = torch.bincount(digits.y, minlength=10)
    for part, f in zip(s, (0.5, 0.25, 0.25)):
        counts = torch.bincount(part.y, minlength=10)
        assert ((counts - f * total).abs() <= 1).all()


def test_split_seed(digits):
    a, b, c = split_dataset(digits, seed=3), split_dataset(digits, seed=3), split_dataset(digits, seed=4)
    for pa, pb in zip(a, b):
        assert torch.equal(pa.x, pb.x) and torch.equal(pa.y, pb.y)
    assert not torch.equal(a.train.x, c.train.x)


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.6, 0.2, 0.1), (0.8, 0.3, -0.1), (1.0, 0.0, 0.0), (0.5, 0.2, 0.2, 0.1)])
def test_split_bad_fractions(digits, fractions):
    with pytest.raises(ValueError, match="fractions"):
        split_dataset(digits, fractions)

# -----------------------------------------------------------------------------
# hide_labels

def test_hide_labels(digits):
    y = digits.y.clone()
    out = hide_labels(y, 0.1, seed=0)
    assert torch.equal(y, digits.y)  # original untouched
    assert out.shape == y.shape and out.dtype == y.dtype
    kept = out != UNLABELLED
    assert torch.equal(out[kept], y[kept])  # kept labels are the true ones
    for c in range(10):
        n = (y == c).sum().item()
        assert (out == c).sum().item() == max(1, round(0.1 * n))
    assert torch.equal(hide_labels(y, 0.1, seed=0), out)
    assert not torch.equal(hide_labels(y, 0.1, seed=1), out)


def test_hide_labels_at_least_one_per_class():
    y = torch.tensor([0] * 50 + [1] * 3 + [2])
    out = hide_labels(y, 0.01)
    assert [(out == c).sum().item() for c in range(3)] == [1, 1, 1]
    assert (out == UNLABELLED).sum().item() == 51


def test_hide_labels_keep_all_and_bad_fraction():
    y = torch.arange(10)
    assert torch.equal(hide_labels(y, 1.0), y)
    for bad in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="keep_fraction"):
            hide_labels(y, bad)

# -----------------------------------------------------------------------------
# make_loader

def _order(loader) -> list:
    return [x.flatten().tolist() for x, *_ in loader]


def test_make_loader_reproducible():
    x = torch.arange(50, dtype=torch.float32)
    y = torch.arange(50)
    logits = torch.randn(50, 10)
    a = make_loader((x, y, logits), batch_size=8, seed=5)
    b = make_loader((x, y, logits), batch_size=8, seed=5)
    assert _order(a) == _order(b)
    assert _order(a) != list(map(list, torch.arange(50.).split(8)))  # really shuffled
    assert _order(make_loader((x, y), batch_size=8, seed=6)) != _order(b)
    xb, yb, lb = next(iter(a))
    assert torch.equal(xb.long(), yb) and torch.equal(lb, logits[yb])  # the tensors stay aligned


def test_make_loader_keeps_global_rng():
    x = torch.arange(20, dtype=torch.float32)
    state = torch.random.get_rng_state()
    for shuffle in (True, False):
        for _ in make_loader((x,), batch_size=4, shuffle=shuffle):
            pass
    assert torch.equal(torch.random.get_rng_state(), state)


def test_make_loader_split_and_no_shuffle(digits):
    loader = make_loader(digits, batch_size=100, shuffle=False)
    xb, yb = next(iter(loader))
    assert torch.equal(xb, digits.x[:100]) and torch.equal(yb, digits.y[:100])
    assert len(loader) == 18


def test_make_loader_mismatched():
    with pytest.raises(ValueError, match=r"\[10, 9\]"):
        make_loader((torch.zeros(10), torch.zeros(9)))

# -----------------------------------------------------------------------------
# data_dir

def test_data_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("KDLIB_DATA_DIR", str(tmp_path / "here"))
    assert data.data_dir() == tmp_path / "here"
    assert not (tmp_path / "here").exists()  # not created


def test_data_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("KDLIB_DATA_DIR", raising=False)
    monkeypatch.setattr(data.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.data_dir() == tmp_path / "kdlib"
    monkeypatch.setattr(data.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert data.data_dir() == tmp_path / "local" / "kdlib"
