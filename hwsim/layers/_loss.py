"""Softmax cross-entropy on logits."""
from __future__ import annotations

from .._xp import get_array_module


class SoftmaxCrossEntropy:
    """``loss = mean_n(-log softmax(z_n)[y_n])``; the probabilities are computed in float64 and
    rounded to the logits' dtype, so that numpy and CuPy (whose ``exp`` and row sums may differ in
    the last float64 bit) give the same float32 probabilities and gradients (a difference would
    need a float64 result within one float64 ulp of a float32 rounding boundary).

    `backward` returns ``softmax(z) - onehot(y)``: the gradient of the *summed* loss (the layers'
    gradient convention, see ``hwsim.layers._base``). Logits quantized with a saturating format
    get their gradient through the producing layer's straight-through mask (zero where the logit
    saturated), never unchanged through the clamp.
    """

    name = "softmax_cross_entropy"

    def forward(self, logits, y):
        """Mean loss as a 0-d array of the logits' dtype; caches the probabilities."""
        xp = get_array_module(logits)
        z = logits.astype(xp.float64)
        z -= z.max(axis=1, keepdims=True)
        e = xp.exp(z)
        s = e.sum(axis=1, keepdims=True)
        self._p = (e / s).astype(logits.dtype, copy=False)
        self._y = y
        rows = xp.arange(logits.shape[0])
        return (xp.log(s[:, 0]) - z[rows, y]).mean().astype(logits.dtype)

    def backward(self):
        xp = get_array_module(self._p)
        g = self._p.copy()
        g[xp.arange(g.shape[0]), self._y] -= 1
        return g

    @property
    def probabilities(self):
        return self._p


class MeanSquaredError:
    """``loss = mean_n mean_j (p_nj − y_nj)²`` (the mean squared error over examples and outputs),
    computed in the predictions' float dtype; targets ``y`` of shape (N, out).

    `backward` returns ``2 (p − y) / out``: the gradient of the *summed* per-example loss (the
    layers' gradient convention, see ``hwsim.layers._base``).
    """

    name = "mse"

    def forward(self, pred, y):
        """Mean loss as a 0-d array of the predictions' dtype; caches the residual."""
        if pred.shape != y.shape:
            raise ValueError(f"mse: predictions {tuple(pred.shape)} and targets {tuple(y.shape)} differ in "
                             "shape")
        self._r = pred - y.astype(pred.dtype, copy=False)
        return (self._r * self._r).mean()

    def backward(self):
        return self._r * (2.0 / self._r.shape[1])
