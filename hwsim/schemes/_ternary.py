"""Ternary weights: TernaryConnect (Lin, Courbariaux, Memisevic, Bengio, "Neural networks with few
multiplications", ICLR 2016, arXiv:1510.03009) and Ternary Weight Networks (Li, Zhang, Liu 2016,
arXiv:1605.04711)."""
from __future__ import annotations

import dataclasses

from .._precision import Precision
from ._base import Scheme
from ._quantizers import TernaryQuantizer


@dataclasses.dataclass(frozen=True)
class TernaryConnect(Scheme):
    """Weights in {-1, 0, +1} during propagations, real-valued master weights clipped to [-1, 1].

    ``stochastic=True`` (the paper): w_t = sign(w) with probability |w|, else 0.
    ``stochastic=False``: w_t = sign(w) where |w| > ``threshold``, else 0.
    Batch norm after every layer; straight-through gradient. Workload: weight kind ``ternary``.
    """

    name = "ternaryconnect"
    paper = ("Lin, Courbariaux, Memisevic, Bengio 2016, Neural networks with few multiplications (ICLR), "
             "arXiv:1510.03009")
    stochastic: bool = True
    threshold: float = 0.5
    weight_clip: float = 1.0
    batchnorm: bool = True
    unit_init: bool = True

    def precision(self, seed: int = 0) -> Precision:
        q = (TernaryQuantizer(stochastic=True) if self.stochastic
             else TernaryQuantizer(threshold=self.threshold))
        return Precision(weight=q, seed=seed, weight_clip=self.weight_clip)


@dataclasses.dataclass(frozen=True)
class TWN(Scheme):
    """Ternary weight networks: per tensor, threshold D = 0.7 * mean|w| and scale
    a = mean{|w| : |w| > D}; the propagations use a * t with t in {-1, 0, +1}
    (sign(w) where |w| > D). Master weights unclipped; straight-through gradient.
    Workload: weight kind ``ternary`` (one multiply by a per output, folded into batch norm).
    """

    name = "twn"
    paper = "Li, Zhang, Liu 2016, Ternary Weight Networks, arXiv:1605.04711"
    batchnorm: bool = True

    def precision(self, seed: int = 0) -> Precision:
        return Precision(weight=TernaryQuantizer(scaled=True), seed=seed)
