"""The Numba CPU backend: one fused pass per call, compiled once per dtype and cached.

Work is split into blocks of ``_stats.BLOCK`` elements (``prange`` over blocks); each block keeps
its own counts, maximum error and error sum (in the lane order of ``_stats.block_sums``), so the
statistics equal the numpy oracle's bit for bit whatever the thread count.

Two block loops give the same bits:

- ``_general_block`` runs the shared scalar functions of ``_fixed_scalar`` element by element
  (the CUDA kernel runs the same ones); it handles everything: wrap, NaN, ``word > 52``, and
  the counts and errors of ``stats``.
- ``_fused_block`` is the same rule as one branch-free loop per rounding mode and overflow that
  LLVM vectorises (SIMD rounding, 64-bit multiplies for the hash): load, scale, round, saturate
  or wrap, store. It computes in float64 (needs ``word <= 52``: every raw is exact), or in
  float32 for float32 input with ``frac >= 0``, ``word <= 24`` and saturate (see
  ``call_arrays``). It keeps no counts: with ``stats`` it rounds into a scratch block
  (no clamp) and ``_count_block`` saturates or wraps, counts and sums the errors. A block where
  it meets NaN (or, with wrap, ``|x * 2**frac| >= 2**52``) is redone by ``_general_block``.

Arrays of up to ``SERIAL_MAX`` elements run the blocks on the calling thread (no thread-pool
launch), larger ones in parallel (``prange`` over blocks).
"""
from __future__ import annotations

import functools

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from . import _counter_rng
from . import _fixed_scalar as fs
from ._modes import Rounding
from ._stats import BLOCK, LANES

# inlined into the cached `_general_block` (a closure's own cache file would never be hit)
_quantize_element = fs.element_function(njit(inline="always"))
_mix64 = njit(cache=True)(_counter_rng.scalar_mix64)

# The arrays that `call_arrays` packs, by index (globals: Numba folds them into constants).
#: The constants of `_fused_block` (floats in the dtype it computes in).
FUSED_CONSTANTS = ("scale", "lo", "top", "step", "wrap_size", "inv_wrap_size", "big", "tiny", "kpow")
C_SCALE, C_LO, C_TOP, C_STEP, C_WRAP_SIZE, C_INV_WRAP_SIZE, C_BIG, C_TINY, C_KPOW = range(9)
#: The float64 scalars of the block loops (``unit``: the error unit, 1 for float output).
BLOCK_FLOATS = ("unit", "scale", "modulus", "inv_modulus", "lo", "hi", "step")
F_UNIT, F_SCALE, F_MODULUS, F_INV_MODULUS, F_LO, F_HI, F_STEP = range(7)
#: The int64 scalars of the block loops (``wrap``: 0 or 1; ``k``: random bits, ``kpow = 2**k``).
BLOCK_INTS = ("mode", "wrap", "raw_min", "raw_max", "mask", "k", "kpow")
I_MODE, I_WRAP, I_RAW_MIN, I_RAW_MAX, I_MASK, I_K, I_KPOW = range(7)


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
    """``out[i]`` from the integer-valued float ``r`` (exact: ``|r| < 2**53``, not ``-0.0``)."""


@overload(_store_rounded)
def _store_rounded_impl(out, i, r, step):
    if isinstance(out.dtype, types.Integer):
        def store_int(out, i, r, step):
            out[i] = np.int64(r)
        return store_int

    def store_float(out, i, r, step):
        out[i] = r * step
    return store_float


@njit(cache=True)
def _general_block(x, out, start, want_errors, fp, ip, key, counter0, counts):
    """Element-by-element loop over the block views ``x``, ``out`` (flat index ``start + i``)
    with the scalars ``fp``/``ip`` of `call_arrays`; returns (max error, error sum) of the block."""
    scale, modulus, inv_modulus, lo, hi, step = (
        fp[F_SCALE], fp[F_MODULUS], fp[F_INV_MODULUS], fp[F_LO], fp[F_HI], fp[F_STEP])
    mode, wrap, raw_min, raw_max, mask, kpow = (
        ip[I_MODE], ip[I_WRAP] != 0, ip[I_RAW_MIN], ip[I_RAW_MAX], ip[I_MASK], ip[I_KPOW])
    shift = np.uint64(64 - ip[I_K])
    errors = _error_scratch(x.size if want_errors else 0)
    c0 = counter0 + np.uint64(start)
    for i in range(x.size):
        xv = np.float64(x[i])
        raw, status = _quantize_element(xv, c0 + np.uint64(i), mode, wrap, scale, modulus,
                                        inv_modulus, lo, hi, raw_min, raw_max, mask, key, shift,
                                        kpow)
        _store_raw(out, i, raw, step)
        if want_errors:
            errors[i] = 0.0 if status == fs.ST_NAN else abs(np.float64(raw) * step - xv)
        if status != 0:
            slot = 0
            while status > 1:
                status >>= 1
                slot += 1
            counts[slot] += 1
    return _lane_reduce(errors)


