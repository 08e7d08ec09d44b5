"""Quantization to a `FloatFormat`: the numpy oracle and the backend dispatch.

Rounding (applied to the exact value, in sign-magnitude form as float hardware does). For a finite
``x != 0`` with ``|x|`` in the binade ``[2^e, 2^(e+1))``, the grid step is ``2^q`` with
``q = max(e, emin) - man`` (the exponent range is unbounded above: values past ``max`` are rounded
on the grid of their own binade and then overflow). ``|x| / 2^q = n + f`` (integer ``n``,
``0 <= f < 1``) is rounded to ``n`` or ``n + 1``:

``nearest_even`` / ``nearest_away``: nearest, ties to even ``n`` / away from zero;
``toward_zero``; ``floor`` (toward -inf); ``ceil`` (toward +inf);
``stochastic``: away from zero iff ``r < floor(f * 2^k)``, ``r`` the top ``k`` bits of the
counter-based draw for flat index ``offset + i`` (``k = sr_bits``, default 53), so the probability
of rounding away is ``f`` truncated to ``k`` bits: the bias is toward zero, less than ``2^-k``
units of the last place, symmetric in the sign (the fixed-point rule rounds toward +inf instead,
because a two's-complement datapath truncates toward -inf).

Overflow (a rounded magnitude above ``fmt.max``; an input +-inf counts as overflowing too):
``"saturate"``: +-max; ``"inf"`` (``specials="ieee"`` only): as IEEE 754 — +-inf, except that the
directed modes that round toward zero for that sign (``toward_zero``, ``floor`` for ``x > 0``,
``ceil`` for ``x < 0``) give +-max, and an input +-inf stays +-inf; ``"nan"`` (formats with a NaN):
NaN, what ml_dtypes does for float8_e4m3fn / *fnuz casts.

Underflow: ``subnormals=False`` flushes a nonzero result below ``2^emin`` *after* rounding on the
subnormal grid to +-0 (output flush, as FTZ hardware), whatever the rounding mode, so ``ceil`` of
a tiny positive value gives +0. Signs: -0.0 stays -0.0 and a negative value that rounds to zero
gives -0.0, except in ``fnuz`` formats (no -0: +0).

NaN input: ValueError (with the count and the first index) unless ``nan="zero"`` (+0) or
``nan="propagate"`` (NaN; formats with a NaN code only).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _float_kernels
from ._backend import run_elementwise
from ._counter_rng import DEFAULT_SR_BITS, random_bits, seed_key
from ._float_format import FloatFormat
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


def _away_on_overflow(rounding: str, neg: np.ndarray) -> np.ndarray:
    """Where IEEE overflow goes to inf (True) rather than to max (False)."""
    if rounding == "toward_zero":
        return np.zeros_like(neg)
    if rounding == "floor":
        return neg
    if rounding == "ceil":
        return ~neg
    return np.ones_like(neg)


def reference_float_quantize(x, fmt: FloatFormat, rounding: str = "nearest_even",
                             overflow: str = "saturate", *, bits: np.ndarray | None = None,
                             sr_bits: int | None = None, nan: str = "propagate"):
    """The oracle: ``(y, overflowed, flushed)`` for float64 ``x`` (any shape, NaNs allowed).

    ``y`` is float64; ``overflowed`` marks elements whose magnitude exceeded ``fmt.max``
    (including +-inf inputs); ``flushed`` marks nonzero finite inputs whose result is zero.
    ``bits`` are the 64-bit draws (uint64, flat, one per element) for ``stochastic``.
    """
    x = np.asarray(x, dtype=np.float64)
    neg = np.signbit(x)
    a = np.abs(x)
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.maximum(np.frexp(a)[1] - 1, fmt.emin)
        q = (e - fmt.man).astype(np.int32)
        scaled = np.ldexp(a, -q)                   # exact unless < 2^-1022 (then f < 2^-969)
        n = np.floor(scaled)
        f = scaled - n                             # exact
        inexact = np.ldexp(n, q) != a
        if rounding == "nearest_even":
            up = (f > 0.5) | ((f == 0.5) & (np.fmod(n, 2.0) == 1.0))
        elif rounding == "nearest_away":
            up = f >= 0.5
        elif rounding == "toward_zero":
            up = np.zeros_like(inexact)
        elif rounding == "floor":
            up = inexact & neg
        elif rounding == "ceil":
            up = inexact & ~neg
        elif rounding == "stochastic":
            k = DEFAULT_SR_BITS if sr_bits is None else sr_bits
            t = np.where(finite, np.floor(np.ldexp(f, k)), 0.0).astype(np.uint64)
            r = np.asarray(bits, dtype=np.uint64).reshape(x.shape) >> np.uint64(64 - k)
            up = r < t
        else:
            raise ValueError(f"rounding: unknown mode {rounding!r}")
        mag = np.ldexp(n + up, q)
    overflowed = (finite & (mag > fmt.max)) | np.isinf(x)
    if overflow == "saturate":
        big = np.full_like(a, fmt.max)
    elif overflow == "inf":
        big = np.where(_away_on_overflow(rounding, neg) | np.isinf(x), np.inf, fmt.max)
    else:
        big = np.full_like(a, np.nan)
    mag = np.where(overflowed, big, mag)
    if not fmt.subnormals:
        mag = np.where(mag < fmt.tiny, 0.0, mag)
    flushed = finite & (a != 0) & (mag == 0)
    y = np.copysign(mag, np.where(neg, -1.0, 1.0))
    if not fmt.has_neg_zero:
        y = np.where(y == 0, 0.0, y)
    isnan = np.isnan(x)
    if nan == "zero":
        y = np.where(isnan, 0.0, y)
    else:
        y = np.where(isnan, np.nan, y)
    return y, overflowed, flushed


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
