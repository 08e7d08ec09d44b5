"""fixedpoint: bit-accurate low-precision numerics (formats, rounding, quantizers, exact arithmetic).

The numpy backend is the specification; Numba CPU and CUDA kernels give identical bits.
"""
from . import rng
from ._extreme import binarize, pow2, ternarize
from ._fixed_array import FixedArray
from ._fixed_format import Fixed
from ._float_format import BF16, FP4_E2M1, FP6_E2M3, FP6_E3M2, FP8_E4M3, FP8_E5M2, FP16, FloatFormat
from ._matmul import matmul
from ._quantize import from_raw, quantize, to_raw
from ._quantizer import Quantizer
from ._stats import QuantStats
from ._validate import OVERFLOW_MODES, ROUNDING_MODES

__all__ = [
    "Fixed",
    "FixedArray",
    "matmul",
    "FloatFormat",
    "FP16",
    "BF16",
    "FP8_E4M3",
    "FP8_E5M2",
    "FP6_E3M2",
    "FP6_E2M3",
    "FP4_E2M1",
    "binarize",
    "ternarize",
    "pow2",
    "QuantStats",
    "quantize",
    "Quantizer",
    "to_raw",
    "from_raw",
    "ROUNDING_MODES",
    "OVERFLOW_MODES",
    "rng",
]
