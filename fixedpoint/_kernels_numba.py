"""The Numba CPU backend: one fused parallel pass per call, compiled once per dtype and cached.

Work is split into blocks of ``_stats.BLOCK`` elements (``prange`` over blocks); each block keeps
its own counts, maximum error and sequential error sum, so the statistics equal the numpy
oracle's bit for bit whatever the thread count.

Two block loops give the same bits:

- ``_general_block`` runs the shared scalar functions of ``_fixed_scalar`` element by element
  (the CUDA kernel runs the same ones); it handles everything: wrap, NaN, ``word > 52``.
- ``_fast_block`` is the same rule as two simple passes per block that LLVM vectorises (SIMD
  rounding, 64-bit multiplies for the hash): round (one loop per mode) into a scratch block,
  then saturate or wrap. It needs ``word <= 52`` (every raw is exact in float64) and a block
  without NaN (and, with wrap, without ``|x * 2**frac| >= 2**52``): a block where it meets one
  is redone by ``_general_block``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from . import _counter_rng
from . import _fixed_scalar as fs
from ._stats import BLOCK

_scale_input = njit(cache=True)(fs.scale_input)
_round_scaled = njit(cache=True)(fs.round_scaled)
_apply_overflow = njit(cache=True)(fs.apply_overflow)
_scalar_bits = njit(cache=True)(_counter_rng.scalar_bits)

_N_SLOTS = 5  # status bit 2**j is counted in slot j: saturated, wrapped, flushed, nan, inf-wrap


def _store_raw(out, i, raw, step):
    """``out[i]`` = the int64 ``raw`` (int output) or its value ``raw * step`` (float output)."""


@overload(_store_raw)
def _store_raw_impl(out, i, raw, step):
    if isinstance(out.dtype, types.Integer):
        def store_int(out, i, raw, step):
            out[i] = raw
        return store_int

    def store_float(out, i, raw, step):
        out[i] = np.float64(raw) * step
    return store_float


def _store_rounded(out, i, r, step):
    """``out[i]`` from the integer-valued float64 ``r`` (exact: ``|r| < 2**53``)."""


@overload(_store_rounded)
def _store_rounded_impl(out, i, r, step):
    if isinstance(out.dtype, types.Integer):
        def store_int(out, i, r, step):
            out[i] = np.int64(r)
        return store_int

    def store_float(out, i, r, step):
        out[i] = (r + 0.0) * step  # + 0.0 turns -0.0 into +0.0
    return store_float


@njit(cache=True)
def _general_block(x, out, start, want_errors, mode, wrap, scale, modulus, inv_modulus, lo, hi,
                   raw_min, raw_max, mask, step, key, counter0, shift, kpow, counts):
    """Element-by-element loop over the block views ``x``, ``out`` (flat index ``start + i``);
    returns (max error, sequential error sum) of the block."""
    e_max = 0.0
    e_sum = 0.0
    c0 = counter0 + np.uint64(start)
    for i in range(x.size):
        xv = np.float64(x[i])
        v, status = _scale_input(xv, wrap, scale, modulus, inv_modulus)
        raw = np.int64(0)
        if status != fs.ST_NAN and status != fs.ST_INF_WRAP:
            r = np.int64(0)
            if mode == fs.STOCHASTIC:
                r = np.int64(_scalar_bits(key, c0 + np.uint64(i)) >> shift)
            rv = _round_scaled(v, mode, r, kpow)
            raw, status = _apply_overflow(rv, xv, status, wrap, lo, hi, raw_min, raw_max, mask)
        _store_raw(out, i, raw, step)
        if want_errors and status != fs.ST_NAN:
            e = abs(np.float64(raw) * step - xv)
            e_sum += e
            if e > e_max:
                e_max = e
        if status != 0:
            slot = 0
            while status > 1:
                status >>= 1
                slot += 1
            counts[slot] += 1
    return e_max, e_sum


@njit(cache=True)
def _directed_in(xv, scale):
    """``x * 2**frac``; an underflowed nonzero product becomes ``+-TINY`` (keeps its sign)."""
    v = xv * scale
    signed_tiny = math.copysign(fs.TINY, xv)
    return signed_tiny if (abs(v) < fs.TINY) & (xv != 0.0) else v


@njit(cache=True)
def _away(v):
    t = np.trunc(v)
    d = v - t  # exact, in (-1, 1)
    return t + np.float64(d >= 0.5) - np.float64(d <= -0.5)


@njit(cache=True)
def _stochastic(v, bits, shift, kf):
    """``floor(v) + (r < floor(f * 2**k))``, ``f = v - floor(v)``, as ``fs.round_scaled``.

    ``floor(f * 2**k) = floor(v * 2**k) - floor(v) * 2**k`` exactly: both terms are exact
    (power-of-two scaling) and their exact difference, in ``[0, 2**k)``, is a float64. For
    ``|v| >= 2**52`` it is 0, and NaN (never up) where ``v * 2**k`` overflows.
    """
    low = np.floor(v)
    threshold = np.floor(v * kf) - low * kf
    return low + np.float64(np.float64(bits >> shift) < threshold)


@njit(cache=True)
def _round_block(x, rounded, start, mode, scale, key, counter0, shift, kpow):
    """``rounded[i]`` = ``x[i] * 2**frac`` rounded, one simple loop per mode (vectorised)."""
    if mode == fs.NEAREST_EVEN:
        for i in range(x.size):
            rounded[i] = np.rint(np.float64(x[i]) * scale)  # IEEE ties to even: exact
    elif mode == fs.TOWARD_ZERO:
        for i in range(x.size):
            rounded[i] = np.trunc(np.float64(x[i]) * scale)
    elif mode == fs.NEAREST_AWAY:
        for i in range(x.size):
            rounded[i] = _away(np.float64(x[i]) * scale)
    elif mode == fs.FLOOR:
        for i in range(x.size):
            rounded[i] = np.floor(_directed_in(np.float64(x[i]), scale))
    elif mode == fs.CEIL:
        for i in range(x.size):
            rounded[i] = np.ceil(_directed_in(np.float64(x[i]), scale))
    else:
        c0 = counter0 + np.uint64(start)
        kf = np.float64(kpow)
        for i in range(x.size):
            bits = _scalar_bits(key, c0 + np.uint64(i))
            rounded[i] = _stochastic(_directed_in(np.float64(x[i]), scale), bits, shift, kf)


@njit(cache=True)
def _saturate_block(x, rounded, out, lo, top, step):
    """Clamp and store; returns the (special: NaN, saturated, flushed) counts."""
    n_special = n_outside = n_flush = 0
    for i in range(x.size):
        rv = rounded[i]
        _store_rounded(out, i, min(max(rv, lo), top), step)
        n_special += rv != rv
        n_outside += (rv > top) | (rv < lo)
        n_flush += (rv == 0.0) & (x[i] != 0.0)
    return n_special, n_outside, n_flush


@njit(cache=True)
def _wrap_block(x, rounded, out, lo, top, wrap_size, inv_wrap_size, step):
    """Reduce modulo ``2**word`` (exact for ``|rv| < 2**52``) and store; returns the (special:
    NaN or ``|rv| >= 2**52``, inf included, wrapped, flushed) counts."""
    n_special = n_outside = n_flush = 0
    for i in range(x.size):
        rv = rounded[i]
        _store_rounded(out, i, rv - np.floor((rv - lo) * inv_wrap_size) * wrap_size, step)
        n_special += (rv != rv) | (abs(rv) >= fs.TWO52)
        n_outside += (rv > top) | (rv < lo)
        n_flush += (rv == 0.0) & (x[i] != 0.0)
    return n_special, n_outside, n_flush


@njit(cache=True)
def _fast_block(x, out, start, mode, wrap, scale, lo, top, wrap_size, inv_wrap_size, step, key,
                counter0, shift, kpow, counts):
    """Two vectorised passes over the block views ``x``, ``out`` (flat index ``start + i``;
    ``range(x.size)`` spares Numba's negative-index checks): round, then overflow. Needs
    ``word <= 52``. Returns False (``counts`` untouched) when the block holds a special value,
    to be redone by ``_general_block``."""
    rounded = np.empty(x.size)
    _round_block(x, rounded, start, mode, scale, key, counter0, shift, kpow)
    if wrap:
        special, outside, flushed = _wrap_block(x, rounded, out, lo, top, wrap_size,
                                                inv_wrap_size, step)
    else:
        special, outside, flushed = _saturate_block(x, rounded, out, lo, top, step)
    if special:
        return False
    counts[1 if wrap else 0] += outside
    counts[2] += flushed
    return True


@njit(cache=True)
def _fast_block_errors(x, out, unit):
    """(max, sequential sum) of ``|out * unit - x|`` over a block (``unit``: 1, or step for raw)."""
    e_max = 0.0
    e_sum = 0.0
    for i in range(x.size):
        e = abs(np.float64(out[i]) * unit - np.float64(x[i]))
        e_sum += e
        e_max = max(e_max, e)
    return e_max, e_sum


@njit(parallel=True, cache=True)
def _quantize_blocks(x, out, fast, want_errors, unit, mode, wrap, scale, modulus, inv_modulus, lo,
                     hi, raw_min, raw_max, mask, step, key, counter0, k, kpow, counts, err_max,
                     err_sum):
    shift = np.uint64(64 - k)
    top = np.float64(raw_max)
    wrap_size = np.float64(mask) + 1.0
    inv_wrap_size = 1.0 / wrap_size
    for b in prange(counts.shape[0]):
        start = b * BLOCK
        xb = x[start:start + BLOCK]
        ob = out[start:start + BLOCK]
        if fast and _fast_block(xb, ob, start, mode, wrap, scale, lo, top, wrap_size,
                                inv_wrap_size, step, key, counter0, shift, kpow, counts[b]):
            if want_errors:
                err_max[b], err_sum[b] = _fast_block_errors(xb, ob, unit)
        else:
            err_max[b], err_sum[b] = _general_block(
                xb, ob, start, want_errors, mode, wrap, scale, modulus, inv_modulus, lo, hi,
                raw_min, raw_max, mask, step, key, counter0, shift, kpow, counts[b])


def quantize_flat(x: np.ndarray, p: fs.Params, seed: int, offset: int, out_dtype, want_errors: bool):
    """Backend entry point, as ``_oracle.quantize_flat`` (``seed``/``offset`` are in ``p``)."""
    out_dtype = np.dtype(out_dtype)
    # float16 runs through float32 (exact both ways: the format fits float16)
    xk = x.astype(np.float32) if x.dtype == np.float16 else x
    out = np.empty(x.size, np.float32 if out_dtype == np.float16 else out_dtype)
    nblocks = -(-x.size // BLOCK)
    counts = np.zeros((nblocks, _N_SLOTS), dtype=np.int64)
    err_max = np.zeros(nblocks)
    err_sum = np.zeros(nblocks)
    fast = p.mask < (1 << 52)  # word <= 52: every step of the fast loops is exact
    unit = 1.0 if out.dtype.kind == "f" else p.step
    _quantize_blocks(xk, out, fast, want_errors, unit, p.mode, p.wrap, p.scale, p.modulus,
                     p.inv_modulus, p.lo, p.hi, p.raw_min, p.raw_max, p.mask, p.step, p.key,
                     p.counter0, p.k, p.kpow, counts, err_max, err_sum)
    out = out.astype(out_dtype, copy=False)
    if not want_errors:
        return out, counts.sum(axis=0), 0.0, None
    return out, counts.sum(axis=0), float(err_max.max(initial=0.0)), err_sum
