"""The numpy oracle of quantization to a `FloatFormat`: the rule, stated once in vectorised form.

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

import numpy as np

from ._counter_rng import DEFAULT_SR_BITS
from ._float_format import FloatFormat
from ._modes import Rounding


def _away_on_overflow(mode: Rounding, neg: np.ndarray) -> np.ndarray:
    """Where IEEE overflow goes to inf (True) rather than to max (False), for the sign bits
    ``neg`` (`Rounding.max_on_overflow`)."""
    return np.where(neg, not mode.max_on_overflow(True), not mode.max_on_overflow(False))


def reference_float_quantize(x, fmt: FloatFormat, rounding: str = "nearest_even",
                             overflow: str = "saturate", *, bits: np.ndarray | None = None,
                             sr_bits: int | None = None, nan: str = "propagate"):
    """The oracle: ``(y, overflowed, flushed)`` for float64 ``x`` (any shape, NaNs allowed).

    ``y`` is float64; ``overflowed`` marks elements whose magnitude exceeded ``fmt.max``
    (including +-inf inputs); ``flushed`` marks nonzero finite inputs whose result is zero.
    ``bits`` are the 64-bit draws (uint64, flat, one per element) for ``stochastic``.
    """
    mode = Rounding.named(rounding)
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
        if mode is Rounding.NEAREST_EVEN:
            up = (f > 0.5) | ((f == 0.5) & (np.fmod(n, 2.0) == 1.0))
        elif mode is Rounding.NEAREST_AWAY:
            up = f >= 0.5
        elif mode is Rounding.TOWARD_ZERO:
            up = np.zeros_like(inexact)
        elif mode is Rounding.FLOOR:
            up = inexact & neg
        elif mode is Rounding.CEIL:
            up = inexact & ~neg
        elif mode is Rounding.STOCHASTIC:
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
        big = np.where(_away_on_overflow(mode, neg) | np.isinf(x), np.inf, fmt.max)
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
