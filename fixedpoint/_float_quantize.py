"""Quantization to a `FloatFormat`: the argument checks and the backend dispatch.

The rule (rounding, overflow, underflow, signs, NaN) is stated in :mod:`fixedpoint._float_oracle`,
whose ``reference_float_quantize`` is the ``"numpy"`` backend; the Numba and CUDA kernels
(``_float_kernels``) give the same bits.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _float_kernels
from ._backend import run_elementwise
from ._counter_rng import random_bits, seed_key
from ._float_format import FloatFormat
from ._float_oracle import reference_float_quantize
from ._modes import Overflow, Rounding, mode_names
from ._out import check_out, holding_dtypes
from ._stats import QuantStats, check_stats
from ._validate import (
    as_float_array,
    check_choice,
    check_no_nan,
    check_offset,
    check_rounding,
    check_sr_bits,
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


def check_float_modes(fmt: FloatFormat, rounding: Any, overflow: Any, nan: Any, sr_bits: Any) -> int:
    """Check the mode arguments of `quantize_float` for ``fmt`` (ValueError naming the argument);
    returns the number of random bits of a stochastic decision."""
    rounding = check_rounding(rounding)
    check_float_overflow(fmt, overflow)
    nan = check_choice(nan, "nan", FLOAT_NAN)
    if nan == "propagate" and not fmt.has_nan:
        raise ValueError(f"nan='propagate': format {fmt} has no NaN; use 'raise' or 'zero'")
    return check_sr_bits(sr_bits, rounding)


def quantize_float(x, fmt: FloatFormat, *, rounding: str = "nearest_even",
                   overflow: str = "saturate", seed: int | None = None, offset: int = 0,
                   sr_bits: int | None = None, backend: str = "auto",
                   stats: QuantStats | None = None, nan: str = "raise", out: Any = None):
    """``x`` rounded to the float format ``fmt`` (same shape and float dtype as ``x``).

    Semantics in the module docstring. ``backend``: ``"numpy"`` (the oracle), ``"numba"``
    (parallel CPU kernel), ``"cuda"`` (CuPy input), ``"auto"`` (cuda for CuPy arrays, numba for
    numpy arrays of at least ``NUMBA_THRESHOLD`` elements, else numpy); all give the same bits.
    ``stats`` errors are taken over finite inputs with finite results (an overflow to +-inf/NaN
    and an infinite input are counted in ``stats.saturated``). ``out``: an array to write the
    result into, returned (see `fixedpoint._out`: x's shape, a float dtype that holds ``fmt``).
    """
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"fmt must be a FloatFormat, got {type(fmt).__name__}")
    k = check_float_modes(fmt, rounding, overflow, nan, sr_bits)
    return quantize_float_checked(x, fmt, rounding, overflow, nan, k, seed=seed, offset=offset,
                                  backend=backend, stats=stats, out=out)


def quantize_float_checked(x, fmt: FloatFormat, rounding: str, overflow: str, nan: str, k: int, *,
                           seed: int | None, offset: int, backend: str, stats: QuantStats | None,
                           out: Any = None):
    """`quantize_float` with modes already checked by `check_float_modes` (``k`` its result)."""
    offset = check_offset(offset)
    if rounding == "stochastic" or seed is not None:
        seed = resolve_seed(seed)
    seed = seed if rounding == "stochastic" else None
    check_stats(stats)
    arr = as_float_array(x)
    check_float_result_dtype(fmt, arr.dtype)
    if out is not None:
        check_out(out, arr, holding_dtypes(fmt.fits), f"every value of {fmt}")
    if nan == "raise":
        check_no_nan(arr)

    def oracle(flat):
        bits = random_bits(seed, offset, flat.size) if seed is not None else None
        y, overflowed, flushed = reference_float_quantize(flat, fmt, rounding, overflow, bits=bits,
                                                          sr_bits=k, nan=nan)
        return y, np.where(overflowed, 1, np.where(flushed, 2, 0)).astype(np.int8)

    def kernel(which, work, y, flags):
        args = (work, y, flags, flags.size > 0, *kernel_args(fmt, rounding, overflow, nan, seed, offset, k))
        if which == "numba":
            _float_kernels.float_quantize_cpu(*args)
        else:
            _float_kernels.launch_cuda(*args)

    return run_elementwise(arr, backend, oracle, kernel, stats=stats, seed=seed, out=out)
