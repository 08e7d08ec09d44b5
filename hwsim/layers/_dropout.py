"""Inverted dropout with counter-based, reproducible masks."""
from __future__ import annotations

from fixedpoint._counter_rng import uniforms

from .._precision import role_base, step_seed
from .._xp import get_array_module
from ._base import Layer


class Dropout(Layer):
    """Training: ``y = Q_activation(x * m / (1 - p))`` with ``m = [u >= p]``; inference: ``y = x``.

    ``u`` are the uniforms of ``fixedpoint._counter_rng`` with seed
    ``step_seed(role_base(self.seed, index, "dropout"), step)`` (``self.seed`` is set by the model
    from the training seed), so masks are reproducible and a resumed run draws the same masks.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {p!r}")
        self.name = "dropout"
        self.p = float(p)
        self.seed = 0

    def forward(self, x, *, training: bool = False):
        if not training or self.p == 0.0:
            self._cache = (None, None)
            return x
        xp = get_array_module(x)
        seed = step_seed(role_base(self.seed, self.index, "dropout"), self.step)
        u = xp.asarray(uniforms(seed, 0, x.size).reshape(x.shape))
        keep = (u >= self.p).astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        y, mask = self.quantize_masked("activation", x * keep, 2)
        self._cache = (keep, mask)
        return y

    def backward(self, dy):
        keep, mask = self._cache
        if keep is None:
            return dy
        dx = dy * keep
        if mask is not None:
            dx *= mask
        return dx
