"""Datasets: the embedded 8x8 digits, MNIST IDX files and user ``.npz`` files.

Data specs (``load_data(spec)``, ``hwsim train --data SPEC``):

``digits`` (default)
    The embedded UCI 8x8 handwritten digits (1,797 images, ``hwsim/data/digits.npz``, CC BY 4.0).
    Pixels are counts 0..16, scaled to float32 in [0, 1] (``x / 16``).
``mnist:DIR``
    The standard IDX files in directory ``DIR``: ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each gzipped
    (``.gz``) or raw; at least one images/labels pair must be there. Pixels 0..255 scaled to [0, 1]
    (``x / 255``). Magic numbers (0x00000803 images, 0x00000801 labels), sizes and labels are checked.
``npz:PATH``
    A numpy ``.npz`` with arrays ``X`` (N, ...) and ``y`` (N,) of integer class labels 0..C-1, read with
    ``allow_pickle=False``. ``uint8`` images are scaled by 1/255; other dtypes are cast to float32 as is.
    A floating-point ``y`` of shape (N,) or (N, out) makes a regression dataset (``task ==
    "regression"``): targets float32 of shape (N, out) (a 1-D ``y`` becomes one column), finite,
    ``num_classes`` = out (the model's output width).

Layout: images are NCHW float32 (``(N, 1, 8, 8)`` for digits, ``(N, 1, 28, 28)`` for MNIST; a 3-D
``X`` in an npz gets a channel axis, a 2-D one stays ``(N, features)``). ``flatten=True`` (what the CLI
uses for ``mlp:`` models) reshapes every example to a vector: ``(N, C*H*W)``. Labels are int64.

Splits (deterministic):

``split=n`` (int)
    The first ``n`` examples in file order train, the rest test (no shuffling). For ``mnist:`` the
    pool is the train files followed by the t10k files, whichever are present; with only the t10k
    files and ``split=8000`` this is the usual "first 8,000 train, last 2,000 test" protocol.
``split=None``
    ``mnist:`` with both the train and t10k pairs: the official 60,000/10,000 split. Otherwise a
    seeded permutation (``numpy.random.default_rng(seed)``): the last ``ceil(0.2 * N)`` permuted
    examples test, the others train — for digits 1,437 train / 360 test.
"""
from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "load_data", "MNIST_FILES"]

