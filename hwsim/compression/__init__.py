"""Compression pipeline: pruning, weight sharing, Huffman and sparse storage, post-training
quantization, group lasso and distillation (Han et al. 2015; Scardapane et al. 2017; Hinton et al. 2015).

Training-loop hooks (`Pruning`, `WeightSharing`, `GroupLasso`) plug into ``hwsim.train(..., scheme=hook)``.
"""
from ._distill import distill, distillation_loss
from ._group_lasso import (
    GroupLasso,
    alive_rows,
    group_lasso_grad,
    group_lasso_penalty,
    group_lasso_prox,
    remove_dead_neurons,
)
from ._huffman import huffman_decode, huffman_encode
from ._kmeans import SharedWeights, WeightSharing, centroid_grads, kmeans_share
from ._pipeline import compressed_workload, deep_compress, load_stored, store
from ._prune import Pruning, magnitude_mask, weighted_layers
from ._ptq import minmax_format, post_training_quantize
from ._sparse import SparseCodes, sparse_decode, sparse_encode
from ._storage import CompressedLayer, CompressedModel

__all__ = [
    "CompressedLayer", "CompressedModel", "GroupLasso", "Pruning", "SharedWeights", "SparseCodes",
    "WeightSharing", "alive_rows", "centroid_grads", "compressed_workload", "deep_compress", "distill",
    "distillation_loss",
    "group_lasso_grad", "group_lasso_penalty", "group_lasso_prox", "huffman_decode", "huffman_encode",
    "kmeans_share", "load_stored", "magnitude_mask", "minmax_format", "post_training_quantize",
    "remove_dead_neurons", "sparse_decode", "sparse_encode", "store", "weighted_layers",
]
