"""The Numba CPU backend: one fused parallel pass per call, compiled once per dtype and cached.

Work is split into blocks of ``_stats.BLOCK`` elements (``prange`` over blocks); each block keeps
its own counts, maximum error and sequential error sum, so the statistics equal the numpy
oracle's bit for bit whatever the thread count.

Two block loops give the same bits:

- ``_general_block`` runs the shared scalar functions of ``_fixed_scalar`` element by element
  (the CUDA kernel runs the same ones); it handles everything, NaN, wrap of inf and
  ``word > 53`` raw output included.
- ``_fast_block`` is the same rule written branch-free so that LLVM vectorises it (SIMD rounding,
  selects, 64-bit multiplies for the hash). It needs ``word <= 52`` (every raw and wrap step is exact in float64) and
  blocks without NaN/inf-with-wrap: a block where it counts one is redone by ``_general_block``.
"""
from __future__ import annotations

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
def _general_block(x, out, start, stop, want_errors, mode, wrap, scale, modulus, inv_modulus,
                   lo, hi, raw_min, raw_max, mask, step, key, counter0, shift, kpow, counts):
    """Element-by-element loop; returns (max error, sequential error sum) of the block."""
    e_max = 0.0
    e_sum = 0.0
    for i in range(start, stop):
        xv = np.float64(x[i])
        v, status = _scale_input(xv, wrap, scale, modulus, inv_modulus)
        raw = np.int64(0)
        if status != fs.ST_NAN and status != fs.ST_INF_WRAP:
            r = np.int64(0)
            if mode == fs.STOCHASTIC:
                r = np.int64(_scalar_bits(key, counter0 + np.uint64(i)) >> shift)
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
def _fast_in(xv, scale, modulus, inv_modulus):
    """Exact ``x * 2**frac`` after the wrap reduction (``modulus = 0`` for saturate), branch-free."""
    q = xv * inv_modulus
    xr = 0.0 if abs(q) >= fs.TWO52 else xv - np.trunc(q) * modulus
    v = xr * scale
    tiny = (abs(v) < fs.TINY) & (xr != 0.0)  # underflowed: keep the sign for directed modes
    return v if not tiny else (fs.TINY if xr > 0.0 else -fs.TINY)


@njit(cache=True)
def _fast_out(out, i, xv, rv, wrap, big_from, lo, top, wrap_size, inv_wrap_size, step):
    """Store the overflow-handled ``rv``; returns the (special, outside, flushed) increments."""
    big = abs(xv) >= big_from
    special = (xv != xv) | (wrap & (abs(xv) == np.inf))
    outside = (rv > top) | (rv < lo) | big
    flushed = (rv == 0.0) & (xv != 0.0) & (not big)
    wrapped = rv - np.floor((rv - lo) * inv_wrap_size) * wrap_size
    _store_rounded(out, i, wrapped if wrap else min(max(rv, lo), top), step)
    return special, outside, flushed


@njit(cache=True)
def _away(v):
    t = np.trunc(v)
    d = v - t  # exact, in (-1, 1)
    return t + (1.0 if d >= 0.5 else (-1.0 if d <= -0.5 else 0.0))


@njit(cache=True)
def _stochastic(v, bits, shift, kf):
    """As ``fs.round_scaled``: up iff r < floor(f * 2**k), computed on |v|."""
    a = abs(v)
    t = np.trunc(a)
    g = a - t
    neg = v < 0.0
    gk = g * kf
    threshold = kf - np.ceil(gk) if neg else np.floor(gk)
    m = t + np.float64((g > 0.0) & ((np.float64(bits >> shift) < threshold) != neg))
    return -m if neg else m


