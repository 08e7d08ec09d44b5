"""Extreme quantizers: `binarize` ({-1, +1}), `ternarize` ({-1, 0, +1}), `pow2` (+-2^k or 0).

Each has a numpy oracle (``_*_numpy``, the specification) and a parallel Numba kernel built from one
scalar body, :func:`quantizer_scalar`; the two give the same bits. The stochastic variants use the
counter-based generator of :mod:`fixedpoint._counter_rng`: element ``i`` (flat, C order) draws
``u = (bits(seed, offset + i) >> 11) * 2^-53`` in [0, 1), so results depend only on the seed and the
index, never on threads or chunking. The output has the input's float dtype (integer input is
converted to float64 when exact); NaN input raises ValueError with the count and the first index.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda, njit, prange

from ._backend import run_elementwise
from ._counter_rng import scalar_bits, seed_key, uniforms
from ._cuda_launch import launch_config
from ._dlpack import dlpack_io
from ._float_kernels import _bits_cpu
from ._stats import QuantStats, check_stats
from ._validate import (
    array_module,
    as_float_array,
    check_choice,
    check_int,
    check_no_nan,
    check_offset,
    resolve_seed,
)

_BINARIZE, _TERNARIZE, _POW2 = range(3)
#: Rounding modes of `pow2`.
POW2_ROUNDING = ("nearest", "stochastic")
#: fl(sqrt(2)): for a float64 m in [1, 2), m >= SQRT2 exactly when m > sqrt(2) (no double lies between).
SQRT2 = 1.4142135623730951


# --------------------------------------------------------------------------- numpy oracles
def _binarize_numpy(x: np.ndarray, u: np.ndarray | None) -> np.ndarray:
    """+1 where ``x >= 0`` (so sign(+-0) = +1), else -1; stochastic: +1 iff ``u < clip((x+1)/2, 0, 1)``."""
    if u is None:
        return np.where(x >= 0, 1.0, -1.0)
    p = np.clip((x + 1.0) * 0.5, 0.0, 1.0)
    return np.where(u < p, 1.0, -1.0)


def _ternarize_numpy(x: np.ndarray, threshold: float, u: np.ndarray | None) -> np.ndarray:
    """sign(x) where ``|x| > threshold``, else 0; stochastic: sign(x) iff ``u < min(|x|, 1)``."""
    keep = np.abs(x) > threshold if u is None else u < np.minimum(np.abs(x), 1.0)
    return np.where(keep, np.sign(x), 0.0) + 0.0  # + 0.0 turns -0.0 into +0.0


def _pow2_numpy(x: np.ndarray, min_exp: int, max_exp: int, u: np.ndarray | None) -> np.ndarray:
    """+-2^k or +0; see `pow2` for the rules."""
    a = np.abs(x)
    mant, e = np.frexp(a)
    m = 2.0 * mant                                   # a = m * 2^k, 1 <= m < 2 (exact)
    k = np.where(np.isinf(a), max_exp, e - 1).astype(np.int64)
    if u is None:
        k = k + (m >= SQRT2)                         # log-domain nearest: up iff a >= 2^(k+1/2)
        zero = (k < min_exp) | (a == 0)
    else:
        low = a < 2.0**min_exp                       # choose 0 or 2^min_exp, P(up) = a / 2^min_exp
        with np.errstate(over="ignore"):             # m - 1 exact; unbiased in the linear domain
            p = np.where(low, np.ldexp(a, -min_exp), m - 1.0)
        up = u < p
        k = np.where(low, min_exp, k + up)
        zero = low & ~up
    k = np.minimum(k, max_exp)
    mag = np.where(zero, 0.0, np.ldexp(1.0, np.where(zero, 0, k).astype(np.int32)))
    return np.where(np.signbit(x), -mag, mag) + 0.0


# --------------------------------------------------------------------------- Numba kernel
def quantizer_scalar(kind, x, p1, p2, stochastic, u):
    """One element of `binarize` (``kind`` 0), `ternarize` (1, ``p1`` = threshold) or `pow2`
    (2, ``p1, p2`` = min_exp, max_exp); ``u`` is the uniform draw when ``stochastic``."""
    if kind == _BINARIZE:
        if stochastic:
            p = (x + 1.0) * 0.5  # clip(p, 0, 1) without min/max (see _fixed_scalar's module doc)
            return 1.0 if u < (0.0 if p < 0.0 else 1.0 if p > 1.0 else p) else -1.0
        return 1.0 if x >= 0.0 else -1.0
    a = abs(x)
    sign = -1.0 if x < 0.0 else 1.0
    if kind == _TERNARIZE:
        keep = u < (a if a < 1.0 else 1.0) if stochastic else a > p1
        return sign if keep else 0.0
    if a == 0.0:
        return 0.0
    min_exp = int(p1)
    if math.isinf(a):
        return sign * math.ldexp(1.0, int(p2))
    mant, e = math.frexp(a)
    m = 2.0 * mant
    k = e - 1
    if not stochastic:
        if m >= SQRT2:
            k += 1
        if k < min_exp:
            return 0.0
    elif a < math.ldexp(1.0, min_exp):
        if not u < math.ldexp(a, -min_exp):
            return 0.0
        k = min_exp
    elif u < m - 1.0:
        k += 1
    max_exp = int(p2)
    return sign * math.ldexp(1.0, k if k < max_exp else max_exp)


_scalar_cpu = njit(cache=True)(quantizer_scalar)


@njit(inline="always")
def _cpu_loop(kind, x, out, p1, p2, stochastic, key, offset):
    for i in prange(x.size):
        u = 0.0
        if stochastic:
            u = math.ldexp(float(_bits_cpu(key, offset + np.uint64(i + 1)) >> np.uint64(11)), -53)
        out[i] = _scalar_cpu(kind, np.float64(x[i]), p1, p2, stochastic, u)


@njit(parallel=True, cache=True)
def _quantizer_cpu(kind, x, out, p1, p2, stochastic, key, offset):
    """Parallel CPU kernel; one inlined loop per (kind, stochastic), each passing constants so that
    Numba specialises the scalar body (as in :mod:`fixedpoint._float_kernels`)."""
    if kind == _BINARIZE and stochastic:
        _cpu_loop(_BINARIZE, x, out, p1, p2, True, key, offset)
    elif kind == _BINARIZE:
        _cpu_loop(_BINARIZE, x, out, p1, p2, False, key, offset)
    elif kind == _TERNARIZE and stochastic:
        _cpu_loop(_TERNARIZE, x, out, p1, p2, True, key, offset)
    elif kind == _TERNARIZE:
        _cpu_loop(_TERNARIZE, x, out, p1, p2, False, key, offset)
    elif stochastic:
        _cpu_loop(_POW2, x, out, p1, p2, True, key, offset)
    else:
        _cpu_loop(_POW2, x, out, p1, p2, False, key, offset)


@functools.lru_cache(maxsize=None)
def quantizer_cuda_kernel():
    """The CUDA kernel, same arguments as the CPU one (built on first use; simulator-compatible)."""
    scalar_dev = cuda.jit(device=True)(quantizer_scalar)
    bits_dev = cuda.jit(device=True)(scalar_bits)

    @cuda.jit
    def kernel(kind, x, out, p1, p2, stochastic, key, offset):
        i = cuda.grid(1)
        if i < x.size:
            u = 0.0
            if stochastic:
                b = bits_dev(key, offset + np.uint64(i + 1)) >> np.uint64(11)
                u = math.ldexp(float(b), -53)
            out[i] = scalar_dev(kind, np.float64(x[i]), p1, p2, stochastic, u)

    return kernel


# --------------------------------------------------------------------------- public API
def _run(kind: int, x, p1: float, p2: float, stochastic: bool, seed, offset: int, backend: str,
         stats: QuantStats | None, saturated_from: float = math.inf):
    """Validate, run the oracle or the kernel (`_backend.run_elementwise`), record stats; returns the
    quantized array. Elements with ``|x| >= saturated_from`` count as saturated."""
    arr = as_float_array(x)
    check_no_nan(arr)
    offset = check_offset(offset)
    check_stats(stats)
    seed = resolve_seed(seed) if stochastic else None

    def oracle(flat):
        u = uniforms(seed, offset, flat.size) if stochastic else None
        x64 = flat.astype(np.float64)
        if kind == _BINARIZE:
            return _binarize_numpy(x64, u), None
        if kind == _TERNARIZE:
            return _ternarize_numpy(x64, p1, u), None
        return _pow2_numpy(x64, int(p1), int(p2), u), None

    def kernel(which, work, y, flags):
        args = (kind, work, y, float(p1), float(p2), stochastic,
                np.uint64(seed_key(seed) if stochastic else 0), np.uint64(offset))
        if which == "numba":
            _quantizer_cpu(*args)
        else:
            quantizer_cuda_kernel()[launch_config(work.size)](*args)

    def flags_of(src, y):
        xp = array_module(src)
        return xp.where(xp.abs(src) >= saturated_from, 1, xp.where((src != 0) & (y == 0), 2, 0))

    return run_elementwise(arr, backend, oracle, kernel, stats=stats, seed=seed, flags_of=flags_of)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


@dlpack_io
def binarize(x, stochastic: bool = False, seed: int | None = None, *, offset: int = 0,
             backend: str = "auto", stats: QuantStats | None = None):
    """Binary quantization to {-1, +1} (BinaryConnect, Courbariaux et al. 2015).

    Deterministic: +1 for ``x >= 0`` (sign(0) = +1, also for -0.0), else -1. Stochastic: +1 with
    probability ``clip((x + 1) / 2, 0, 1)`` (the "hard sigmoid"), i.e. +1 iff ``u < p`` with the
    counter-based uniform ``u`` of element ``offset + i`` and ``p`` evaluated in float64; then
    E[result] = clip(x, -1, 1). ``seed=None`` draws a fresh seed (recorded in ``stats.seed``).
    ``backend``: "numpy" (oracle), "numba", "cuda" or "auto" (as for `quantize`); ``offset``
    shifts the counters (chunked calls). Same shape and float dtype as ``x``.
    """
    stochastic = _check_bool(stochastic, "stochastic")
    return _run(_BINARIZE, x, 0.0, 0.0, stochastic, seed, offset, backend, stats)


@dlpack_io
def ternarize(x, threshold: float | None = None, stochastic: bool = False,
              seed: int | None = None, *, offset: int = 0, backend: str = "auto",
              stats: QuantStats | None = None):
    """Ternary quantization to {-1, 0, +1} (zeros are +0.0).

    Deterministic (Ternary Weight Networks, Li et al. 2016): sign(x) where ``|x| > threshold``,
    else 0; the default threshold is ``0.7 * mean(|x|)`` over the whole array (float64 numpy mean,
    computed once for every backend). Stochastic (ternary connect, Lin et al. 2015): sign(x) with
    probability ``min(|x|, 1)``, else 0, so E[result] = clip(x, -1, 1); ``threshold`` must then be
    None. ``stats.flushed_to_zero`` counts nonzero inputs that became 0.
    """
    stochastic = _check_bool(stochastic, "stochastic")
    if stochastic:
        if threshold is not None:
            raise ValueError("threshold: must be None with stochastic=True (P(nonzero) = min(|x|, 1))")
        threshold = 0.0
    elif threshold is None:
        x = as_float_array(x)  # converted once (`_run` passes a float array through)
        check_no_nan(x)
        threshold = 0.7 * float(np.mean(np.abs(x), dtype=np.float64)) if x.size else 0.0
        if not math.isfinite(threshold):
            raise ValueError("x: the default threshold 0.7*mean|x| is not finite (x holds +-inf); "
                             "pass threshold")
    else:
        threshold = float(threshold)
        if not (math.isfinite(threshold) and threshold >= 0.0):
            raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    return _run(_TERNARIZE, x, threshold, 0.0, stochastic, seed, offset, backend, stats)


@dlpack_io
def pow2(x, min_exp: int, max_exp: int, rounding: str = "nearest", seed: int | None = None, *,
         offset: int = 0, backend: str = "auto", stats: QuantStats | None = None):
    """Power-of-two (logarithmic) quantization to ``+-2^k`` with ``min_exp <= k <= max_exp``, or +0.

    ``rounding="nearest"`` rounds in the log domain: ``|x|`` in ``[2^k, 2^(k+1))`` goes to
    ``2^(k+1)`` iff ``|x| >= 2^(k+1/2)`` (decided exactly); a result below ``2^min_exp`` becomes 0
    (so ``|x| < 2^(min_exp-1/2)`` gives 0). ``rounding="stochastic"`` is unbiased in the linear
    domain: ``|x|`` in ``[2^k, 2^(k+1))`` goes up with probability ``|x|/2^k - 1``; below
    ``2^min_exp`` it goes to ``2^min_exp`` with probability ``|x|/2^min_exp``, else to 0 (so
    E[result] = x whenever ``|x| <= 2^max_exp``). Both saturate above: results past ``2^max_exp``
    (and +-inf) become ``+-2^max_exp`` (counted in ``stats.saturated``). 0 -> +0.
    ``min_exp``/``max_exp`` must satisfy ``min_exp <= max_exp`` and fit the output dtype
    (float64: -1074..1023, float32: -149..127, float16: -24..15).
    """
    rounding = check_choice(rounding, "rounding", POW2_ROUNDING)
    x = as_float_array(x)  # converted once (`_run` passes a float array through)
    dtype = x.dtype
    info = np.finfo(dtype)
    lo, hi = info.minexp - info.nmant, info.maxexp - 1
    min_exp = check_int(min_exp, "min_exp", lo, hi)
    max_exp = check_int(max_exp, "max_exp", min_exp, hi)
    stochastic = rounding == "stochastic"
    # Smallest |x| that saturates: past 2^max_exp (stochastic) or from 2^(max_exp+1/2) (nearest).
    top = 2.0**max_exp
    start = np.nextafter(top, math.inf) if stochastic else top * SQRT2
    return _run(_POW2, x, min_exp, max_exp, stochastic, seed, offset, backend, stats, float(start))
