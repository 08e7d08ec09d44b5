"""Magnitude pruning masks (Han, Pool, Tran, Dally 2015, "Learning both weights and connections").

A mask is a boolean array of the weight's shape, true where the weight survives. The mask
keeps the ``round((1 - sparsity) * size)`` weights of largest magnitude; ties in magnitude
are broken by flat index (earlier index kept), so masks are deterministic.
"""
from __future__ import annotations

import numpy as np


def magnitude_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Boolean mask keeping the largest-magnitude ``1 - sparsity`` fraction of ``w``.

    ``sparsity`` in [0, 1): the fraction of weights set to zero.
    """
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    a = np.abs(np.asarray(w, dtype=np.float64)).ravel()
    n_keep = int(round((1.0 - float(sparsity)) * a.size))
    keep = np.zeros(a.size, dtype=bool)
    keep[np.argsort(-a, kind="stable")[:n_keep]] = True
    return keep.reshape(np.shape(w))


def weighted_layers(model) -> list:
    """The layers of ``model`` with a weight ``W`` (Dense, Conv2d), in order."""
    return [layer for layer in model.layers if "W" in layer.params()]


class Pruning:
    """Training-loop hook (``hwsim.train(..., scheme=Pruning(masks))``) that keeps pruned weights at 0.

    ``masks`` maps a layer index to its boolean mask. Gradients of pruned weights are zeroed
    before the optimizer step (so the optimizer state of a pruned weight stays 0) and the weights
    are multiplied by the mask after it, so the masks hold through any fine-tuning.
    """

    def __init__(self, masks: dict[int, np.ndarray]):
        self.masks = masks

    @classmethod
    def by_magnitude(cls, model, sparsity: float | dict[int, float]) -> "Pruning":
        """Masks for every weighted layer (``sparsity`` per layer index, or one value for all),
        applied to the model's weights at once."""
        hook = cls({layer.index: magnitude_mask(layer.W,
                                                sparsity if np.isscalar(sparsity) else sparsity[layer.index])
                    for layer in weighted_layers(model)
                    if np.isscalar(sparsity) or layer.index in sparsity})
        hook.after_step(model, 0)
        return hook

    def _layers(self, model):
        return [(model.layers[i], m) for i, m in self.masks.items()]

    def on_gradients(self, model, step: int) -> None:
        for layer, m in self._layers(model):
            layer.grads()["W"][...] *= m

    def after_step(self, model, step: int) -> None:
        for layer, m in self._layers(model):
            layer.W[...] *= m
