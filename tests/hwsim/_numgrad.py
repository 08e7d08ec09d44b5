"""Central finite differences for gradient tests."""
from __future__ import annotations

import numpy as np


def numerical_gradient(loss, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d loss() / d arr by central differences, perturbing ``arr`` in place (restored after)."""
    num = np.zeros_like(arr)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + eps
        up = loss()
        arr[i] = old - eps
        num[i] = (up - loss()) / (2 * eps)
        arr[i] = old
    return num
