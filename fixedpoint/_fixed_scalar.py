"""Per-element fixed-point quantization, written once for the Numba CPU and CUDA kernels.

The functions use only float/int arithmetic, comparisons and numpy scalar casts,
and call no other function, so the same source compiles with ``numba.njit`` and
``numba.cuda.jit(device=True)`` (and runs as plain Python under the CUDA simulator). They avoid
the two-argument builtins ``min``/``max`` too: since Numba 0.66 these fail to compile for
CUDA (numba/numba#10753). A kernel applies, per element: :func:`scale_input`, the random draw
(stochastic only), :func:`round_scaled`, :func:`apply_overflow`; :func:`element_function` joins
the four under one jit (compiled code calls compiled functions, not plain Python ones, so
it takes the jit and compiles the four with it first). This is exactly the rule that the numpy
oracle (``_fixed_oracle.py``) states in vectorised form; the tests check every bit of both.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from ._counter_rng import scalar_bits
from ._fixed_format import Fixed
from ._modes import Rounding

# Rounding-mode codes as plain ints (Numba kernels compare against these), from ``_modes.Rounding``.
NEAREST_EVEN = int(Rounding.NEAREST_EVEN)
NEAREST_AWAY = int(Rounding.NEAREST_AWAY)
TOWARD_ZERO = int(Rounding.TOWARD_ZERO)
FLOOR = int(Rounding.FLOOR)
CEIL = int(Rounding.CEIL)
STOCHASTIC = int(Rounding.STOCHASTIC)
# Status bits per element, and their slot in the counts array.
ST_SATURATED, ST_WRAPPED, ST_FLUSHED, ST_NAN, ST_INF_WRAP = 1, 2, 4, 8, 16
N_COUNTS = 5  # saturated, wrapped, flushed_to_zero, nan, inf-with-wrap (an error)
#: float64 values at or above this magnitude are integers.
TWO52 = 4503599627370496.0
#: Smallest normal float64; nonzero scaled values below it (inexact after underflow) are replaced
#: by +-TINY, which every rounding mode treats alike (|v| < 2**-53 < 1).
TINY = 2.0**-1022


class Params(NamedTuple):
    """Everything a kernel needs about one call, as plain scalars."""

    mode: int
    wrap: bool
    scale: float      # 2**frac
    modulus: float    # 2**(word - frac): |x| >= modulus wraps by at least one full turn
    inv_modulus: float  # 2**(frac - word)
    lo: float         # raw_min as a float (exact: 0 or -2**(word-1))
    hi: float         # raw_max + 1 as a float (exact power of two)
    raw_min: int
    raw_max: int
    mask: int         # 2**word - 1
    step: float       # 2**-frac
    key: np.uint64    # stream key of the seed
    counter0: np.uint64  # offset + 1 (mod 2**64): counter of element 0
    k: int            # random bits per stochastic decision
    kpow: int         # 2**k


#: Number of leading `Params` fields (``mode`` .. ``step``): those that depend on the format and the
#: modes only, a call's "head", built once per `Quantizer` (`call_head`); the fields after them
#: depend on the seed, the offset and ``sr_bits``.
N_HEAD = Params._fields.index("key")


def _format_fields(fmt: Fixed) -> dict:
    """The `Params` fields that depend on the format only, by name."""
    return dict(scale=2.0**fmt.frac, modulus=2.0 ** (fmt.word - fmt.frac),
                inv_modulus=2.0 ** (fmt.frac - fmt.word), lo=float(fmt.raw_min),
                hi=float(fmt.raw_max + 1), raw_min=fmt.raw_min, raw_max=fmt.raw_max,
                mask=(1 << fmt.word) - 1, step=fmt.step)


@functools.lru_cache(maxsize=256)
def format_scalars(fmt: Fixed) -> tuple:
    """The fields ``scale`` .. ``step`` of `Params` (they depend on the format only), in field order."""
    fields = _format_fields(fmt)
    return tuple(fields[name] for name in Params._fields[Params._fields.index("scale"):N_HEAD])


def call_head(mode: int, wrap: bool, fmt: Fixed) -> tuple:
    """``Params[:N_HEAD]`` of a call in ``fmt`` with rounding code ``mode`` and overflow ``wrap``,
    built by field name."""
    fields = dict(_format_fields(fmt), mode=mode, wrap=wrap)
    return tuple(fields[name] for name in Params._fields[:N_HEAD])


def round_scaled(v, mode, r, kpow):
    """Round the finite float64 ``v`` (the exact value ``x * 2**frac``) to an integer-valued float.

    ``r`` is the k-bit random integer and ``kpow = 2**k`` (stochastic only). Works on ``|v|``
    so that every step is exact: ``g = |v| - trunc(|v|)`` is the exact fractional part.
    Stochastic rounds up (toward +inf) iff ``r < floor(f * 2**k)`` with ``f = v - floor(v)``.
    Written with ``&``/``|`` rather than data-dependent branches (mispredicted on a CPU, and
    divergent on a GPU); only the per-call ``mode`` branches (an unknown code raises ValueError,
    which a CUDA kernel does not report: its callers check the code on the host).
    """
    a = abs(v)
    big = a >= TWO52  # already an integer (or inf)
    t = np.float64(np.int64(TWO52 if big else a))  # min(a, TWO52): no min(), see the module doc
    g = 0.0 if big else a - t
    neg = v < 0.0
    up = False  # add one to the magnitude
    if mode == NEAREST_EVEN:
        up = (g > 0.5) | ((g == 0.5) & ((np.int64(t) & 1) == 1))
    elif mode == NEAREST_AWAY:
        up = g >= 0.5
    elif mode == TOWARD_ZERO:
        up = False
    elif mode == FLOOR:
        up = neg & (g != 0.0)
    elif mode == CEIL:
        up = (v > 0.0) & (g != 0.0)
    elif mode == STOCHASTIC:
        gk = g * np.float64(kpow)  # exact: scaling by a power of two
        floor_gk = np.int64(gk)
        ceil_gk = floor_gk + (np.float64(floor_gk) < gk)
        # threshold floor(f * 2**k): f = g for v >= 0; f = 1 - g (or 0 when g = 0) for v < 0
        threshold = (kpow - ceil_gk) if neg else floor_gk
        toward_plus_inf = r < threshold
        up = (g != 0.0) & (toward_plus_inf != neg)
    else:
        raise ValueError("unknown rounding mode code")
    m = t + np.float64(up)
    return v if big else math.copysign(m, v)


def scale_input(xv, wrap, scale, modulus, inv_modulus):
    """``(v, status)``: the exact scaled value ``x * 2**frac`` of one float64 input ``xv``.

    NaN gives ``(0, ST_NAN)``; +-inf with wrap gives ``(0, ST_INF_WRAP)`` (the caller raises).
    With wrap, ``|x| >= 2**(word - frac)`` is first reduced exactly modulo that power of two, which moves
    ``x * 2**frac`` by a multiple of ``2**word`` and so changes neither the rounding nor the
    result; the status is then ``ST_WRAPPED``. Underflowed values become ``+-TINY``.
    """
    if xv != xv:
        return 0.0, ST_NAN
    status = 0
    if wrap:
        if abs(xv) == math.inf:
            return 0.0, ST_INF_WRAP
        if abs(xv) >= modulus:  # exact fmod(xv, modulus) for a power-of-two modulus
            q = xv * inv_modulus  # exact, and no division (whose zero check slows Numba 4x)
            xv = 0.0 if abs(q) >= TWO52 else xv - np.float64(np.int64(q)) * modulus
            status = ST_WRAPPED
    v = xv * scale
    if abs(v) < TINY and xv != 0.0:
        v = TINY if xv > 0.0 else -TINY
    return v, status


def apply_overflow(rv, xv, status, wrap, lo, hi, raw_min, raw_max, mask):
    """``(raw, status)`` for the rounded scaled value ``rv`` of the input ``xv``.

    ``status`` comes from :func:`scale_input`; a nonzero input that rounds to 0 is flushed.
    """
    if rv == 0.0 and xv != 0.0 and status == 0:
        status = ST_FLUSHED
    if rv >= hi or rv < lo:
        if wrap:
            return ((np.int64(rv) - raw_min) & mask) + raw_min, ST_WRAPPED
        if rv >= hi:
            return np.int64(raw_max), ST_SATURATED
        return np.int64(raw_min), ST_SATURATED
    return np.int64(rv), status


def element_function(jit):
    """``quantize_element(xv, counter, mode, wrap, scale, modulus, inv_modulus, lo, hi, raw_min,
    raw_max, mask, key, shift, kpow) -> (raw, status)``, compiled with ``jit``.

    ``jit`` is ``numba.njit(...)`` or ``numba.cuda.jit(device=True)``. One float64 input ``xv``:
    :func:`scale_input`; unless NaN (or inf with wrap; raw 0), the draw
    ``scalar_bits(key, counter) >> shift`` (stochastic only; ``counter`` is the element's
    uint64 counter, ``shift = uint64(64 - k)``), :func:`round_scaled`, :func:`apply_overflow`.
    The other arguments are the `Params` fields of the same names.
    """
    scale_input_, round_scaled_, apply_overflow_, bits_ = (
        jit(f) for f in (scale_input, round_scaled, apply_overflow, scalar_bits))

    def quantize_element(xv, counter, mode, wrap, scale, modulus, inv_modulus, lo, hi, raw_min,
                         raw_max, mask, key, shift, kpow):
        v, status = scale_input_(xv, wrap, scale, modulus, inv_modulus)
        if status == ST_NAN or status == ST_INF_WRAP:
            return np.int64(0), status
        r = np.int64(0)
        if mode == STOCHASTIC:
            r = np.int64(bits_(key, counter) >> shift)
        rv = round_scaled_(v, mode, r, kpow)
        return apply_overflow_(rv, xv, status, wrap, lo, hi, raw_min, raw_max, mask)

    return jit(quantize_element)
