"""Inverted dropout with counter-based, reproducible masks."""
from __future__ import annotations

from fixedpoint.rng import uniforms

from .._xp import get_array_module
from ._base import Layer


class Dropout(Layer):
    """Training: ``y = Q_activation(x * m / (1 - p))`` with ``m = [u >= p]``; inference: ``y = x``.

    ``u`` are ``fixedpoint.rng.uniforms(seed, 0, x.size)`` (row-major over ``x``) with the
    seed of the quantizers' rule in ``hwsim._precision``: ``seed = step_seed(base, step)``,
    ``base = role_base(precision.seed, index, "dropout")`` (role code 7, slot 0), cached per layer
    like the quantizers' bases (`Layer.stream_seed`). So the mask is a function of
    (``precision.seed``, layer index, training step) alone: the same on every call at one step,
    new at every step and in every layer, and a run resumed from a checkpoint draws the same masks.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {p!r}")
        self.name = "dropout"
        self.p = float(p)

    def forward(self, x, *, training: bool = False):
        if not training or self.p == 0.0:
            self._cache = (None, None)
            return x
        xp = get_array_module(x)
        u = xp.asarray(uniforms(self.stream_seed("dropout"), 0, x.size).reshape(x.shape))
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
