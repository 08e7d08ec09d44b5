"""Quantization to a `FloatFormat`: the argument checks and the backend dispatch.

The rule (rounding, overflow, underflow, signs, NaN) is stated in :mod:`fixedpoint._float_oracle`,
whose ``reference_float_quantize`` is the ``"numpy"`` backend; the Numba and CUDA kernels
(``_float_kernels``) give the same bits.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _float_kernels
from ._counter_rng import random_bits, seed_key
from ._float_format import FloatFormat
from ._float_oracle import reference_float_quantize
from ._modes import Overflow, Rounding, mode_names
from ._quantize import _choose_backend
from ._stats import QuantStats, block_sums, check_stats
from ._validate import (
    array_module,
    as_float_array,
    check_choice,
    check_no_nan,
    check_offset,
    check_rounding,
    check_sr_bits,
    is_cupy_array,
    resolve_seed,
)

#: Rounding mode names and their kernel codes (``_modes.Rounding``).
ROUNDING_CODES = {name: int(mode) for name, mode in zip(mode_names(tuple(Rounding)), Rounding)}
#: Overflow policies of a float format.
FLOAT_OVERFLOW = mode_names((Overflow.SATURATE, Overflow.INF, Overflow.NAN))
#: NaN-input policies (``"raise"`` is checked before any kernel runs).
FLOAT_NAN = ("raise", "zero", "propagate")


def check_float_overflow(fmt: FloatFormat, overflow: str) -> str:
    """``overflow`` if valid for ``fmt``; ValueError when the format cannot hold the result."""
    if overflow not in FLOAT_OVERFLOW:
        raise ValueError(f"overflow must be one of {FLOAT_OVERFLOW} for a float format, "
                         f"got {overflow!r}")
    if overflow == "inf" and not fmt.has_inf:
        raise ValueError(f"overflow='inf': format {fmt} has no infinity; use 'saturate'"
                         + (" or 'nan'" if fmt.has_nan else ""))
    if overflow == "nan" and not fmt.has_nan:
        raise ValueError(f"overflow='nan': format {fmt} has no NaN; use 'saturate'")
    return overflow


def check_float_result_dtype(fmt: FloatFormat, dtype: Any) -> np.dtype:
    """``dtype`` if it holds every value of ``fmt`` exactly, else ValueError suggesting float64."""
    dtype = np.dtype(dtype)
    if not fmt.fits(dtype):
        info = np.finfo(dtype)
        raise ValueError(
            f"a {dtype} result cannot hold every value of {fmt} exactly ({dtype} holds man <= "
            f"{info.nmant}, exponents {info.minexp}..{info.maxexp - 1}); pass float64 input")
    return dtype


def kernel_args(fmt: FloatFormat, rounding: str, overflow: str, nan: str, seed, offset, k):
    """The scalar arguments of the Numba/CUDA kernels after ``(x, out, flags, with_flags)``."""
    mode = ROUNDING_CODES[rounding]
    key = np.uint64(seed_key(seed) if seed is not None else 0)
    return (fmt.emin, fmt.man, fmt.max, 0.0 if fmt.subnormals else fmt.tiny, fmt.has_neg_zero,
            mode, *_float_kernels.policy_values(fmt.max, mode, overflow, nan), key,
            np.uint64(offset), k)


def record_stats(stats: QuantStats, x, y, flags, seed) -> None:
    """Add one call's counts and errors (errors over finite inputs with finite results;
    CuPy arrays are copied to the host for this)."""
    x, y, flags = (np.asarray(a.get() if is_cupy_array(a) else a) for a in (x, y, flags))
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    both = np.isfinite(x64) & np.isfinite(y64)
    err = np.where(both, np.abs(y64 - np.where(both, x64, 0.0)), 0.0)
    stats.add(x.size, np.count_nonzero(np.isnan(x64)), np.count_nonzero(flags == 1), 0,
              np.count_nonzero(flags == 2), err.max(initial=0.0), math.fsum(block_sums(err)), seed)


def quantize_float(x, fmt: FloatFormat, *, rounding: str = "nearest_even",
                   overflow: str = "saturate", seed: int | None = None, offset: int = 0,
                   sr_bits: int | None = None, backend: str = "auto",
                   stats: QuantStats | None = None, nan: str = "raise"):
    """``x`` rounded to the float format ``fmt`` (same shape and float dtype as ``x``).

    Semantics in the module docstring. ``backend``: ``"numpy"`` (the oracle), ``"numba"``
    (parallel CPU kernel), ``"cuda"`` (CuPy input), ``"auto"`` (cuda for CuPy arrays, numba for
    numpy arrays of at least ``NUMBA_THRESHOLD`` elements, else numpy); all give the same bits.
    ``stats`` errors are taken over finite inputs with finite results (an overflow to +-inf/NaN
    and an infinite input are counted in ``stats.saturated``).
    """
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"fmt must be a FloatFormat, got {type(fmt).__name__}")
    rounding = check_rounding(rounding)
    overflow = check_float_overflow(fmt, overflow)
    nan = check_choice(nan, "nan", FLOAT_NAN)
    if nan == "propagate" and not fmt.has_nan:
        raise ValueError(f"nan='propagate': format {fmt} has no NaN; use 'raise' or 'zero'")
    k = check_sr_bits(sr_bits, rounding)
    offset = check_offset(offset)
    if rounding == "stochastic" or seed is not None:
        seed = resolve_seed(seed)
    seed = seed if rounding == "stochastic" else None
    check_stats(stats)
    arr = as_float_array(x)
    dtype = check_float_result_dtype(fmt, arr.dtype)
    if nan == "raise":
        check_no_nan(arr)
    backend = _choose_backend(backend, arr)
    host_input = not is_cupy_array(arr)
    if backend == "cuda" and host_input:
        import cupy

        arr = cupy.asarray(arr)
    xp = array_module(arr)
    flat = xp.ascontiguousarray(arr).reshape(-1)
    if backend == "numpy":
        bits = random_bits(seed, offset, flat.size) if seed is not None else None
        y, overflowed, flushed = reference_float_quantize(flat, fmt, rounding, overflow, bits=bits,
                                                          sr_bits=k, nan=nan)
        out = y.astype(dtype)
        flags = np.where(overflowed, 1, np.where(flushed, 2, 0)).astype(np.int8)
    else:
        # The kernels take float32/float64; float16 goes through float32 (both casts exact).
        work = flat.astype(np.float32) if dtype == np.float16 else flat
        out = xp.empty(flat.size, dtype=work.dtype)
        flags = xp.empty(flat.size if stats is not None else 0, dtype=np.int8)
        args = (work, out, flags, stats is not None,
                *kernel_args(fmt, rounding, overflow, nan, seed, offset, k))
        if backend == "numba":
            _float_kernels.float_quantize_cpu(*args)
        else:
            _float_kernels.launch_cuda(*args)
        out = out.astype(dtype, copy=False)
    if stats is not None:
        record_stats(stats, flat, out, flags, seed)
    out = out.reshape(arr.shape)
    if backend == "cuda" and host_input:
        out = out.get()
    return out[()] if out.ndim == 0 else out