_DIGITS_PATH = Path(__file__).with_name("data") / "digits.npz"
#: Test fraction of the seeded split used when ``split`` is None.
TEST_FRACTION = 0.2
#: IDX file stems per MNIST part (each may carry a ``.gz`` suffix).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UBYTE = 0x08
#: First bytes of a zip archive (an .npz): a local file header or, for an empty archive, the end record.
_NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class Dataset:
    """A train/test split ready for training.

    ``X_train``/``X_test`` float32 (examples first, NCHW images or (N, features) vectors);
    ``y_train``/``y_test`` int64 class indices in ``0 .. num_classes-1``; ``input_shape`` the shape of
    one example (no batch axis); ``name`` the spec it was loaded from (recorded in run metadata);
    ``split`` and ``split_seed`` the ``load_data`` arguments that drew the split (None when unknown),
    so that a run directory can rebuild the same test set.
    ``task``: ``"classification"``, or ``"regression"`` (float32 targets (N, out), ``num_classes`` = out).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    name: str
    split: int | None = None
    split_seed: int | None = None
    task: str = "classification"

    def flattened(self) -> "Dataset":
        """The same data with every example reshaped to a vector of ``prod(input_shape)`` features."""
        n_features = int(np.prod(self.input_shape))
        return replace(
            self,
            X_train=self.X_train.reshape(len(self.X_train), n_features),
            X_test=self.X_test.reshape(len(self.X_test), n_features),
            input_shape=(n_features,),
        )

    def to_dict(self) -> dict:
        """JSON-ready description (for run metadata): spec, sizes, shape, classes."""
        return {
            "name": self.name,
            "n_train": int(len(self.y_train)),
            "n_test": int(len(self.y_test)),
            "input_shape": list(self.input_shape),
            "num_classes": int(self.num_classes),
            "split": self.split,
            "split_seed": self.split_seed,
            **({"task": self.task} if self.task != "classification" else {}),
        }


def load_data(spec: str = "digits", split: int | None = None, seed: int = 0, *,
              flatten: bool = False) -> Dataset:
    """Load the dataset named by ``spec`` and split it (see the module docstring for specs and splits).

    Raises ``ValueError`` for an unknown spec, a bad split or malformed files and
    ``FileNotFoundError`` naming the path and the expected file names when files are missing.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"data spec must be a non-empty string, got {spec!r}")
    kind, _, arg = spec.partition(":")
    if kind == "digits" and not arg:
        X, y = _load_digits()
        parts = None
    elif kind == "mnist" and arg:
        X, y, parts = _load_mnist_dir(Path(arg).expanduser())
    elif kind == "npz" and arg:
        X, y = _load_npz(Path(arg).expanduser())
        parts = None
    else:
        raise ValueError(
            f"unknown data spec {spec!r}: expected 'digits', 'mnist:DIR' or 'npz:PATH'")
    ds = _split(X, y, split, seed, parts, spec)
    return ds.flattened() if flatten else ds


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    with np.load(_DIGITS_PATH, allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    X = (images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    return X, labels.astype(np.int64)


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"npz data file not found: {path} (expected an .npz with arrays X and y)")
    with path.open("rb") as fh:
        head = fh.read(6)
    if not head.startswith(_NPZ_MAGIC):
        what = "an empty file" if not head else "a single .npy array" if head == b"\x93NUMPY" else \
            f"a file starting with {head!r}"
        raise ValueError(f"{path}: not an .npz archive ({what}); npz: data must be an .npz (zip) file with "
                         f"arrays X and y, as written by numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a single .npy array, not an .npz archive")
            names = set(f.files)
            X, y = (f["X"], f["y"]) if {"X", "y"} <= names else (None, None)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz file without pickles ({exc})") from exc
    if X is None:
        raise ValueError(f"{path}: an npz dataset needs arrays 'X' (N, ...) and 'y' (N,), "
                         f"found {sorted(names)}")
    regression = np.issubdtype(y.dtype, np.floating)
    if X.ndim < 2 or y.ndim not in ((1, 2) if regression else (1,)) or len(X) != len(y):
        want = "(N,) or (N, out) float targets" if regression else "(N,)"
        raise ValueError(f"{path}: X must be (N, ...) with N >= 1 and y {want}, got X{X.shape} y{y.shape}")
    if regression:
        if not np.isfinite(y).all() or y.shape[-1] == 0:
            raise ValueError(f"{path}: regression targets y must be finite with at least one column")
    elif not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"{path}: y must hold integer class labels >= 0 (or float regression targets), "
                         f"got dtype {y.dtype}")
    if X.dtype == object or not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{path}: X must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float32) / np.float32(255.0) if X.dtype == np.uint8 else X.astype(np.float32)
    if not np.isfinite(X).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
        bad = "NaN" if np.isnan(X[first]) else "inf"
        raise ValueError(f"{path}: bad data: X holds {bad} at index {first} (example {first[0]}); "
                         f"inputs must be finite")
    if X.ndim == 3:
        X = X[:, None, :, :]
    if regression:
        return X, y.astype(np.float32).reshape(len(y), -1)
    return X, y.astype(np.int64)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _load_mnist_dir(directory: Path) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Concatenated (train, t10k) examples of the pairs present and the size of each part."""
    expected = ", ".join(f"{s}[.gz]" for pair in MNIST_FILES.values() for s in pair)
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST directory not found: {directory} (expected files {expected})")
    Xs, ys, parts = [], [], {}
    for part, (img_stem, lab_stem) in MNIST_FILES.items():
        img, lab = _find_idx(directory, img_stem), _find_idx(directory, lab_stem)
        if img is None and lab is None:
            continue
        if img is None or lab is None:
            missing = img_stem if img is None else lab_stem
            raise FileNotFoundError(f"{directory}: found half of the MNIST {part} pair, missing "
                                    f"{missing}[.gz] (expected files {expected})")
        images, labels = read_idx(img, ndim=3), read_idx(lab, ndim=1)
        if len(images) != len(labels):
            raise ValueError(f"{img} has {len(images)} images but {lab} has {len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{lab}: MNIST labels must be 0..9, found {int(labels.max())}")
        Xs.append((images.astype(np.float32) / np.float32(255.0))[:, None, :, :])
        ys.append(labels.astype(np.int64))
        parts[part] = len(labels)
    if not parts:
        raise FileNotFoundError(f"no MNIST files in {directory}: expected {expected}")
    return np.concatenate(Xs), np.concatenate(ys), parts


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or raw, detected by content) with ``ndim`` axes."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt gzip stream ({exc})") from exc
    expected_magic = (_IDX_UBYTE << 8) | ndim
    magic = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 or magic != expected_magic:
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                         f"(unsigned bytes, {ndim} dimension(s))")
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    header = 4 + 4 * ndim
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != size:
        raise ValueError(f"{path}: header says {dims} = {size} bytes of data, file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _split(X: np.ndarray, y: np.ndarray, split: int | None, seed: int,
           parts: dict[str, int] | None, name: str) -> Dataset:
    n = len(y)
    if split is None:
        if parts is not None and set(parts) == set(MNIST_FILES):
            train_idx, test_idx = np.arange(parts["train"]), np.arange(parts["train"], n)
        else:
            perm = np.random.default_rng(seed).permutation(n)
            n_test = int(np.ceil(TEST_FRACTION * n))
            train_idx, test_idx = perm[: n - n_test], perm[n - n_test:]
    else:
        if isinstance(split, bool) or not isinstance(split, (int, np.integer)):
            raise TypeError(f"split must be an int (number of training examples) or None, got {split!r}")
        if not 1 <= split < n:
            raise ValueError(f"split must be in [1, {n - 1}] for {name!r} ({n} examples), got {split}")
        train_idx, test_idx = np.arange(split), np.arange(split, n)
    if len(test_idx) == 0 or len(train_idx) == 0:
        raise ValueError(f"{name!r}: the split leaves an empty train or test set ({n} examples)")
    regression = y.dtype.kind == "f"
    num_classes = int(y.shape[1]) if regression else int(y.max()) + 1
    return Dataset(
        X_train=np.ascontiguousarray(X[train_idx]), y_train=y[train_idx],
        X_test=np.ascontiguousarray(X[test_idx]), y_test=y[test_idx],
        input_shape=tuple(int(d) for d in X.shape[1:]), num_classes=num_classes, name=name,
        split=None if split is None else int(split), split_seed=int(seed),
        task="regression" if regression else "classification",
    )