@njit(cache=True)
def _fast_block(x, out, start, stop, mode, wrap, scale, modulus, inv_modulus, lo, top, wrap_size,
                inv_wrap_size, step, key, counter0, shift, kpow, counts):
    """Branch-free loops (one per mode) for ``word <= 52``; returns False (``counts`` untouched)
    when the block holds NaN, or +-inf with wrap, and must be redone by ``_general_block``."""
    n_special = n_outside = n_flush = 0
    big_from = modulus if wrap else np.inf
    m = modulus if wrap else 0.0
    inv_m = inv_modulus if wrap else 0.0
    args = (wrap, big_from, lo, top, wrap_size, inv_wrap_size, step)
    kf = np.float64(kpow)
    for i in range(start, stop):  # one loop per mode below; this one only for stochastic
        if mode != fs.STOCHASTIC:
            break
        xv = np.float64(x[i])
        rv = _stochastic(_fast_in(xv, scale, m, inv_m), _scalar_bits(key, counter0 + np.uint64(i)),
                         shift, kf)
        s, o, f = _fast_out(out, i, xv, rv, *args)
        n_special += s
        n_outside += o
        n_flush += f
    if mode == fs.NEAREST_EVEN:
        for i in range(start, stop):
            xv = np.float64(x[i])
            s, o, f = _fast_out(out, i, xv, np.rint(_fast_in(xv, scale, m, inv_m)), *args)
            n_special += s
            n_outside += o
            n_flush += f
    elif mode == fs.NEAREST_AWAY:
        for i in range(start, stop):
            xv = np.float64(x[i])
            s, o, f = _fast_out(out, i, xv, _away(_fast_in(xv, scale, m, inv_m)), *args)
            n_special += s
            n_outside += o
            n_flush += f
    elif mode == fs.TOWARD_ZERO:
        for i in range(start, stop):
            xv = np.float64(x[i])
            s, o, f = _fast_out(out, i, xv, np.trunc(_fast_in(xv, scale, m, inv_m)), *args)
            n_special += s
            n_outside += o
            n_flush += f
    elif mode == fs.FLOOR:
        for i in range(start, stop):
            xv = np.float64(x[i])
            s, o, f = _fast_out(out, i, xv, np.floor(_fast_in(xv, scale, m, inv_m)), *args)
            n_special += s
            n_outside += o
            n_flush += f
    elif mode == fs.CEIL:
        for i in range(start, stop):
            xv = np.float64(x[i])
            s, o, f = _fast_out(out, i, xv, np.ceil(_fast_in(xv, scale, m, inv_m)), *args)
            n_special += s
            n_outside += o
            n_flush += f
    if n_special:
        return False
    counts[1 if wrap else 0] += n_outside
    counts[2] += n_flush
    return True


@njit(parallel=True, cache=True)
def _quantize_blocks(x, out, fast, want_errors, mode, wrap, scale, modulus, inv_modulus, lo, hi,
                     raw_min, raw_max, mask, step, key, counter0, k, kpow, counts, err_max,
                     err_sum):
    n = x.size
    shift = np.uint64(64 - k)
    top = np.float64(raw_max)
    wrap_size = np.float64(mask) + 1.0
    inv_wrap_size = 1.0 / wrap_size
    for b in prange(counts.shape[0]):
        start = b * BLOCK
        stop = min(n, start + BLOCK)
        done = False
        if fast:
            done = _fast_block(x, out, start, stop, mode, wrap, scale, modulus, inv_modulus, lo,
                               top, wrap_size, inv_wrap_size, step, key, counter0, shift, kpow,
                               counts[b])
        if done:
            if want_errors:
                e_max = 0.0
                e_sum = 0.0
                for i in range(start, stop):
                    e = abs(np.float64(out[i]) * (1.0 if out.dtype.kind == "f" else step)
                            - np.float64(x[i]))
                    e_sum += e
                    if e > e_max:
                        e_max = e
                err_max[b] = e_max
                err_sum[b] = e_sum
        else:
            err_max[b], err_sum[b] = _general_block(
                x, out, start, stop, want_errors, mode, wrap, scale, modulus, inv_modulus, lo, hi,
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
    fast = p.mask < (1 << 52)  # |rounded| <= 2**52: every step of the fast loop is exact
    _quantize_blocks(xk, out, fast, want_errors, p.mode, p.wrap, p.scale, p.modulus,
                     p.inv_modulus, p.lo, p.hi, p.raw_min, p.raw_max, p.mask, p.step, p.key,
                     p.counter0, p.k, p.kpow, counts, err_max, err_sum)
    out = out.astype(out_dtype, copy=False)
    if not want_errors:
        return out, counts.sum(axis=0), 0.0, None
    return out, counts.sum(axis=0), float(err_max.max(initial=0.0)), err_sum
