"""Reshape and Flatten (no arithmetic: the output stays on the input's grid)."""
from __future__ import annotations

import math

from ._base import Layer


class Reshape(Layer):
    """Reshape each example to ``shape`` (without the batch axis; one entry may be -1)."""

    passes_grid = True

    def __init__(self, shape: tuple):
        super().__init__()
        self.name = "reshape"
        self.shape = tuple(int(s) for s in shape)

    def output_shape(self, input_shape: tuple) -> tuple:
        n = math.prod(input_shape)
        known = math.prod(s for s in self.shape if s != -1)
        out = tuple(n // known if s == -1 else s for s in self.shape)
        if math.prod(out) != n:
            raise ValueError(f"cannot reshape input {tuple(input_shape)} to {self.shape}")
        return out

    def forward(self, x, *, training: bool = False):
        if training:
            self._in_shape = x.shape
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, dy):
        return dy.reshape(self._in_shape)


class Flatten(Reshape):
    """(N, ...) -> (N, features)."""

    def __init__(self):
        super().__init__((-1,))
        self.name = "flatten"
