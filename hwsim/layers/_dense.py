"""Fully connected layer ``y = x W + b`` with the quantization points of Courbariaux et al. 2015."""
from __future__ import annotations

import numpy as np

from ._base import Layer, init_rng
from ._product import product

#: Default of ``in_mask``: quantize the input in `WeightedLayer._forward_matrix`.
QUANTIZE_INPUT = object()


def combine_masks(*masks):
    """The product of straight-through masks (None = all ones)."""
    out = None
    for m in masks:
        if m is not None:
            out = m if out is None else out * m
    return out


class WeightedLayer(Layer):
    """Shared forward/backward of Dense and Conv2d around one matrix product ``X2 @ W2``.

    Forward: input -> ``activation`` (when not already on the grid), ``W`` and ``b`` -> ``weight``,
    ``s = x W + b`` accumulated at ``acc``, then the sums -> ``activation``. Backward: the incoming
    error times the straight-through masks -> ``error``; ``dW = x^T e / N`` and ``db`` -> ``grad``
    (times the weight quantizer's mask); ``dx = e W^T`` (at ``acc`` in exact mode).
    """

    def _forward_matrix(self, x2, training: bool, *, in_mask=QUANTIZE_INPUT, product_of=None):
        """``x2`` (M, K) -> quantized sums (M, F); caches what backward needs.

        ``in_mask``: pass the straight-through mask (or None) of an ``x2`` the caller already put on the
        activation grid. ``product_of(w2)``: computes ``x2 @ w2`` another way (the optics); backward
        stays the gradient of the matrix product (straight-through)."""
        if in_mask is not QUANTIZE_INPUT:
            m_in = in_mask
        else:
            x2, m_in = self.quantize_masked("activation", x2, 0) if self.quantize_input else (x2, None)
        w2, m_w = self.quantize_masked("weight", self._w_matrix(), 0)
        b = self.quantize("weight", self.b, 1)
        s = product(self, x2, w2, "activation", "weight") if product_of is None else product_of(w2)
        s += b
        s, m_acc = self.quantize_masked("acc", s, 1)
        s, m_act = self.quantize_masked("activation", s, 1)
        if s.dtype != x2.dtype:
            s = s.astype(x2.dtype)
        if training:
            self._cache = (x2, w2, m_in, m_w, combine_masks(m_acc, m_act))
        return s

    def _backward_matrix(self, dy2, batch: int, input_grad: bool = True):
        """``dy2`` (M, F) -> ``dx2`` (M, K); sets ``dW`` and ``db`` (mean-loss gradients).
        ``input_grad=False``: only ``dW`` and ``db`` (the same bits), no ``e W^T`` product; returns
        None (a first layer, whose input needs no gradient: `hwsim.torch` asks for this)."""
        x2, w2, m_in, m_w, m_out = self._cache
        if m_out is not None:
            dy2 = dy2 * m_out
        e = self.quantize("error", dy2, 0)
        dw = product(self, x2.T, e, "activation", "error")
        dw *= 1.0 / batch
        if m_w is not None:
            dw *= m_w
        db = e.sum(axis=0) * (1.0 / batch)
        dw = self.quantize("grad", dw.astype(self.W.dtype, copy=False), 0)
        self.db = self.quantize("grad", db.astype(self.b.dtype, copy=False), 1)
        self._set_dw(dw)
        if not input_grad:
            return None
        dx = product(self, e, w2.T, "error", "weight")
        if dx.dtype != dy2.dtype:
            dx = dx.astype(dy2.dtype)
        if m_in is not None:
            dx *= m_in
        return dx

    def params(self) -> dict:
        return {"W": self.W, "b": self.b}

    def grads(self) -> dict:
        return {"W": self.dW, "b": self.db}


class Dense(WeightedLayer):
    """``y = x W + b``; ``W`` shape (in_features, out_features), ``b`` (out_features,).

    Initialisation: Glorot uniform, ``W ~ U(-a, a)``, ``a = sqrt(6 / (in + out))``, ``b = 0``,
    from ``numpy.random.default_rng(seed)``.
    """

    def __init__(self, in_features: int, out_features: int, *, seed=0, dtype=np.float32):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"Dense needs in_features, out_features >= 1, got {in_features}, {out_features}")
        self.name = "dense"
        self.in_features, self.out_features = int(in_features), int(out_features)
        a = np.sqrt(6.0 / (in_features + out_features))
        self.W = init_rng(seed).uniform(-a, a, (in_features, out_features)).astype(dtype)
        self.b = np.zeros(out_features, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)

    def _w_matrix(self):
        return self.W

    def _set_dw(self, dw) -> None:
        self.dW = dw

    def output_shape(self, input_shape: tuple) -> tuple:
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Dense({self.in_features}, {self.out_features}) got input shape "
                             f"{tuple(input_shape)}")
        return (self.out_features,)

    def forward(self, x, *, training: bool = False):
        if x.ndim > 2:  # (N, T, in) sequences: the same layer at every step
            return self._forward_matrix(x.reshape(-1, self.in_features), training).reshape(
                *x.shape[:-1], self.out_features)
        return self._forward_matrix(x, training)

    def backward(self, dy):
        """Gradients of the mean over the rows of ``dy`` (examples, or examples × steps)."""
        if dy.ndim > 2:
            dy2 = dy.reshape(-1, self.out_features)
            return self._backward_matrix(dy2, dy2.shape[0]).reshape(*dy.shape[:-1], self.in_features)
        return self._backward_matrix(dy, dy.shape[0])