@njit(cache=True)
def _error_scratch(n):
    """Room for ``n`` per-element errors, padded with zeros to a multiple of ``LANES`` (the
    padding adds ``+0.0`` to the lane sums, as the oracle's padding does)."""
    errors = np.empty(-(-n // LANES) * LANES)
    errors[n:] = 0.0
    return errors


@njit(cache=True)
def _lane_reduce(errors):
    """``(max, sum)`` of a block's errors (size a multiple of 8 = ``LANES``) in the order of
    ``_stats.block_sums``: eight lane sums, element ``i`` in lane ``i mod 8``, then added in lane
    order. Eight independent chains (and maxima) run at about three times the speed of one."""
    rows = errors.reshape(-1, LANES)
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = 0.0
    for r in range(rows.shape[0]):
        e0, e1, e2, e3 = rows[r, 0], rows[r, 1], rows[r, 2], rows[r, 3]
        e4, e5, e6, e7 = rows[r, 4], rows[r, 5], rows[r, 6], rows[r, 7]
        s0 += e0
        s1 += e1
        s2 += e2
        s3 += e3
        s4 += e4
        s5 += e5
        s6 += e6
        s7 += e7
        m0, m1, m2, m3 = max(m0, e0), max(m1, e1), max(m2, e2), max(m3, e3)
        m4, m5, m6, m7 = max(m4, e4), max(m5, e5), max(m6, e6), max(m7, e7)
    return (max(m0, m1, m2, m3, m4, m5, m6, m7),
            ((((((s0 + s1) + s2) + s3) + s4) + s5) + s6) + s7)


@njit(cache=True)
def _directed_in(xv, scale, tiny):
    """``x * 2**frac``; an underflowed nonzero product becomes ``+-tiny`` (keeps its sign).

    ``tiny = 0`` (the float32 loops, where ``frac >= 0`` so nothing underflows) disables it."""
    v = xv * scale
    return np.copysign(tiny, v) if (abs(v) < tiny) & (xv != 0) else v


@njit(cache=True)
def _away(v, half, one, zero):
    t = np.trunc(v)
    d = v - t  # exact, in (-1, 1)
    return t + (one if d >= half else zero) - (one if d <= -half else zero)


@njit(cache=True)
def _stochastic(v, bits, shift, kf, one, zero):
    """``floor(v) + (r < floor(f * 2**k))``, ``f = v - floor(v)``, as ``fs.round_scaled``.

    ``floor(f * 2**k) = floor(v * 2**k) - floor(v) * 2**k`` exactly: both terms are exact
    (power-of-two scaling) and their exact difference, in ``[0, 2**k)``, has no more significant
    bits than ``v`` (so it is exact in ``v``'s type too). For an integer ``v`` it is 0, and NaN
    (never up) where ``v * 2**k`` overflows.
    """
    low = np.floor(v)
    threshold = np.floor(v * kf) - low * kf
    return low + (one if np.float64(bits >> shift) < np.float64(threshold) else zero)


@njit(cache=True)
def _saturate(out, i, rv, lo, top, step):
    """Store the clamped ``rv``; True where ``rv`` is NaN (``lo - lo`` = +0.0 turns -0.0 into
    +0.0, as the raw integer 0 gives)."""
    _store_rounded(out, i, min(max(rv, lo), top) + (lo - lo), step)
    return rv != rv


@njit(cache=True)
def _wrap(out, i, rv, lo, wrap_size, inv_wrap_size, big, step):
    """Store ``rv`` reduced modulo ``2**word`` (exact for ``|rv| < big = 2**52``); True where
    ``rv`` is NaN or ``|rv| >= big``."""
    _store_rounded(out, i, rv - np.floor((rv - lo) * inv_wrap_size) * wrap_size + (lo - lo), step)
    return (rv != rv) | (abs(rv) >= big)


@njit(cache=True)
def _stochastic_loop(x, out, wrap, c, key, c0, shift, underflow):
    """The stochastic loops of `_fused_block` (True where a special value was met). ``underflow``
    is a literal: False compiles the loops without `_directed_in`'s underflow test (for
    ``frac >= 0``). The hash input ``key + counter * GOLDEN`` steps by GOLDEN (no multiply)."""
    scale, lo, top, step, wrap_size, inv_wrap_size, big, tiny, kf = (
        c[C_SCALE], c[C_LO], c[C_TOP], c[C_STEP], c[C_WRAP_SIZE], c[C_INV_WRAP_SIZE], c[C_BIG],
        c[C_TINY], c[C_KPOW])
    one = step / step
    zero = one - one
    golden = np.uint64(_counter_rng.GOLDEN)
    z = key + c0 * golden
    sp = False
    if wrap:
        for i in range(x.size):
            v = _directed_in(x[i], scale, tiny) if underflow else x[i] * scale
            rv = _stochastic(v, _mix64(z), shift, kf, one, zero)
            sp |= _wrap(out, i, rv, lo, wrap_size, inv_wrap_size, big, step)
            z += golden
    else:
        for i in range(x.size):
            v = _directed_in(x[i], scale, tiny) if underflow else x[i] * scale
            rv = _stochastic(v, _mix64(z), shift, kf, one, zero)
            sp |= _saturate(out, i, rv, lo, top, step)
            z += golden
    return sp


@njit(cache=True)
def _fused_block(x, out, start, mode, wrap, c, key, counter0, shift):
    """One pass over the block views ``x``, ``out`` (flat index ``start + i``): scale, round,
    saturate or wrap, store, computed in ``c``'s dtype, ``c`` = the `FUSED_CONSTANTS` (scale,
    lo, top, step, wrap_size, 1/wrap_size, 2**52, tiny, 2**k). One loop per mode and overflow,
    each free of branches so that LLVM vectorises it (``range(x.size)`` spares Numba's
    negative-index checks), and no counts (an integer reduction would halve the speed; with
    statistics the caller rounds into a scratch block and ``_count_block`` counts); an unknown
    mode code raises ValueError. Returns False when the block holds a special value (NaN; with
    wrap also ``|rv| >= 2**52``), to be redone by ``_general_block``."""
    scale, lo, top, step, wrap_size, inv_wrap_size, big, tiny = (
        c[C_SCALE], c[C_LO], c[C_TOP], c[C_STEP], c[C_WRAP_SIZE], c[C_INV_WRAP_SIZE], c[C_BIG],
        c[C_TINY])
    one = step / step
    zero = one - one
    half = one / (one + one)
    c0 = counter0 + np.uint64(start)
    sp = False
    if mode == fs.NEAREST_EVEN and wrap:
        for i in range(x.size):
            sp |= _wrap(out, i, np.rint(x[i] * scale), lo, wrap_size, inv_wrap_size, big, step)
    elif mode == fs.NEAREST_EVEN:  # IEEE ties to even: exact
        for i in range(x.size):
            sp |= _saturate(out, i, np.rint(x[i] * scale), lo, top, step)
    elif mode == fs.TOWARD_ZERO and wrap:
        for i in range(x.size):
            sp |= _wrap(out, i, np.trunc(x[i] * scale), lo, wrap_size, inv_wrap_size, big, step)
    elif mode == fs.TOWARD_ZERO:
        for i in range(x.size):
            sp |= _saturate(out, i, np.trunc(x[i] * scale), lo, top, step)
    elif mode == fs.NEAREST_AWAY and wrap:
        for i in range(x.size):
            rv = _away(x[i] * scale, half, one, zero)
            sp |= _wrap(out, i, rv, lo, wrap_size, inv_wrap_size, big, step)
    elif mode == fs.NEAREST_AWAY:
        for i in range(x.size):
            sp |= _saturate(out, i, _away(x[i] * scale, half, one, zero), lo, top, step)
    elif mode == fs.FLOOR and wrap:
        for i in range(x.size):
            rv = np.floor(_directed_in(x[i], scale, tiny))
            sp |= _wrap(out, i, rv, lo, wrap_size, inv_wrap_size, big, step)
    elif mode == fs.FLOOR:
        for i in range(x.size):
            sp |= _saturate(out, i, np.floor(_directed_in(x[i], scale, tiny)), lo, top, step)
    elif mode == fs.CEIL and wrap:
        for i in range(x.size):
            rv = np.ceil(_directed_in(x[i], scale, tiny))
            sp |= _wrap(out, i, rv, lo, wrap_size, inv_wrap_size, big, step)
    elif mode == fs.CEIL:
        for i in range(x.size):
            sp |= _saturate(out, i, np.ceil(_directed_in(x[i], scale, tiny)), lo, top, step)
    elif mode == fs.STOCHASTIC and tiny == zero:  # frac >= 0 (every float32 loop): no underflow
        sp = _stochastic_loop(x, out, wrap, c, key, c0, shift, False)
    elif mode == fs.STOCHASTIC:
        sp = _stochastic_loop(x, out, wrap, c, key, c0, shift, True)
    else:
        raise ValueError("unknown rounding mode code")
    return not sp


@njit(cache=True)
def _count_block(x, rounded, out, wrap, c, unit, counts):
    """Saturate or wrap the unclamped rounded values ``rounded`` of the block ``x`` into ``out``,
    counting as ``_general_block`` does; returns (ok, max error, error sum), ok False
    (``counts`` untouched) for a special value (NaN, or with wrap ``|rv| >= 2**52``)."""
    lo, top, step, wrap_size, inv_wrap_size, big = (
        c[C_LO], c[C_TOP], c[C_STEP], c[C_WRAP_SIZE], c[C_INV_WRAP_SIZE], c[C_BIG])
    n_special = n_outside = n_flush = 0
    errors = _error_scratch(x.size)
    for i in range(x.size):
        rv = rounded[i]
        if wrap:
            n_special += _wrap(out, i, rv, lo, wrap_size, inv_wrap_size, big, step)
        else:
            n_special += _saturate(out, i, rv, lo, top, step)
        n_outside += (rv > top) | (rv < lo)
        n_flush += (rv == 0) & (x[i] != 0)
        errors[i] = abs(np.float64(out[i]) * unit - np.float64(x[i]))
    if n_special:
        return False, 0.0, 0.0
    counts[1 if wrap else 0] += n_outside
    counts[2] += n_flush
    e_max, e_sum = _lane_reduce(errors)
    return True, e_max, e_sum


@njit(cache=True)
def _one_block(b, x, out, fast, want_errors, c, c_round, fp, ip, key, counter0, counts, errs):
    """Block ``b``: the fused loop when ``fast`` and it meets no special value, else
    ``_general_block``. With statistics the fused loop rounds into a scratch block (``c_round``:
    no clamp, step 1) and ``_count_block`` saturates or wraps, counts and sums the errors
    (``errs[b]`` = max error, error sum)."""
    start = b * BLOCK
    xb = x[start:start + BLOCK]
    ob = out[start:start + BLOCK]
    mode, wrap, shift = ip[I_MODE], ip[I_WRAP] != 0, np.uint64(64 - ip[I_K])
    if fast and not want_errors:
        if _fused_block(xb, ob, start, mode, wrap, c, key, counter0, shift):
            return
    elif fast:
        rounded = np.empty(xb.size, c.dtype)
        if _fused_block(xb, rounded, start, mode, False, c_round, key, counter0, shift):
            ok, errs[b, 0], errs[b, 1] = _count_block(xb, rounded, ob, wrap, c, fp[F_UNIT],
                                                      counts[b])
            if ok:
                return
    errs[b, 0], errs[b, 1] = _general_block(xb, ob, start, want_errors, fp, ip, key, counter0,
                                            counts[b])


@njit(parallel=True, cache=True)
def _blocks_parallel(x, out, fast, want_errors, c, c_round, fp, ip, key, counter0, counts, errs):
    for b in prange(counts.shape[0]):
        _one_block(b, x, out, fast, want_errors, c, c_round, fp, ip, key, counter0, counts, errs)
    _sum_rows(counts)


@njit(cache=True)
def _sum_rows(counts):
    """Add every row of the per-block ``counts`` into row 0 (integers: any order)."""
    for b in range(1, counts.shape[0]):
        for s in range(counts.shape[1]):
            counts[0, s] += counts[b, s]


@njit(cache=True)
def _blocks_serial(x, out, fast, want_errors, c, c_round, fp, ip, key, counter0, counts, errs):
    for b in range(counts.shape[0]):
        _one_block(b, x, out, fast, want_errors, c, c_round, fp, ip, key, counter0, counts, errs)
    _sum_rows(counts)


#: Arrays of at most this many elements run single-threaded (no thread-pool launch).
SERIAL_MAX = 1 << 16


@functools.lru_cache(maxsize=512)
def call_arrays(x_char: str, out_dtype: np.dtype, head: tuple, k: int) -> tuple:
    """``(fast, c, c_round, fp, ip)`` of a call on ``x_char`` input (a dtype code) with result
    ``out_dtype``, for the format and modes of ``head`` = ``Params[:N_HEAD]`` (mode .. step) and
    ``k`` random bits (cached; the arrays are never written). ``c``/``c_round`` are the
    `FUSED_CONSTANTS` of ``_fused_block`` in the dtype it computes in (``c_round`` for the
    rounding pass of a call with statistics: no clamp, step 1); ``fast`` False: no fused loop.
    ``fp``/``ip`` pack the `BLOCK_FLOATS` and `BLOCK_INTS` of the block loops (fewer arguments
    per call). An unknown rounding code raises ValueError here, before any parallel loop.

    float64 needs ``word <= 52`` (every raw, and every step of the loop, exact). float32 input
    with ``frac >= 0``, ``word <= 24`` and saturate runs in float32 (twice the SIMD width):
    ``x * 2**frac`` is then exact or overflows to +-inf (which saturates), the rounded value
    and the clamp bounds are exact float32 integers, and so is ``raw * 2**-frac`` (float32 out).
    """
    h = dict(zip(fs.Params._fields[:fs.N_HEAD], head, strict=True))
    Rounding(h["mode"])  # ValueError for an unknown code
    scale, mask, wrap = h["scale"], h["mask"], h["wrap"]
    floats = dict(h, unit=1.0 if out_dtype.kind == "f" else h["step"])
    ints = dict(h, k=k, kpow=1 << k)
    fp = np.array([floats[name] for name in BLOCK_FLOATS])
    ip = np.array([ints[name] for name in BLOCK_INTS], dtype=np.int64)
    if mask >= (1 << 52):
        return False, _NO_CONSTANTS[0], _NO_CONSTANTS[1], fp, ip
    f32 = (x_char == "f" and (out_dtype.kind, out_dtype.itemsize) in (("f", 4), ("i", 8))
           and not wrap and scale >= 1.0 and mask < (1 << 24))
    dtype = np.float32 if f32 else np.float64
    constants = dict(scale=scale, lo=h["lo"], top=h["raw_max"], step=h["step"], wrap_size=mask + 1.0,
                     inv_wrap_size=1.0 / (mask + 1.0), big=fs.TWO52,
                     tiny=0.0 if scale >= 1.0 else fs.TINY,  # frac >= 0: x * 2**frac never underflows
                     kpow=ints["kpow"])
    c = np.array([constants[name] for name in FUSED_CONSTANTS], dtype=dtype)
    c_round = c.copy()
    c_round[C_LO], c_round[C_TOP], c_round[C_STEP] = -np.finfo(dtype).max, np.finfo(dtype).max, 1.0
    return True, c, c_round, fp, ip


_NO_CONSTANTS = (np.zeros(len(FUSED_CONSTANTS)), np.zeros(len(FUSED_CONSTANTS)))


def run(x: np.ndarray, out: np.ndarray, arrays: tuple, key: np.uint64, counter0: np.uint64,
        want_errors: bool) -> tuple:
    """Quantize the flat float32/float64 array ``x`` into ``out`` with `call_arrays` ``arrays``
    and the stream (``key``, ``counter0``); returns ``(counts[5], max error, block sums or
    None)`` (the block loops add the per-block counts into row 0)."""
    nblocks = max(1, -(-x.size // BLOCK))  # an empty x runs one empty block
    counts = np.zeros((nblocks, fs.N_COUNTS), dtype=np.int64)
    errs = np.zeros((nblocks, 2))  # per block: max error, error sum
    fast, c, c_round, fp, ip = arrays
    # one Numba thread (NUMBA_NUM_THREADS=1): the serial loop spares the thread-pool launch
    serial = x.size <= SERIAL_MAX or numba.get_num_threads() == 1
    (_blocks_serial if serial else _blocks_parallel)(x, out, fast, want_errors, c, c_round, fp, ip,
                                                     key, counter0, counts, errs)
    if not want_errors:
        return counts[0], 0.0, None
    return counts[0], float(errs[:, 0].max(initial=0.0)), errs[:, 1]


def quantize_flat(x: np.ndarray, p: fs.Params, seed: int, offset: int, out_dtype, want_errors: bool):
    """Backend entry point, as ``_fixed_oracle.quantize_flat`` (``seed``/``offset`` are in ``p``;
    ``out_dtype`` is a numpy dtype)."""
    # float16 runs through float32 (exact both ways: the format fits float16)
    xk = x.astype(np.float32) if x.dtype.char == "e" else x
    kernel_dtype = np.dtype(np.float32) if out_dtype.char == "e" else out_dtype
    out = np.empty(x.size, kernel_dtype)
    counts, max_error, sums = run(xk, out, call_arrays(xk.dtype.char, kernel_dtype, p[:fs.N_HEAD], p.k),
                                  p.key, p.counter0, want_errors)
    if out_dtype.char == "e":
        out = out.astype(out_dtype)
    return out, counts, max_error, sums
