"""The numpy backend: vectorised fixed-point quantization, written to be read as the specification.

For each element (flat C order) of ``x``, in float64:

1. NaN -> raw 0 (the caller raises unless ``nan="zero"``); with wrap, +-inf is an error.
2. With wrap, ``|x| >= 2**(word - frac)`` is reduced by the exact ``fmod(x, 2**(word - frac))``:
   that moves ``x * 2**frac`` by a multiple of ``2**word``, which changes neither the rounding
   (the fractional part and the parity are kept) nor the wrapped result.
3. ``v = x * 2**frac`` is exact (power-of-two scaling) unless it overflows (then ``+-inf``, which
   saturates) or underflows (``|v| < 2**-1022``: replaced by ``+-2**-1022``, which every mode
   rounds like the exact value, as all such values lie far inside (-1, 1)).
4. Round ``v`` to an integer (``rounding``), working on ``|v|`` where everything is exact.
   Stochastic: with ``r`` the top ``k`` bits of the counter hash of ``(seed, offset + i)`` and
   ``f = v - floor(v)`` the exact fractional part, round up iff ``r < floor(f * 2**k)``.
5. Overflow: saturate clamps to ``[raw_min, raw_max]``; wrap takes the two's-complement residue
   modulo ``2**word``. The comparisons use ``raw_max + 1`` (a power of two, exact in float64).
"""
from __future__ import annotations

import numpy as np

from . import _counter_rng
from ._fixed_scalar import (
    CEIL,
    FLOOR,
    NEAREST_AWAY,
    NEAREST_EVEN,
    ST_FLUSHED,
    ST_INF_WRAP,
    ST_NAN,
    ST_SATURATED,
    ST_WRAPPED,
    STOCHASTIC,
    TINY,
    TOWARD_ZERO,
    TWO52,
    Params,
)
from ._stats import block_sums


def round_scaled(v: np.ndarray, mode: int, r: np.ndarray, kpow: int) -> np.ndarray:
    """Round finite float64 values to integer-valued floats (``r``: k-bit draws, ``kpow = 2**k``)."""
    a = np.abs(v)
    t = np.trunc(a)
    g = a - t  # exact fractional part of |v| (NaN where |v| is inf; those are returned as is)
    neg = v < 0
    if mode == NEAREST_EVEN:
        up = (g > 0.5) | ((g == 0.5) & (np.fmod(t, 2.0) == 1.0))
    elif mode == NEAREST_AWAY:
        up = g >= 0.5
    elif mode == FLOOR:
        up = neg & (g > 0)
    elif mode == CEIL:
        up = ~neg & (g > 0)
    elif mode == STOCHASTIC:
        gk = g * kpow
        # threshold floor(f * 2**k): f = g for v >= 0, f = 1 - g for v < 0
        threshold = np.where(neg, kpow - np.ceil(gk), np.floor(gk))
        toward_plus_inf = r < np.where(g > 0, threshold, 0.0)
        up = (g > 0) & (toward_plus_inf != neg)
    elif mode == TOWARD_ZERO:
        up = np.zeros(v.shape, dtype=bool)
    else:
        raise ValueError(f"unknown rounding mode code {mode!r}")
    magnitude = t + up
    return np.where(a >= TWO52, v, np.where(neg, -magnitude, magnitude))


def quantize_raw(x: np.ndarray, p: Params, seed: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw int64 values and uint8 status bits for the flat float64 array ``x``."""
    status = np.zeros(x.shape, dtype=np.uint8)
    with np.errstate(all="ignore"):
        nan = np.isnan(x)
        status[nan] = ST_NAN
        xr = np.where(nan, 0.0, x)
        if p.wrap:
            inf = np.isinf(x)
            status[inf] = ST_INF_WRAP
            xr = np.where(inf, 0.0, xr)
            big = np.abs(xr) >= p.modulus
            status[big] = ST_WRAPPED
            xr = np.where(big, np.fmod(xr, p.modulus), xr)
        v = xr * p.scale
        v = np.where((np.abs(v) < TINY) & (xr != 0), np.copysign(TINY, xr), v)
        r = (_counter_rng.random_ints(seed, offset, x.size, p.k) if p.mode == STOCHASTIC
             else np.zeros(x.shape, dtype=np.int64))
        rv = round_scaled(v, p.mode, r, p.kpow)
        status[(rv == 0) & (xr != 0) & (status == 0)] = ST_FLUSHED
        above, below = rv >= p.hi, rv < p.lo
        outside = above | below
        raw = np.where(outside, 0.0, rv).astype(np.int64)
        if p.wrap:
            wrapped = ((np.where(outside, rv, 0.0).astype(np.int64) - p.raw_min) & p.mask) + p.raw_min
            raw = np.where(outside, wrapped, raw)
            status[outside] = ST_WRAPPED
        else:
            raw = np.where(above, p.raw_max, np.where(below, p.raw_min, raw))
            status[outside] = ST_SATURATED
    return raw, status


def quantize_flat(x: np.ndarray, p: Params, seed: int, offset: int, out_dtype, want_errors: bool):
    """Backend entry point: ``(out, counts[5], max_error, block_sums or None)`` for flat ``x``.

    ``out_dtype`` is a float dtype (values ``raw * step``) or int64 (raw integers).
    """
    x64 = x.astype(np.float64)
    raw, status = quantize_raw(x64, p, seed, offset)
    counts = np.array([np.count_nonzero(status == bit) for bit in
                       (ST_SATURATED, ST_WRAPPED, ST_FLUSHED, ST_NAN, ST_INF_WRAP)], dtype=np.int64)
    values = raw.astype(np.float64) * p.step
    out = raw if np.dtype(out_dtype) == np.int64 else values.astype(out_dtype)
    if not want_errors:
        return out, counts, 0.0, None
    with np.errstate(invalid="ignore"):
        errors = np.where(status == ST_NAN, 0.0, np.abs(values - x64))
    return out, counts, float(errors.max(initial=0.0)), block_sums(errors)
