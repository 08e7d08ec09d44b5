"""Public ``quantize`` / ``to_raw`` / ``from_raw``.

A call binds its format and modes into a cached `Quantizer` (``_quantizer.py``), which picks the
backend (``_backend.py``); all backends give identical bits and statistics.
"""
from __future__ import annotations

import functools
from typing import Any, Optional, Union

import numpy as np

from ._dlpack import dlpack_io
from ._fixed_format import Fixed
from ._float_format import FloatFormat
from ._quantizer import Quantizer
from ._stats import QuantStats
from ._validate import array_module, check_result_dtype


@dlpack_io
def quantize(x: Any, fmt: Union[Fixed, FloatFormat], rounding: str = "nearest_even",
             overflow: str = "saturate", *, seed: Optional[int] = None, offset: int = 0,
             sr_bits: Optional[int] = None, backend: str = "auto", stats: Optional[QuantStats] = None,
             nan: str = "raise", out: Any = None) -> Any:
    """Round ``x`` onto the grid of ``fmt``; same shape and float dtype as ``x``.

    ``fmt`` is a :class:`Fixed` (or a ``FloatFormat``, see ``_float_quantize.quantize_float``).
    ``rounding`` applies to the exact value ``x * 2**frac``: ``nearest_even``, ``nearest_away``,
    ``toward_zero``, ``floor``, ``ceil`` or ``stochastic`` (round up with probability equal to
    the fractional part, drawn from the counter hash of ``(seed, offset + i)`` for flat index
    ``i``; ``sr_bits=k`` uses k random bits, default 53). ``overflow``: ``saturate`` or ``wrap``
    (two's complement modulo ``2**word``). ``seed=None`` with stochastic rounding draws a seed,
    recorded in ``stats.seed``. NaN raises ValueError unless ``nan="zero"``; +-inf saturate
    (wrap raises). Integer input is converted to float64 when exact. ``backend``: ``"auto"``,
    ``"numpy"``, ``"numba"`` or ``"cuda"`` (CuPy arrays; numpy input is copied to the GPU and back).

    ``out``: an array to write the result into, and return (numpy's convention, e.g. for buffers
    reused across training steps): x's shape; a numpy array for numpy input, a CuPy array on x's
    device for CuPy input; writeable; a float16/32/64 dtype that holds every value of ``fmt``
    exactly (any of them that ``quantize`` could return, not only x's); any strides; it may be
    ``x`` itself (in-place rounding). The bits are those of the call without ``out`` (converted
    exactly to ``out.dtype``). A bad ``out`` raises TypeError/ValueError before anything is
    written; an error met while rounding (NaN, infinity with wrap) may leave ``out`` partly
    written, unless it overlaps ``x`` (then it goes through a temporary: ``x`` is kept).
    """
    if not (isinstance(fmt, Fixed) or isinstance(fmt, FloatFormat)):  # Fixed first: the common case
        raise TypeError(f"fmt must be a Fixed or FloatFormat, got {type(fmt).__name__}")
    return _bound(fmt, rounding, overflow, sr_bits, nan)(x, seed=seed, offset=offset,
                                                         backend=backend, stats=stats, out=out)


@dlpack_io
def to_raw(x: Any, fmt: Fixed, rounding: str = "nearest_even", overflow: str = "saturate", *,
           seed: Optional[int] = None, offset: int = 0, sr_bits: Optional[int] = None,
           backend: str = "auto", stats: Optional[QuantStats] = None, nan: str = "raise",
           out: Any = None) -> Any:
    """The raw int64 integers of ``quantize(x, fmt, ...)`` (value = raw * 2**-frac), any word.

    ``out``: as for `quantize`, with dtype int64."""
    if not isinstance(fmt, Fixed):
        raise TypeError(f"fmt must be a Fixed format, got {type(fmt).__name__}")
    return _bound(fmt, rounding, overflow, sr_bits, nan)._general(x, seed, offset, backend,
                                                                  stats, out, as_raw=True)


def from_raw(raw: Any, fmt: Fixed, dtype: Any = np.float64) -> Any:
    """Values ``raw * 2**-frac`` of raw integers in ``[fmt.raw_min, fmt.raw_max]``.

    ``dtype`` must hold every value of ``fmt`` exactly (ValueError otherwise).
    """
    if not isinstance(fmt, Fixed):
        raise TypeError(f"fmt must be a Fixed format, got {type(fmt).__name__}")
    out_dtype = check_result_dtype(fmt, dtype)
    xp = array_module(raw)
    arr = xp.asarray(raw)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"raw must be an integer array, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < fmt.raw_min or int(arr.max()) > fmt.raw_max):
        raise ValueError(
            f"raw must lie in [{fmt.raw_min}, {fmt.raw_max}] for {fmt}, "
            f"got values in [{int(arr.min())}, {int(arr.max())}]"
        )
    out = (arr.astype(np.float64) * fmt.step).astype(out_dtype)
    return out[()] if out.ndim == 0 else out


@functools.lru_cache(maxsize=256)
def _cached_bound(fmt: Union[Fixed, FloatFormat], rounding: str, overflow: str,
                  sr_bits: Optional[int], nan: str) -> Quantizer:
    return Quantizer(fmt, rounding, overflow, sr_bits=sr_bits, nan=nan)


def _bound(fmt: Union[Fixed, FloatFormat], rounding: Any, overflow: Any, sr_bits: Any,
           nan: Any) -> Quantizer:
    """The `Quantizer` of a `quantize` call, cached only for exact ``str`` modes and an
    ``int``/None ``sr_bits`` (so that e.g. ``True`` or ``1.0`` never hit the entry of ``1``, and
    unhashable arguments get the checks' own errors)."""
    if (type(rounding) is str and type(overflow) is str and type(nan) is str
            and (sr_bits is None or type(sr_bits) is int)):
        return _cached_bound(fmt, rounding, overflow, sr_bits, nan)
    return Quantizer(fmt, rounding, overflow, sr_bits=sr_bits, nan=nan)
