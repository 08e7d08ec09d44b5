"""Batch normalisation over the batch (and spatial) axes."""
from __future__ import annotations

import numpy as np

from .._xp import get_array_module
from ._base import Layer


class BatchNorm(Layer):
    """``y = Q_activation(gamma * (x - mean) / sqrt(var + eps) + beta)`` per feature/channel.

    Input (N, n) or (N, n, H, W). Training uses the batch statistics (biased variance) and updates
    ``running_mean``/``running_var`` with ``momentum``; inference uses the running values. The
    normalisation is computed in float (gamma, beta are not passed through ``weight``; they are
    stored through ``update`` like every parameter); the backward error is quantized to ``error``.
    """

    def __init__(self, n: int, eps: float = 1e-5, momentum: float = 0.1, *, dtype=np.float32):
        super().__init__()
        if int(n) != n or n < 1:
            raise ValueError(f"BatchNorm n must be an integer >= 1, got {n!r}")
        if not 0 < momentum <= 1 or not eps > 0:
            raise ValueError(f"BatchNorm needs eps > 0 and momentum in (0, 1], got {eps}, {momentum}")
        self.name = "batchnorm"
        self.n, self.eps, self.momentum = int(n), float(eps), float(momentum)
        self.gamma = np.ones(n, dtype=dtype)
        self.beta = np.zeros(n, dtype=dtype)
        self.dgamma, self.dbeta = np.zeros_like(self.gamma), np.zeros_like(self.beta)
        self.running_mean = np.zeros(n, dtype=dtype)
        self.running_var = np.ones(n, dtype=dtype)

    def params(self) -> dict:
        return {"gamma": self.gamma, "beta": self.beta}

    def grads(self) -> dict:
        return {"gamma": self.dgamma, "beta": self.dbeta}

    def buffers(self) -> dict:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) not in (1, 3) or input_shape[0] != self.n:
            raise ValueError(f"BatchNorm({self.n}) needs input shape ({self.n},) or ({self.n}, H, W), got "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)

    def _axes_shape(self, x):
        return ((0,), (1, -1)) if x.ndim == 2 else ((0, 2, 3), (1, -1, 1, 1))

    def forward(self, x, *, training: bool = False):
        axes, shape = self._axes_shape(x)
        if training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = self.momentum
            count = x.size // self.n
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + m * var * (count / max(count - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        inv = 1.0 / get_array_module(x).sqrt(var + self.eps)
        xhat = (x - mean.reshape(shape)) * inv.reshape(shape)
        y = xhat * self.gamma.reshape(shape) + self.beta.reshape(shape)
        y, mask = self.quantize_masked("activation", y.astype(x.dtype, copy=False), 2)
        if training:
            self._cache = (xhat, inv, mask)
        return y

    def backward(self, dy):
        xhat, inv, mask = self._cache
        axes, shape = self._axes_shape(dy)
        if mask is not None:
            dy = dy * mask
        e = self.quantize("error", dy, 0)
        batch = e.shape[0]
        self.dbeta = self.quantize("grad", e.sum(axis=axes) / batch, 1)
        self.dgamma = self.quantize("grad", (e * xhat).sum(axis=axes) / batch, 0)
        g = e * self.gamma.reshape(shape)
        dx = (g - g.mean(axis=axes).reshape(shape)
              - xhat * (g * xhat).mean(axis=axes).reshape(shape)) * inv.reshape(shape)
        return dx.astype(dy.dtype, copy=False)
