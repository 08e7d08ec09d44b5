"""A small linearly separable classification task for scheme and compression tests."""
from __future__ import annotations

import numpy as np

from hwsim import Dataset


def synthetic_dataset(features: int, n: int, n_train: int, classes: int = 3, seed: int = 0) -> Dataset:
    """``n`` Gaussian examples of ``features`` values labelled by the argmax of a random linear map;
    the first ``n_train`` train, the rest test."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features)).astype(np.float32)
    y = (X @ rng.normal(size=(features, classes))).argmax(axis=1)
    return Dataset(X[:n_train], y[:n_train], X[n_train:], y[n_train:], (features,), classes, "synthetic")
