"""The seed papers' low-precision training schemes, by name (``--scheme NAME``) or as objects.

``get_scheme("binaryconnect", stochastic=True)`` -> a `Scheme`: ``.precision(seed)`` for
``hwsim.train`` and ``.build_model(spec, input_shape, num_classes)`` for the adapted network.
"""
from ._base import Scheme
from ._binaryconnect import BinaryConnect
from ._bnn import BNN
from ._bnn_packed import PackedBNN
from ._fixed import FIXED_PRESETS, FixedPoint, Float32
from ._qbp import QuantizedBackprop
from ._quantizers import BinaryQuantizer, Pow2Quantizer, TernaryQuantizer
from ._registry import SCHEMES, build_scheme_model, get_scheme, parse_scheme, scheme_names
from ._ternary import TWN, TernaryConnect

__all__ = [
    "BNN", "BinaryConnect", "BinaryQuantizer", "FIXED_PRESETS", "FixedPoint", "Float32", "PackedBNN",
    "Pow2Quantizer", "QuantizedBackprop", "SCHEMES", "Scheme", "TWN", "TernaryConnect",
    "TernaryQuantizer", "build_scheme_model", "get_scheme", "parse_scheme", "scheme_names",
]
