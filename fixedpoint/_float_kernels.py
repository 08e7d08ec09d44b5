"""Numba kernels for `FloatFormat` quantization: one scalar body, two targets.

:func:`float_round_scalar` uses scalar integer and float arithmetic only (bit views, no libm calls),
so the same Python source is compiled by ``numba.njit`` (the parallel CPU kernel) and by
``numba.cuda.jit(device=True)`` (the GPU kernel, also run by the CUDA simulator in CI). It
implements, element by element, exactly the rules of ``reference_float_quantize`` (the numpy
oracle in :mod:`fixedpoint._float_oracle`); the tests check that the bits agree. It uses no
multiply-add pattern (``a * b + c``), so FMA contraction on the GPU cannot change a result.

Flags written per element when stats are requested: 0 = ordinary, 1 = overflowed, 2 = flushed
(a nonzero input whose result is zero).
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda, njit, prange

from ._counter_rng import scalar_bits
from ._cuda_launch import launch_config
from ._fixed_scalar import CEIL as _CEIL
from ._fixed_scalar import FLOOR as _FLOOR
from ._fixed_scalar import NEAREST_AWAY as _NEAREST_AWAY
from ._fixed_scalar import NEAREST_EVEN as _NEAREST_EVEN
from ._fixed_scalar import STOCHASTIC as _STOCHASTIC
from ._fixed_scalar import TOWARD_ZERO as _TOWARD_ZERO
from ._modes import Rounding


def float_round_scalar(x, emin, man, fmax, flush_below, neg_zero, mode, over_pos, over_neg,
                       inf_pos, nan_val, r, k):
    """``(y, flag)`` for one float64 ``x``.

    Format: ``emin``, ``man``, ``fmax``; results below ``flush_below`` (``2^emin`` with
    flush-to-zero, else 0) become zero; ``neg_zero``: the format has -0. Policies, resolved by
    :func:`policy_values`: a finite ``x`` whose rounded magnitude exceeds ``fmax`` gives
    ``over_pos`` / ``-over_neg`` (by its sign), an infinite one ``+-inf_pos``, a NaN ``nan_val``.
    ``r`` is the uint64 draw (used when ``mode`` is stochastic), ``k`` the number of random bits.

    Integer arithmetic on the bits of ``x``: ``|x| = sig * 2^p`` exactly; the format's step in
    the binade of ``|x|`` is ``2^q``; the ``s = q - p`` low bits of ``sig`` are dropped (``d``)
    and decide the rounding of ``n = sig >> s``. An unknown ``mode`` raises ValueError where a
    value needs rounding (a CUDA kernel does not report it: `launch_cuda` checks the code first).
    """
    if x != x:
        return nan_val, 0
    bits = np.float64(x).view(np.uint64)
    neg = (bits >> np.uint64(63)) != np.uint64(0)
    biased = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    sig = np.int64(bits & np.uint64(0xFFFFFFFFFFFFF))
    a = abs(x)
    if biased == 0x7FF:  # +-inf
        return -inf_pos if neg else inf_pos, 1
    if biased == 0 and sig == 0:
        if neg_zero:
            return x, 0
        return 0.0, 0
    if biased == 0:  # float64 subnormal: the binade is that of the integer sig
        p = -1074
        e = p + np.int64((np.float64(sig).view(np.uint64) >> np.uint64(52)) - np.uint64(1023))
    else:
        sig += np.int64(1) << np.int64(52)
        p = biased - 1075
        e = biased - 1023
    q = (e if e > emin else emin) - man  # max(e, emin)
    s = q - p
    mag = a
    if s > 0:  # inexact on the format's grid unless the dropped bits d are zero
        n = np.int64(0)
        d = sig
        if s < 63:
            n = sig >> s
            d = sig & ((np.int64(1) << s) - 1)
        up = False  # (bitwise & | below: no data-dependent branches)
        if mode == _NEAREST_EVEN or mode == _NEAREST_AWAY:
            if s < 63:  # for s >= 63, d < 2^53 is below half a step
                half = np.int64(1) << (s - 1)
                up = (d > half) | ((d == half) & ((mode == _NEAREST_AWAY) | ((n & 1) == 1)))
        elif mode == _TOWARD_ZERO:
            up = False
        elif mode == _FLOOR or mode == _CEIL:
            up = (d != 0) & (neg == (mode == _FLOOR))
        elif mode == _STOCHASTIC:
            t = np.int64(0)  # floor(d / 2^s * 2^k): the top k bits of the dropped fraction
            if s < k:
                t = d << (k - s)
            elif s - k < 63:
                t = d >> (s - k)
            up = np.int64(r >> np.uint64(64 - k)) < t
        else:
            raise ValueError("unknown rounding mode code")
        if up:
            n += 1
        # 2^q from its bits (-1074 <= q <= 1023); the product is exact, or inf past the float64
        # range (an overflow anyway)
        if q >= -1022:
            step = np.uint64(np.uint64(q + 1023) << np.uint64(52)).view(np.float64)
        else:
            step = np.uint64(np.uint64(1) << np.uint64(q + 1074)).view(np.float64)
        mag = np.float64(n) * step
    flag = 0
    if mag > fmax:
        flag = 1
        mag = over_neg if neg else over_pos
    if mag < flush_below:
        mag = 0.0
    if mag == 0.0:
        flag = 2
        if not neg_zero:
            return 0.0, flag
    return -mag if neg else mag, flag


_round_cpu = njit(cache=True)(float_round_scalar)
_bits_cpu = njit(cache=True)(scalar_bits)


def policy_values(fmax: float, mode: int, overflow: str, nan: str) -> tuple[float, ...]:
    """``(over_pos, over_neg, inf_pos, nan_val)`` of :func:`float_round_scalar` for the rounding
    code ``mode`` (ValueError for an unknown one), the overflow policy (``"saturate"``, ``"inf"``,
    ``"nan"``) and NaN policy (``"zero"``, else NaN)."""
    rounding = Rounding(mode)
    inf_pos = {"saturate": fmax, "inf": math.inf, "nan": math.nan}[overflow]
    over_pos = over_neg = inf_pos
    if overflow == "inf":  # IEEE: the modes that round toward zero for a sign give max
        if rounding.max_on_overflow(False):
            over_pos = fmax
        if rounding.max_on_overflow(True):
            over_neg = fmax
    return over_pos, over_neg, inf_pos, 0.0 if nan == "zero" else math.nan


@njit(inline="always")
def _cpu_loop(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, mode, over_pos,
              over_neg, inf_pos, nan_val, key, offset, k):
    for i in prange(x.size):
        r = np.uint64(0)
        if mode == _STOCHASTIC:
            r = _bits_cpu(key, offset + np.uint64(i + 1))
        y, flag = _round_cpu(np.float64(x[i]), emin, man, fmax, flush_below, neg_zero, mode,
                             over_pos, over_neg, inf_pos, nan_val, r, k)
        out[i] = y
        if with_flags:
            flags[i] = flag


@njit(parallel=True, cache=True)
def float_quantize_cpu(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, mode,
                       over_pos, over_neg, inf_pos, nan_val, key, offset, k):
    """Parallel CPU kernel over flat arrays ``x`` -> ``out`` (and ``flags`` when ``with_flags``);
    ``key`` and ``offset`` are uint64 (the counter of element ``i`` is ``offset + i + 1``).

    One inlined loop per rounding mode, each passing its mode as a constant, so that Numba
    specialises the scalar body (dead branches pruned): a runtime mode is about 5x slower. An
    unknown mode raises ValueError before any loop runs.
    """
    if mode == _NEAREST_EVEN:
        _cpu_loop(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, _NEAREST_EVEN,
                  over_pos, over_neg, inf_pos, nan_val, key, offset, k)
    elif mode == _NEAREST_AWAY:
        _cpu_loop(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, _NEAREST_AWAY,
                  over_pos, over_neg, inf_pos, nan_val, key, offset, k)
    elif mode == _TOWARD_ZERO:
        _cpu_loop(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, _TOWARD_ZERO,
                  over_pos, over_neg, inf_pos, nan_val, key, offset, k)
    elif mode == _FLOOR:
        _cpu_loop(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, _FLOOR,
                  over_pos, over_neg, inf_pos, nan_val, key, offset, k)
    elif mode == _CEIL:
        _cpu_loop(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, _CEIL,
                  over_pos, over_neg, inf_pos, nan_val, key, offset, k)
    elif mode == _STOCHASTIC:
        _cpu_loop(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, _STOCHASTIC,
                  over_pos, over_neg, inf_pos, nan_val, key, offset, k)
    else:
        raise ValueError("unknown rounding mode code")


@functools.lru_cache(maxsize=None)
def float_quantize_cuda_kernel():
    """The CUDA kernel (compiled on first use; under ``NUMBA_ENABLE_CUDASIM=1`` the simulator's)."""
    round_dev = cuda.jit(device=True)(float_round_scalar)
    bits_dev = cuda.jit(device=True)(scalar_bits)

    @cuda.jit
    def kernel(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, mode,
               over_pos, over_neg, inf_pos, nan_val, key, offset, k):
        i = cuda.grid(1)
        if i < x.size:
            r = np.uint64(0)
            if mode == _STOCHASTIC:
                r = bits_dev(key, offset + np.uint64(i + 1))
            y, flag = round_dev(np.float64(x[i]), emin, man, fmax, flush_below, neg_zero,
                                mode, over_pos, over_neg, inf_pos, nan_val, r, k)
            out[i] = y
            if with_flags:
                flags[i] = flag

    return kernel


def launch_cuda(x, out, flags, with_flags, emin, man, fmax, flush_below, neg_zero, mode, over_pos,
                over_neg, inf_pos, nan_val, key, offset, k) -> None:
    """Run the CUDA kernel on flat device arrays (CuPy arrays or Numba device arrays); arguments
    as `float_quantize_cpu`'s. An unknown rounding code raises ValueError (a kernel cannot)."""
    Rounding(mode)
    float_quantize_cuda_kernel()[launch_config(x.size)](x, out, flags, with_flags, emin, man, fmax,
                                                        flush_below, neg_zero, mode, over_pos,
                                                        over_neg, inf_pos, nan_val, key, offset, k)
