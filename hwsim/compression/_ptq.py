"""Post-training min-max quantization, one fixed-point format per tensor.

For a tensor with range [lo, hi] and ``bits`` bits the format is the signed
``Fixed(bits, frac)`` with the largest ``frac`` whose range still holds both ends:
``-2**(bits-1) * 2**-frac <= lo`` and ``hi <= (2**(bits-1) - 1) * 2**-frac`` — a power-of-two
scale, so the quantized layer needs only integer arithmetic and shifts. Values are rounded
with ``fixedpoint.quantize`` (nearest-even, saturating). Every weight ``W`` and bias ``b`` of
every layer gets its own format; other parameters (batch-norm statistics) stay float32, as
they fold into the next layer's scale in deployment.
"""
from __future__ import annotations

import copy
import math

import numpy as np

import fixedpoint as fxp

QUANTIZED_PARAMS = ("W", "b")


def minmax_format(x: np.ndarray, bits: int) -> fxp.Fixed:
    """The signed ``Fixed(bits, frac)`` with the finest step that holds ``x.min()`` and ``x.max()``."""
    if not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 62:
        raise ValueError(f"bits must be an integer in [2, 62], got {bits!r}")
    x = np.asarray(x, dtype=np.float64)
    half = 2.0 ** (int(bits) - 1)
    limits = []
    if x.size and x.min() < 0:
        limits.append(half / -x.min())
    if x.size and x.max() > 0:
        limits.append((half - 1) / x.max())
    frac = math.floor(math.log2(min(limits))) if limits else int(bits) - 1
    return fxp.Fixed(int(bits), min(max(frac, -64), 64))


def post_training_quantize(model, bits: int, rounding: str = "nearest_even"):
    """A copy of ``model`` whose weights and biases are min-max quantized to ``bits`` bits.

    Returns ``(model_copy, formats)`` with ``formats[f"{layer_index}.{name}"] = str(Fixed)``.
    """
    q = copy.deepcopy(model)
    formats: dict[str, str] = {}
    for i, layer in enumerate(q.layers):
        for name, arr in layer.params().items():
            if name in QUANTIZED_PARAMS:
                fmt = minmax_format(arr, bits)
                arr[...] = fxp.quantize(arr, fmt, rounding=rounding, overflow="saturate")
                formats[f"{i}.{name}"] = str(fmt)
    return q, formats
