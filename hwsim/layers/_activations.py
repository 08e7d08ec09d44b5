"""Elementwise activations; the output is quantized to the ``activation`` role."""
from __future__ import annotations

from .._xp import get_array_module
from ._base import Layer


def _relu(xp, x):
    y = xp.maximum(x, 0)
    return y, lambda: x > 0


def _hard_tanh(xp, x):
    return xp.clip(x, -1, 1), lambda: (x >= -1) & (x <= 1)


def _hard_sigmoid(xp, x):
    return xp.clip((x + 1) * 0.5, 0, 1), lambda: ((x >= -1) & (x <= 1)) * x.dtype.type(0.5)


def _tanh(xp, x):
    y = xp.tanh(x)
    return y, lambda: 1 - y * y


def _sigmoid(xp, x):
    y = 0.5 * (1 + xp.tanh(0.5 * x))  # overflow-free logistic
    return y, lambda: y * (1 - y)


def _sign(xp, x):
    # sign(0) = +1 as fixedpoint.binarize; straight-through derivative 1 on |x| <= 1 (BNN).
    return xp.where(x >= 0, x.dtype.type(1), x.dtype.type(-1)), lambda: (x >= -1) & (x <= 1)


#: kind -> f(xp, x) returning (y, derivative thunk) — derivatives are of the float function.
KINDS = {"relu": _relu, "hard_tanh": _hard_tanh, "hard_sigmoid": _hard_sigmoid, "tanh": _tanh,
         "sigmoid": _sigmoid, "sign": _sign}


class Activation(Layer):
    """``y = Q_activation(f(x))`` for ``kind`` in `KINDS`.

    relu maps a grid onto itself without growing, so when the input is already on this layer's
    activation grid (``quantize_input`` False) its output is not quantized again.
    """

    def __init__(self, kind: str):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"bad activation {kind!r}: allowed {', '.join(KINDS)}")
        self.kind = self.name = kind
        self._f = KINDS[kind]

    def forward(self, x, *, training: bool = False):
        y, deriv = self._f(get_array_module(x), x)
        mask = None
        if self.kind != "relu" or self.quantize_input:
            y, mask = self.quantize_masked("activation", y, 2)
        if training:
            self._cache = (deriv, mask)
        return y

    def backward(self, dy):
        deriv, mask = self._cache
        dx = dy * deriv()
        if mask is not None:
            dx *= mask
        return dx
