"""hwsim's Dense backward for a first layer: the parameter gradients without the input's.

PyTorch asks a layer for the gradient of its input only when something upstream needs it
(``ctx.needs_input_grad``); for the first layer of a model nothing does, and that gradient is a
product as large as the forward's (``e W^T``: batch × in × out multiply-adds, a quarter of the
products of a step for an MLP on MNIST). hwsim's `WeightedLayer._backward_matrix` always computes it.
"""
from __future__ import annotations

from ..layers import Dense
from ..layers._product import product


def dense_parameter_grads(layer: Dense, dy) -> None:
    """Set ``layer.dW`` and ``layer.db`` from the error ``dy`` (N, out) of its last training forward:
    `hwsim.layers.Dense.backward` step for step (masks, ``error`` and ``grad`` roles with their
    seeds, the mean-loss scaling), so the same bits, without the input gradient."""
    x2, _, _, m_w, m_out = layer._cache
    batch = dy.shape[0]
    if m_out is not None:
        dy = dy * m_out
    e = layer.quantize("error", dy, 0)
    dw = product(layer, x2.T, e, "activation", "error")
    dw *= 1.0 / batch
    if m_w is not None:
        dw *= m_w
    db = e.sum(axis=0) * (1.0 / batch)
    dw = layer.quantize("grad", dw.astype(layer.W.dtype, copy=False), 0)
    layer.db = layer.quantize("grad", db.astype(layer.b.dtype, copy=False), 1)
    layer._set_dw(dw)
