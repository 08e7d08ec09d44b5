"""Group-lasso regularisation of dense layers (Scardapane, Comminiello, Hussain, Uncini 2017,
"Group sparse regularization for deep neural networks", Neurocomputing 241).

Groups of a dense weight ``W`` of shape (in, out): row ``i`` (the outgoing weights of input
or hidden neuron ``i``), plus the bias vector of the layer as one group. Penalty

    R = lam * sum_g sqrt(|g|) * ||g||_2

with ``|g|`` the number of elements of group ``g``. Its subgradient is
``lam * sqrt(|g|) * g / ||g||_2`` and 0 for a group that is exactly zero (the
subgradient of minimal norm). Plain (sub)gradient steps leave groups small but nonzero;
the proximal step :func:`group_lasso_prox` (block soft-thresholding,
``g <- max(0, 1 - t*sqrt(|g|)/||g||) * g`` with ``t = lr * lam``) sets whole groups to exactly
zero. A neuron whose outgoing row is zero can be removed.
"""
from __future__ import annotations

import numpy as np

from ..layers import Dense


def _check_lam(lam: float) -> float:
    if not float(lam) >= 0.0:
        raise ValueError(f"lam must be >= 0, got {lam!r}")
    return float(lam)


def group_lasso_penalty(W: np.ndarray, b: np.ndarray | None, lam: float) -> float:
    """The penalty of one dense layer (rows of ``W`` and the bias vector as groups)."""
    lam = _check_lam(lam)
    W = np.asarray(W, dtype=np.float64)
    r = np.sqrt(W.shape[1]) * np.linalg.norm(W, axis=1).sum()
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        r += np.sqrt(b.size) * np.linalg.norm(b)
    return lam * float(r)


def _row_subgrad(G: np.ndarray, lam: float) -> np.ndarray:
    norms = np.linalg.norm(G.astype(np.float64), axis=-1, keepdims=True)
    scale = lam * np.sqrt(G.shape[-1]) / np.where(norms > 0, norms, 1.0)
    return (np.where(norms > 0, scale, 0.0) * G).astype(G.dtype)


def group_lasso_grad(W: np.ndarray, b: np.ndarray | None, lam: float
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Subgradient of :func:`group_lasso_penalty` w.r.t. ``W`` and ``b`` (same dtypes)."""
    lam = _check_lam(lam)
    W = np.asarray(W)
    gW = _row_subgrad(W, lam)
    gb = None if b is None else _row_subgrad(np.asarray(b)[None, :], lam)[0]
    return gW, gb


def _row_shrink(G: np.ndarray, t: float) -> np.ndarray:
    norms = np.linalg.norm(G.astype(np.float64), axis=-1, keepdims=True)
    factor = np.maximum(0.0, 1.0 - t * np.sqrt(G.shape[-1]) / np.where(norms > 0, norms, 1.0))
    return (factor * G).astype(G.dtype)


def group_lasso_prox(W: np.ndarray, b: np.ndarray | None, t: float
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Proximal operator of ``t * R / lam`` (block soft-thresholding of every group); ``t = lr * lam``."""
    t = _check_lam(t)
    W2 = _row_shrink(np.asarray(W), t)
    b2 = None if b is None else _row_shrink(np.asarray(b)[None, :], t)[0]
    return W2, b2


def alive_rows(W: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Boolean per input neuron of ``W``: true if its outgoing weights have an L2 norm above ``tol``."""
    return np.linalg.norm(np.asarray(W, dtype=np.float64), axis=1) > tol


class GroupLasso:
    """Training-loop hook (``hwsim.train(..., scheme=GroupLasso(lam))``) adding the group-lasso
    subgradient of every Dense layer (rows of W and the bias vector as groups) to its gradients.

    With ``prox_lr`` set, the subgradient is replaced by a proximal step after each optimizer
    step, ``group_lasso_prox(W, b, prox_lr * lam)``, which zeroes whole groups exactly.
    """

    def __init__(self, lam: float, prox_lr: float | None = None):
        self.lam = _check_lam(lam)
        self.prox_lr = None if prox_lr is None else _check_lam(prox_lr)

    @staticmethod
    def _dense(model) -> list:
        return [layer for layer in model.layers if isinstance(layer, Dense)]

    def penalty(self, model) -> float:
        return sum(group_lasso_penalty(layer.W, layer.b, self.lam) for layer in self._dense(model))

    def on_gradients(self, model, step: int) -> None:
        if self.prox_lr is not None:
            return
        for layer in self._dense(model):
            gW, gb = group_lasso_grad(layer.W, layer.b, self.lam)
            grads = layer.grads()
            grads["W"][...] += gW
            grads["b"][...] += gb

    def after_step(self, model, step: int) -> None:
        if self.prox_lr is None:
            return
        for layer in self._dense(model):
            W, b = group_lasso_prox(layer.W, layer.b, self.prox_lr * self.lam)
            layer.W[...], layer.b[...] = W, b


def remove_dead_neurons(model, tol: float = 1e-3):
    """A smaller copy of an MLP (``[Flatten] Dense (Activation Dense)*``) without the hidden neurons
    whose outgoing weights have an L2 norm <= ``tol``; those neurons' other weights are dropped
    too. Returns ``(new_model, kept)``: ``kept[l]`` = neurons kept at each layer boundary
    (inputs, each hidden layer, outputs); unused inputs (zero outgoing rows) are counted but
    stay in the model, zeroed, so its input shape does not change.
    """
    from .._model import Sequential
    from ..layers import Activation, Flatten

    layers = list(model.layers)
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    if not dense or not all(isinstance(layer, (Dense, Activation, Flatten)) for layer in layers):
        raise ValueError("remove_dead_neurons needs an MLP of Flatten, Dense and Activation layers, got "
                         f"{model!r}")
    alive = [alive_rows(layer.W, tol) for layer in dense] + [np.ones(dense[-1].W.shape[1], bool)]
    kept = [int(a.sum()) for a in alive]
    if 0 in kept[1:]:
        raise ValueError(f"every neuron of a hidden layer is dead (kept {kept}): the group-lasso lam is too "
                         "large")
    new_layers, k = [], 0
    for layer in layers:
        if isinstance(layer, Dense):
            rows = np.ones(layer.W.shape[0], bool) if k == 0 else alive[k]
            W = np.asarray(layer.W)[rows][:, alive[k + 1]]
            if k == 0:
                W = W * alive[0][rows][:, None]
            new = Dense(W.shape[0], W.shape[1], dtype=W.dtype)
            new.set_param("W", np.ascontiguousarray(W))
            new.set_param("b", np.asarray(layer.b)[alive[k + 1]].copy())
            new_layers.append(new)
            k += 1
        else:
            new_layers.append(Activation(layer.kind) if isinstance(layer, Activation) else Flatten())
    out = Sequential(new_layers, model.input_shape)
    out.spec = "mlp:" + "-".join(str(n) for n in [dense[0].W.shape[0], *kept[1:]])
    return out, kept
