"""BinaryConnect: Courbariaux, Bengio, David, "BinaryConnect: Training Deep Neural Networks with
binary weights during propagations", NeurIPS 2015 (arXiv:1511.00363)."""
from __future__ import annotations

import dataclasses

from .._precision import Precision
from ._base import Scheme
from ._quantizers import BinaryQuantizer


@dataclasses.dataclass(frozen=True)
class BinaryConnect(Scheme):
    """Weights binarized to {-1, +1} in the forward and backward propagations; the optimizer
    updates real-valued master weights, clipped to [-weight_clip, weight_clip] after every step.

    ``stochastic=False``: w_b = sign(w) (sign(0) = +1); ``stochastic=True``: w_b = +1 with
    probability clip((w + 1) / 2, 0, 1) (the hard sigmoid), a fresh draw every step. The
    gradient w.r.t. w_b is applied to w unchanged (straight-through). Batch norm after every
    layer as in the paper. Dense/Conv biases pass through the same quantizer; with the batch
    norm that follows, a bias has no effect on the output. Workload: weight kind ``binary``, so
    the multiply-accumulates become additions (sign-selected).
    """

    name = "binaryconnect"
    paper = "Courbariaux, Bengio, David 2015, BinaryConnect (NeurIPS), arXiv:1511.00363"
    stochastic: bool = False
    weight_clip: float = 1.0
    batchnorm: bool = True
    unit_init: bool = True

    def precision(self, seed: int = 0) -> Precision:
        return Precision(weight=BinaryQuantizer(stochastic=self.stochastic), seed=seed,
                         weight_clip=self.weight_clip)
