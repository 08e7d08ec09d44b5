"""hwsim.load_data: embedded digits, MNIST IDX files (gz and raw), npz files, splits and errors."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from hwsim._data import MNIST_FILES, load_data, read_idx
from tests.conftest import SHARED


def _idx_bytes(array: np.ndarray) -> bytes:
    header = (struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
              + b"".join(struct.pack(">I", d) for d in array.shape))
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(directory, part: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stem, arr in zip(MNIST_FILES[part], (images, labels)):
        raw = _idx_bytes(arr)
        if gz:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / stem).write_bytes(raw)


def _fake_mnist(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def test_digits_default_split_is_seeded_1437_360():
    d = load_data()
    assert d.name == "digits" and d.num_classes == 10 and d.input_shape == (1, 8, 8)
    assert d.X_train.shape == (1437, 1, 8, 8) and d.X_test.shape == (360, 1, 8, 8)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.X_train.min() == 0.0 and d.X_train.max() == 1.0
    # pixel counts 0..16 scaled by 1/16: every value is a multiple of 1/16
    assert np.array_equal(d.X_train * 16, np.round(d.X_train * 16))
    again, other = load_data("digits", seed=0), load_data("digits", seed=1)
    assert np.array_equal(d.X_test, again.X_test) and not np.array_equal(d.y_test, other.y_test)
    # train and test partition the 1,797 images
    all_sorted = np.sort(np.concatenate([d.y_train, d.y_test]))
    assert np.array_equal(all_sorted, np.sort(np.concatenate([other.y_train, other.y_test])))


def test_digits_flatten_and_int_split():
    d = load_data("digits", split=1000, flatten=True)
    assert d.X_train.shape == (1000, 64) and d.X_test.shape == (797, 64) and d.input_shape == (64,)
    nchw = load_data("digits", split=1000)
    assert np.array_equal(d.X_train, nchw.X_train.reshape(1000, 64))
    assert d.to_dict() == {"name": "digits", "n_train": 1000, "n_test": 797, "input_shape": [64],
                           "num_classes": 10, "split": 1000, "split_seed": 0}


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_t10k_only_first_n_train(tmp_path, gz):
    images, labels = _fake_mnist(50, 0)
    _write_mnist(tmp_path, "t10k", images, labels, gz)
    d = load_data(f"mnist:{tmp_path}", split=40)
    assert d.X_train.shape == (40, 1, 28, 28) and d.X_test.shape == (10, 1, 28, 28)
    np.testing.assert_array_equal(d.X_test[:, 0], images[40:].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(d.y_train, labels[:40])
    assert d.X_train.max() <= 1.0


def test_mnist_train_and_t10k_official_split(tmp_path):
    tr_x, tr_y = _fake_mnist(30, 1)
    te_x, te_y = _fake_mnist(12, 2)
    _write_mnist(tmp_path, "train", tr_x, tr_y, gz=True)
    _write_mnist(tmp_path, "t10k", te_x, te_y, gz=False)
    d = load_data(f"mnist:{tmp_path}", flatten=True)
    assert d.X_train.shape == (30, 784) and d.X_test.shape == (12, 784)
    np.testing.assert_array_equal(d.y_test, te_y)
    pooled = load_data(f"mnist:{tmp_path}", split=35)  # pool: train then t10k
    np.testing.assert_array_equal(pooled.y_test, te_y[5:])


def test_mnist_missing_files_name_path_and_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte") as info:
        load_data(f"mnist:{tmp_path}")
    assert str(tmp_path) in str(info.value)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_data(f"mnist:{tmp_path / 'nope'}")
    images, labels = _fake_mnist(5, 0)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(images))
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_data(f"mnist:{tmp_path}")


def test_idx_validation(tmp_path):
    images, labels = _fake_mnist(5, 0)
    path = tmp_path / "x"
    path.write_bytes(_idx_bytes(labels))
    with pytest.raises(ValueError, match="magic"):
        read_idx(path, ndim=3)
    path.write_bytes(_idx_bytes(images)[:-3])
    with pytest.raises(ValueError, match="header says"):
        read_idx(path, ndim=3)
    path.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path, ndim=1)
    _write_mnist(tmp_path / "m", "t10k", images, np.arange(4, dtype=np.uint8), gz=False)
    with pytest.raises(ValueError, match="5 images but"):
        load_data(f"mnist:{tmp_path / 'm'}")
    _write_mnist(tmp_path / "l", "t10k", images, np.full(5, 12, np.uint8), gz=False)
    with pytest.raises(ValueError, match="labels must be 0..9"):
        load_data(f"mnist:{tmp_path / 'l'}")


def test_npz(tmp_path):
    X = np.arange(40 * 3 * 4, dtype=np.uint8).reshape(40, 3, 4)
    y = np.arange(40) % 3
    np.savez(tmp_path / "d.npz", X=X, y=y)
    d = load_data(f"npz:{tmp_path / 'd.npz'}", split=30)
    assert d.input_shape == (1, 3, 4) and d.num_classes == 3
    np.testing.assert_array_equal(d.X_train[:, 0], X[:30].astype(np.float32) / np.float32(255))
    np.savez(tmp_path / "f.npz", X=np.ones((10, 5), np.float64) * 3, y=np.zeros(10, np.int32))
    f = load_data(f"npz:{tmp_path / 'f.npz'}")
    assert f.X_train.shape == (8, 5) and f.X_train.dtype == np.float32 and f.X_train.max() == 3.0


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4, int))
    with pytest.raises(ValueError, match="pickle"):
        load_data(f"npz:{tmp_path / 'obj.npz'}")
    np.savez(tmp_path / "noy.npz", X=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="'X' .* and 'y'"):
        load_data(f"npz:{tmp_path / 'noy.npz'}")
    np.savez(tmp_path / "bady.npz", X=np.zeros((4, 2)), y=np.zeros(3, int))
    with pytest.raises(ValueError, match="X must be"):
        load_data(f"npz:{tmp_path / 'bady.npz'}")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not an \.npz archive \(a file starting with b'not a '\)") as info:
        load_data(f"npz:{tmp_path / 'junk.npz'}")
    assert "pickle" not in str(info.value)  # plain text is not "pickled data"
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "bady.npz").read_bytes()[:40])
    with pytest.raises(ValueError, match="not a readable"):
        load_data(f"npz:{tmp_path / 'trunc.npz'}")
    X = np.ones((6, 3), np.float32)
    X[4, 1] = np.inf
    np.savez(tmp_path / "inf.npz", X=X, y=np.zeros(6, int))
    with pytest.raises(ValueError, match=r"inf.npz: bad data: X holds inf at index \(4, 1\)"):
        load_data(f"npz:{tmp_path / 'inf.npz'}")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_data(f"npz:{tmp_path / 'missing.npz'}")


@pytest.mark.parametrize("spec", ["", "digitz", "mnist:", "npz", "digits:extra", "csv:x"])
def test_bad_spec(spec):
    with pytest.raises(ValueError, match="data spec"):
        load_data(spec)


@pytest.mark.parametrize("split", [0, 1797, -5])
def test_bad_split(split):
    with pytest.raises(ValueError, match=r"split must be in \[1, 1796\]"):
        load_data("digits", split=split)
    with pytest.raises(TypeError, match="split must be an int"):
        load_data("digits", split=0.5)


@pytest.mark.skipif(not (SHARED / "data" / "mnist").is_dir(), reason="shared MNIST data not present")
def test_shared_mnist_protocol_split():
    d = load_data(f"mnist:{SHARED / 'data' / 'mnist'}", split=8000, flatten=True)
    assert d.X_train.shape == (8000, 784) and d.X_test.shape == (2000, 784)
    assert set(np.unique(d.y_test)) == set(range(10))
