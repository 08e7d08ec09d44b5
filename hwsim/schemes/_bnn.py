"""Binarized neural networks: Courbariaux, Hubara, Soudry, El-Yaniv, Bengio, "Binarized Neural
Networks: Training Deep Neural Networks with Weights and Activations Constrained to +1 or -1",
2016 (arXiv:1602.02830); Hubara et al., NeurIPS 2016."""
from __future__ import annotations

import dataclasses

from .._precision import Precision
from ..layers import Activation, Layer
from ._base import Scheme
from ._quantizers import BinaryQuantizer


@dataclasses.dataclass(frozen=True)
class BNN(Scheme):
    """Weights and hidden activations in {-1, +1}.

    Every hidden activation becomes ``Activation("sign")`` (sign(0) = +1) whose backward is the
    straight-through estimator with clipping, 1_{|x| <= 1}; weights are binarized by sign and the
    real-valued master weights clipped to [-1, 1]. Batch norm after every Dense/Conv layer (the
    output layer too). The first layer sees the real-valued input (the paper uses 8-bit inputs).
    The exact inference path `hwsim.schemes.PackedBNN` packs the ±1 values into uint64
    words and computes the hidden layers with XNOR-popcount. Workload: weight and activation kind
    ``binary`` (XNOR-popcount op rates).
    """

    name = "bnn"
    paper = "Courbariaux, Hubara, Soudry, El-Yaniv, Bengio 2016, Binarized Neural Networks, arXiv:1602.02830"
    weight_clip: float = 1.0
    batchnorm: bool = True
    unit_init: bool = True

    def precision(self, seed: int = 0) -> Precision:
        return Precision(weight=BinaryQuantizer(), seed=seed, weight_clip=self.weight_clip)

    def workload_precision(self, seed: int = 0) -> Precision:
        """The policy to cost the network with: binary weights and binary activations."""
        return self.precision(seed).replace(activation=BinaryQuantizer(ste_clip=True))

    def adapt_layers(self, layers: list[Layer]) -> list[Layer]:
        return [Activation("sign") if isinstance(layer, Activation) else layer for layer in layers]
