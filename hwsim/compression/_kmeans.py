"""Weight sharing by 1-D k-means (Han et al. 2015, section 3).

Codebook layout: index 0 always stands for the value 0 (pruned weights and filler zeros);
indices ``1..2**bits - 1`` are the k-means centroids of the surviving weights. Centroids are
initialised *linearly* between the smallest and largest surviving weight (the paper's best
initialisation) and refined by Lloyd iterations; 1-D assignment is a ``searchsorted`` on the
midpoints between sorted centroids (ties go to the larger centroid).

Fine-tuning (paper eq. 3): the gradient of a centroid is the sum of the gradients of the
weights that share it, :func:`centroid_grads`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._prune import weighted_layers


@dataclass
class SharedWeights:
    """A weight tensor as ``codebook[indices]``; ``codebook[0] == 0``."""

    codebook: np.ndarray  # float32, shape (2**bits,)
    indices: np.ndarray   # int64, shape of the weight tensor
    bits: int

    def dense(self) -> np.ndarray:
        """The float32 weight tensor these codes stand for."""
        return self.codebook[self.indices]


def _assign(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index (into the sorted ``centroids``) of the nearest centroid of each value."""
    mids = (centroids[1:] + centroids[:-1]) / 2
    return np.searchsorted(mids, values, side="right")


def kmeans_share(w: np.ndarray, bits: int, mask: np.ndarray | None = None,
                 iters: int = 30) -> SharedWeights:
    """Cluster the weights where ``mask`` is true (all if None) into ``2**bits - 1`` centroids.

    ``bits`` in [1, 16]. Positions outside the mask get index 0 (value 0).
    """
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an integer in [1, 16], got {bits!r}")
    w = np.asarray(w, dtype=np.float32)
    keep = np.ones(w.shape, bool) if mask is None else np.asarray(mask, bool)
    if keep.shape != w.shape:
        raise ValueError(f"mask shape {keep.shape} differs from weight shape {w.shape}")
    vals = w[keep].astype(np.float64)
    k = (1 << bits) - 1
    codebook = np.zeros(k + 1, dtype=np.float32)
    indices = np.zeros(w.shape, dtype=np.int64)
    if vals.size == 0:
        return SharedWeights(codebook, indices, int(bits))
    cent = np.linspace(vals.min(), vals.max(), k)
    for _ in range(iters):
        lab = _assign(vals, cent)
        sums = np.bincount(lab, weights=vals, minlength=k)
        cnt = np.bincount(lab, minlength=k)
        new = np.where(cnt > 0, sums / np.maximum(cnt, 1), cent)
        new.sort()
        if np.array_equal(new, cent):
            break
        cent = new
    codebook[1:] = cent
    indices[keep] = _assign(vals, cent) + 1
    return SharedWeights(codebook, indices, int(bits))


def centroid_grads(grad: np.ndarray, shared: SharedWeights) -> np.ndarray:
    """Gradient of each codebook entry: the sum of the weight gradients sharing it (entry 0 fixed at 0)."""
    g = np.bincount(shared.indices.ravel(), weights=np.asarray(grad, np.float64).ravel(),
                    minlength=shared.codebook.size)
    g[0] = 0.0
    return g.astype(np.float32)


class WeightSharing:
    """Training-loop hook that fine-tunes the centroids of shared weights (Han et al. 2015, eq. 3).

    ``shared`` maps a layer index to its `SharedWeights`. Before each optimizer step every weight's
    gradient is replaced by its centroid's gradient (`centroid_grads`: the sum over the weights
    that share it; index 0, the zeros, gets 0), so all weights of a cluster receive identical
    updates from an optimizer started fresh for this phase; after the step the codebook is read
    back from one member of each cluster and the weights are rewritten as ``codebook[indices]``.
    """

    def __init__(self, shared: dict[int, SharedWeights]):
        self.shared = shared
        self.first = {}
        for i, sh in shared.items():
            flat = sh.indices.ravel()
            order = np.argsort(flat, kind="stable")
            starts = np.searchsorted(flat[order], np.arange(sh.codebook.size))
            present = np.bincount(flat, minlength=sh.codebook.size) > 0
            self.first[i] = (np.flatnonzero(present), order[starts[present]])

    @classmethod
    def by_kmeans(cls, model, bits: int | dict[int, int], layers: list[int] | None = None) -> "WeightSharing":
        """Cluster the weights of ``layers`` (default every weighted layer) with `kmeans_share`;
        zeros (pruned weights) stay out of the clusters. The model's weights are replaced at once."""
        chosen = [layer for layer in weighted_layers(model) if layers is None or layer.index in layers]
        hook = cls({layer.index: kmeans_share(layer.W, bits if np.isscalar(bits) else bits[layer.index],
                                              layer.W != 0)
                    for layer in chosen})
        for i, sh in hook.shared.items():
            model.layers[i].W[...] = sh.dense()
        return hook

    def on_gradients(self, model, step: int) -> None:
        for i, sh in self.shared.items():
            g = model.layers[i].grads()["W"]
            g[...] = centroid_grads(g, sh)[sh.indices]

    def after_step(self, model, step: int) -> None:
        for i, sh in self.shared.items():
            W = model.layers[i].W
            codes, members = self.first[i]
            sh.codebook[codes] = W.ravel()[members]
            sh.codebook[0] = 0.0
            W[...] = sh.dense()
