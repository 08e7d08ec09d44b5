"""Elementwise activations; the output is quantized to the ``activation`` role."""
from __future__ import annotations

import numpy as np

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

#: kind -> (lo, hi) -> the values other than its input that f outputs for some grid value in
#: [lo, hi]: relu 0 (for a negative value), hard_tanh ±1 (for values beyond ±1), sign +1 and -1.
#: The other kinds output values between grid points: hard_sigmoid's (v + 1) / 2 needs one more
#: fraction bit than v, tanh and sigmoid are transcendental.
_NEW_VALUES = {
    "relu": lambda lo, hi: (0.0,) if lo < 0 else (),
    "hard_tanh": lambda lo, hi: (1.0,) * (hi > 1) + (-1.0,) * (lo < -1),
    "sign": lambda lo, hi: (1.0,) * (hi >= 0) + (-1.0,) * (lo < 0),
}
_BIG = 2.0**100  # beyond every grid's range: a saturating quantizer maps ±_BIG to its extremes


def maps_grid(kind: str, q) -> bool:
    """True when activation ``kind`` maps every point of quantizer ``q``'s grid to a point of that
    grid, so that an on-grid input needs no quantization after ``f``; False for ``q`` None.

    The grid's range [lo, hi] is ``q.fmt``'s (`RoleFormat`), else ``q(±2**100)``; a value ``c`` is
    a grid point when ``q([lo, c, hi]) == [lo, c, hi]`` (so a per-tensor scaled quantizer, TWN,
    keeps 0 but not ±1). Fixed and float formats: relu always; hard_tanh unless 1 (or -1) lies
    inside the range and off the grid (e.g. ``s8.-1``); sign when ±1 (-1 only for signed formats)
    are grid points (not ``s4.5``, whose range is ±0.25); hard_sigmoid, tanh, sigmoid never.
    Binary {-1, +1}: hard_tanh and sign, not relu.
    """
    rule = _NEW_VALUES.get(kind)
    if q is None or rule is None:
        return False
    fmt = getattr(q, "fmt", None)
    if fmt is not None:
        lo, hi = float(fmt.min), float(fmt.max)
    else:
        lo, hi = (float(v) for v in q(np.array([-_BIG, _BIG]), seed=0, offset=0))
    probe = np.array([lo, *rule(lo, hi), hi])
    return bool(np.array_equal(q(probe, seed=0, offset=0), probe))


class Activation(Layer):
    """``y = Q_activation(f(x))`` for ``kind`` in `KINDS`.

    When the input already lies on this layer's activation grid (``quantize_input`` False) and
    ``f`` maps that grid into itself (`maps_grid`: e.g. relu, or hard_tanh on ``s8.4``), the
    output lies on the input's grid (`passes_grid`) and is not quantized again: the same values
    as quantizing it, without the work.
    """

    def __init__(self, kind: str):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"bad activation {kind!r}: allowed {', '.join(KINDS)}")
        self.kind = self.name = kind
        self._f = KINDS[kind]
        self._maps = (None, False)  # (activation quantizer, maps_grid(kind, it)) last computed

    @property
    def maps_grid(self) -> bool:
        """`maps_grid` of this kind for the activation quantizer in force."""
        q = self.precision.activation
        if self._maps[0] is not q:
            self._maps = (q, maps_grid(self.kind, q))
        return self._maps[1]

    @property
    def passes_grid(self) -> bool:
        """True when the output lies on the input's grid unquantized: the input is on the
        activation grid (``quantize_input`` False) and `maps_grid`."""
        return not self.quantize_input and self.maps_grid

    def forward(self, x, *, training: bool = False):
        y, deriv = self._f(get_array_module(x), x)
        mask = None
        if not self.passes_grid:
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
