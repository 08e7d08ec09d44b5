"""The deep-compression pipeline (Han, Mao, Dally 2015, "Deep compression", arXiv:1510.00149):
iterative magnitude pruning with retraining -> k-means weight sharing with centroid fine-tuning
-> Huffman-coded storage with relative sparse indices; the accuracy reported is that of the
model decoded back from the stored bytes.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._train import evaluate, train
from ._kmeans import SharedWeights, WeightSharing
from ._prune import Pruning, weighted_layers
from ._storage import CompressedLayer, CompressedModel


def store(model, shared: dict[int, SharedWeights], index_bits: int = 5,
          coding: str = "huffman") -> CompressedModel:
    """The stored form of every weighted layer of ``model`` (``shared[layer index]`` its codes)."""
    layers = weighted_layers(model)
    missing = [layer.name for layer in layers if layer.index not in shared]
    if missing:
        raise ValueError(f"no shared weights for layer(s) {', '.join(missing)}")
    return CompressedModel([CompressedLayer.encode(layer.name, shared[layer.index], layer.b, index_bits,
                                                   coding)
                            for layer in layers])


def load_stored(model, stored: CompressedModel) -> None:
    """Write the weights and biases decoded from ``stored`` into ``model``'s weighted layers."""
    layers = weighted_layers(model)
    if len(layers) != len(stored.layers):
        raise ValueError(f"the stored model has {len(stored.layers)} layers, the model {len(layers)}")
    for layer, cl in zip(layers, stored.layers):
        W, b = cl.decode()
        if W.shape != layer.W.shape:
            raise ValueError(f"stored layer {cl.name!r} has shape {W.shape}, the model needs {layer.W.shape}")
        layer.W[...] = W
        layer.b[...] = b


def deep_compress(model, data, *, sparsity: float | dict[int, float], bits: int | dict[int, int],
                  index_bits: int = 5, prune_rounds: int = 3, epochs_per_round: int = 1,
                  share_epochs: int = 1, batch: int = 64, lr: float = 1e-3, seed: int = 0) -> dict:
    """Compress a trained float model in place; returns the stored model and accuracies.

    Pruning reaches the target ``sparsity`` (per weighted-layer index, or one value) in
    ``prune_rounds`` equal steps of the kept fraction, each followed by ``epochs_per_round``
    epochs of retraining with the masks held. Then each layer's surviving weights are shared
    among ``2**bits - 1`` centroids and the centroids fine-tuned for ``share_epochs`` epochs.
    Returns ``{"stored": CompressedModel, "report": rows, "accuracy": {stage: test accuracy},
    "compression": original bytes / stored bytes}``; the final accuracy is measured on the
    weights decoded from ``stored.to_bytes()``.
    """
    if int(prune_rounds) < 1:
        raise ValueError(f"prune_rounds must be >= 1, got {prune_rounds!r}")
    precision = model.precision
    kw = dict(epochs=epochs_per_round, batch=batch, lr=lr, seed=seed, progress=False)
    acc = {"baseline": evaluate(model, data.X_test, data.y_test)["accuracy"]}
    targets = {layer.index: float(sparsity if np.isscalar(sparsity) else sparsity.get(layer.index, 0.0))
               for layer in weighted_layers(model)}
    for r in range(1, int(prune_rounds) + 1):
        step = {i: 1.0 - (1.0 - s) ** (r / prune_rounds) for i, s in targets.items()}
        hook = Pruning.by_magnitude(model, step)
        if epochs_per_round:
            train(model, data, precision, scheme=hook, **kw)
    acc["pruned"] = evaluate(model, data.X_test, data.y_test)["accuracy"]
    sharing = WeightSharing.by_kmeans(model, bits)
    if share_epochs:
        train(model, data, precision, scheme=sharing, **{**kw, "epochs": share_epochs})
    acc["shared"] = evaluate(model, data.X_test, data.y_test)["accuracy"]
    stored = store(model, sharing.shared, index_bits)
    load_stored(model, CompressedModel.from_bytes(stored.to_bytes()))
    acc["stored"] = evaluate(model, data.X_test, data.y_test)["accuracy"]
    report = stored.report()
    return {"stored": stored, "report": report, "accuracy": acc, "compression": report[-1]["compression"]}


def compressed_workload(model, stored: CompressedModel, precision=None, batch: int = 1):
    """``hwsim.workload(model, precision, batch)`` with each stored layer's product reading its
    weights at the stored size (``b_bits = ceil(8 * stored bytes / weights)``, at least 1) and
    carrying its ``sparsity`` (fraction of zero weights: MACs are skipped only on device profiles
    that declare ``exploits_sparsity``)."""
    import devices

    from .._workload import workload

    rows = {r["layer"]: r for r in stored.report()}
    ops = []
    for op in workload(model, precision, batch=batch):
        layer = op.name.split("/")[0]
        if isinstance(op, (devices.MatMul, devices.Conv2d)) and layer in rows:
            r = rows[layer]
            op = dataclasses.replace(op, b_bits=max(1, math.ceil(8 * r["stored_bytes"] / r["weights"])),
                                     sparsity=1.0 - r["nonzero_pct"] / 100.0)
        ops.append(op)
    return devices.Workload(ops)
