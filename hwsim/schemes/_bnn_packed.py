"""Exact bit-packed inference of a trained BNN (Courbariaux, Hubara et al. 2016, section 1.3).

The network must look like the `BNN` scheme builds it: ``[Flatten] Dense BatchNorm sign
(Dense BatchNorm sign)* Dense BatchNorm`` with deterministic binary weights. The layers up to
the first ``sign`` (real-valued input times ±1 weights) run as in the model. Every later Dense
runs on packed bits:

* ``dot = K - 2 * popcount(x XOR w)`` (`hwsim._bitpack`), plus the binarized bias (±1):
  the weighted sum ``s`` as an exact integer;
* a hidden BatchNorm + sign becomes one integer comparison per neuron: for each neuron the
  set of sums whose ``sign(BN(s))`` is +1 is an interval of the grid ``dot in {-K, -K+2, .., K}``
  (BN is monotone in s, and correctly rounded float operations keep it monotone), so the output
  bit is ``lo <= (dot + K) / 2 < hi``. The bounds are computed by evaluating the model's own
  BatchNorm layer on the whole grid, so they reproduce its float32 arithmetic exactly;
* the last BatchNorm is applied by the model's layer to ``float32(s)`` and gives the logits.

The float emulation computes ``s`` as a float32 matmul of ±1 values, exact for K < 2**24, so
the packed path equals ``model.forward`` bit for bit (tested).
"""
from __future__ import annotations

import numpy as np

from .._bitpack import pack_signs, xnor_popcount_matmul
from .._model import Sequential
from ..layers import Activation, BatchNorm, Dense, Flatten
from ._quantizers import BinaryQuantizer


def _binary_weights(layer: Dense) -> tuple[np.ndarray, np.ndarray]:
    q = layer.precision.weight
    if not isinstance(q, BinaryQuantizer) or q.stochastic:
        raise ValueError(f"layer {layer.name!r}: packed BNN inference needs deterministic binary weights, "
                         f"got weight quantizer {getattr(q, 'name', q)!r}")
    w = np.where(np.asarray(layer.W) >= 0, 1, -1).astype(np.int64)
    b = np.where(np.asarray(layer.b) >= 0, 1, -1).astype(np.int64)
    return w, b


class _PackedHidden:
    """One ``Dense BatchNorm sign`` block on packed bits."""

    def __init__(self, dense: Dense, bn: BatchNorm):
        w, self.bias = _binary_weights(dense)
        self.k = w.shape[0]
        self.words = pack_signs(w.T)                        # (out, words)
        grid = np.arange(-self.k, self.k + 1, 2, dtype=np.int64)     # every possible dot
        sums = (grid[:, None] + self.bias[None, :]).astype(np.float32)
        plus = np.asarray(bn.forward(sums, training=False)) >= 0     # (K+1, out): sign(BN(s)) = +1
        count = plus.sum(axis=0)
        rising = plus[-1] | ~plus[0]  # +1 at the top of the grid, or never at the bottom
        self.lo = np.where(rising, self.k + 1 - count, 0)
        self.hi = np.where(rising, self.k + 1, count)
        idx = np.arange(self.k + 1)[:, None]
        if not np.array_equal(plus, (idx >= self.lo) & (idx < self.hi)):
            raise ValueError(f"layer {bn.name!r}: sign(BN(s)) is not monotone in s (non-finite parameters?)")

    def __call__(self, x_words: np.ndarray) -> np.ndarray:
        i = (xnor_popcount_matmul(x_words, self.words, self.k) + self.k) // 2
        return pack_signs(np.where((i >= self.lo) & (i < self.hi), 1, -1))


class PackedBNN:
    """Bit-packed XNOR-popcount inference of a BNN `Sequential` (see the module docstring)."""

    def __init__(self, model: Sequential):
        layers = list(model.layers)
        signs = [i for i, layer in enumerate(layers)
                 if isinstance(layer, Activation) and layer.kind == "sign"]
        if not signs:
            raise ValueError("packed BNN inference needs sign activations (build the model with the 'bnn' "
                             "scheme)")
        self.prefix = layers[: signs[0] + 1]
        rest = layers[signs[0] + 1:]
        expect = [Dense, BatchNorm, Activation] * (len(rest) // 3) + [Dense, BatchNorm]
        if len(rest) != len(expect) or not all(isinstance(layer, t) for layer, t in zip(rest, expect)) \
                or not all(isinstance(layer, (Flatten, Dense, BatchNorm, Activation))
                           for layer in self.prefix):
            raise ValueError("packed BNN inference needs layers [Flatten] Dense BatchNorm sign "
                             f"(Dense BatchNorm sign)* Dense BatchNorm, got {model!r}")
        for layer in self.prefix:
            if isinstance(layer, Dense):
                _binary_weights(layer)          # the float prefix must be deterministic too
        self.hidden = [_PackedHidden(rest[i], rest[i + 1]) for i in range(0, len(rest) - 2, 3)]
        w, self.out_bias = _binary_weights(rest[-2])
        self.out_k = w.shape[0]
        self.out_words = pack_signs(w.T)
        self.out_bn = rest[-1]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits (float32) of a batch, bit for bit those of ``model.forward(x)``."""
        for layer in self.prefix:
            x = layer.forward(x, training=False)
        words = pack_signs(x)
        for block in self.hidden:
            words = block(words)
        s = xnor_popcount_matmul(words, self.out_words, self.out_k) + self.out_bias
        return self.out_bn.forward(s.astype(np.float32), training=False)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x).argmax(axis=1)
