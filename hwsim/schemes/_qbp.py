"""Quantized back-propagation: Lin, Courbariaux, Memisevic, Bengio, "Neural networks with few
multiplications", ICLR 2016 (arXiv:1510.03009)."""
from __future__ import annotations

import dataclasses

from .._precision import Precision
from ._base import Scheme
from ._quantizers import BinaryQuantizer, Pow2Quantizer, TernaryQuantizer

WEIGHTS = ("binary", "ternary")


@dataclasses.dataclass(frozen=True)
class QuantizedBackprop(Scheme):
    """Binary (BinaryConnect) or ternary (TernaryConnect) stochastic weights, plus the backward
    errors quantized to powers of two ±2^k, ``min_exp <= k <= max_exp`` (or 0) with
    ``fixedpoint.pow2`` before each backward product.

    With the error e a power of two, the weight-gradient product dW = x^T e multiplies every
    layer input by a power of two (a shift), and the error product dx = e W^T multiplies by
    ±1/0 (a sign selection): the update needs no multiplier. The paper quantizes the layer inputs
    of dW to powers of two instead; both make dW multiplication-free, and this policy keeps the
    forward pass exactly BinaryConnect's. Errors use the layers' per-example scale (the gradient
    of the summed loss, |e| <= 1 at the output), so ``max_exp=0``. ``stochastic_errors=True``
    rounds errors without bias in the linear domain. Workload: error kind ``pow2``, so the
    backward products count as shifts.
    """

    name = "quantized-backprop"
    paper = ("Lin, Courbariaux, Memisevic, Bengio 2016, Neural networks with few multiplications (ICLR), "
             "arXiv:1510.03009")
    weights: str = "binary"
    min_exp: int = -15
    max_exp: int = 0
    stochastic_errors: bool = False
    weight_clip: float = 1.0
    batchnorm: bool = True
    unit_init: bool = True

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {self.weights!r}")
        Pow2Quantizer(self.min_exp, self.max_exp)      # validates the exponent range

    def precision(self, seed: int = 0) -> Precision:
        w = (BinaryQuantizer(stochastic=True) if self.weights == "binary"
             else TernaryQuantizer(stochastic=True))
        return Precision(weight=w, error=Pow2Quantizer(self.min_exp, self.max_exp, self.stochastic_errors),
                         seed=seed, weight_clip=self.weight_clip)
