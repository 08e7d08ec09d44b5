"""Argument checks shared by every fixedpoint entry point.

Bad input gets a ValueError or TypeError that names the argument and its allowed range, before
any kernel runs. Array helpers accept numpy arrays and CuPy arrays (``xp`` = their module).
"""
from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np

from . import _counter_rng
from ._modes import Overflow, Rounding, mode_names

#: Rounding modes of ``quantize`` (rounding applies to the exact value ``x * 2**frac``).
ROUNDING_MODES = mode_names(tuple(Rounding))
#: Overflow modes of fixed-point ``quantize``.
OVERFLOW_MODES = mode_names((Overflow.SATURATE, Overflow.WRAP))
#: What to do with NaN input: raise a ValueError, or map NaN to zero.
NAN_POLICIES = ("raise", "zero")
#: Largest ``sr_bits``: the uniform of the counter RNG has 53 bits.
MAX_SR_BITS = _counter_rng.DEFAULT_SR_BITS
_U64 = 1 << 64


def check_int(value: Any, name: str, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``; TypeError for non-integers (bool included)."""
    if type(value) is int and lo <= value <= hi:  # the common case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of the ``allowed`` names, else ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def check_rounding(rounding: Any, allowed: tuple[str, ...] = ROUNDING_MODES) -> str:
    """A valid rounding-mode name."""
    return check_choice(rounding, "rounding", allowed)


def check_overflow(overflow: Any, allowed: tuple[str, ...] = OVERFLOW_MODES) -> str:
    """A valid overflow-mode name."""
    return check_choice(overflow, "overflow", allowed)


def check_nan_policy(nan: Any) -> str:
    """``"raise"`` or ``"zero"``."""
    return check_choice(nan, "nan", NAN_POLICIES)


def is_cupy_array(x: Any) -> bool:
    """True for a CuPy ndarray (without importing CuPy)."""
    kind = type(x)
    return kind is not np.ndarray and kind.__module__.split(".")[0] == "cupy"


def array_module(x: Any) -> Any:
    """``cupy`` for CuPy arrays, else ``numpy``."""
    if is_cupy_array(x):
        import cupy

        return cupy
    return np


def as_float_array(x: Any, name: str = "x") -> Any:
    """``x`` as a float16/32/64 array (numpy, or CuPy for CuPy input), converting exactly.

    Float arrays in native byte order pass through unchanged; big- (or little-) endian input of
    the other order is converted to the same dtype in native order (same values; the compiled
    kernels take native arrays only). Integer and bool input is converted to float64 when every
    value is exactly representable, else TypeError (likewise longdouble). Complex, object and
    string input raise TypeError.
    """
    if type(x) is np.ndarray and x.dtype.kind == "f" and x.dtype.itemsize <= 8:
        return x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))
    xp = array_module(x)
    arr = xp.asarray(x)
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.itemsize <= 8:
        return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))
    if kind in "biuf":
        out = arr.astype(np.float64)
        if kind == "f":  # longdouble: exact iff the round trip is the identity (NaN kept)
            exact = (out.astype(arr.dtype) == arr) | xp.isnan(arr)
        elif kind == "b" or arr.dtype.itemsize <= 4:
            exact = None
        else:  # 64-bit integers: beyond 2**53 only some values are floats
            limit = 2.0**64 if kind == "u" else 2.0**63
            fits = (out < limit) & (out >= -(2.0**63))
            back = xp.where(fits, out, 0.0).astype(arr.dtype)
            exact = fits & (back == arr)
        if exact is not None and not bool(xp.all(exact)):
            raise TypeError(
                f"{name} has dtype {arr.dtype} with values that float64 cannot hold exactly; "
                "pass a float array"
            )
        return out
    raise TypeError(f"{name} must be a real float or integer array, got dtype {arr.dtype}")


def nan_error(x: Any, name: str = "x") -> ValueError:
    """The ValueError for NaN in ``x``: the count and the first (C-order) index."""
    host = np.asarray(x.get() if is_cupy_array(x) else x)
    where = np.flatnonzero(np.isnan(host))
    first = np.unravel_index(int(where[0]), host.shape) if host.ndim else ()
    return ValueError(
        f"{name} contains {where.size} NaN value(s), the first at index {tuple(map(int, first))}; "
        "pass nan='zero' to map NaN to 0"
    )


def check_no_nan(x: Any, name: str = "x") -> None:
    """Raise :func:`nan_error` if ``x`` has NaN."""
    if bool(array_module(x).isnan(x).any()):
        raise nan_error(x, name)


def resolve_seed(seed: Any) -> int:
    """The seed to use: ``seed`` checked to lie in [0, 2**64), or a fresh one for None."""
    if seed is None:
        return _counter_rng.draw_seed()
    return check_int(seed, "seed", 0, _U64 - 1)


def check_offset(offset: Any) -> int:
    """The counter offset of the first element, in [0, 2**64)."""
    return check_int(offset, "offset", 0, _U64 - 1)


def check_sr_bits(sr_bits: Any, rounding: str) -> int:
    """Random bits per stochastic decision (default 53); only valid with stochastic rounding."""
    if sr_bits is None:
        return MAX_SR_BITS
    if rounding != "stochastic":
        raise ValueError(f"sr_bits applies only to rounding='stochastic', got rounding={rounding!r}")
    return check_int(sr_bits, "sr_bits", 1, MAX_SR_BITS)


def check_result_dtype(fmt: Any, dtype: Any) -> np.dtype:
    """``dtype`` if it is a float dtype that holds every value of ``fmt`` exactly, else ValueError.

    Needs ``word <= mantissa bits + 1`` (24 for float32, 53 for float64), the step ``2**-frac``
    no finer than the smallest subnormal, and the largest magnitude below the overflow threshold.
    """
    return _checked_result_dtype(fmt, np.dtype(dtype))


@functools.lru_cache(maxsize=256)
def _checked_result_dtype(fmt: Any, dtype: np.dtype) -> np.dtype:
    """`check_result_dtype` for a numpy dtype (cached: formats are immutable; errors are not cached)."""
    if dtype.kind != "f" or dtype.itemsize > 8:
        raise ValueError(f"dtype must be float16, float32 or float64, got {dtype}")
    info = np.finfo(dtype)
    top = fmt.word - fmt.frac - (1 if fmt.signed else 0)  # log2 of the largest magnitude bound
    fits = (
        fmt.word <= info.nmant + 1
        and -fmt.frac >= info.minexp - info.nmant
        and (top < info.maxexp if fmt.signed else top <= info.maxexp)
    )
    if not fits:
        hint = "use to_raw for the raw integers" if dtype == np.float64 else "use float64 input or to_raw"
        raise ValueError(
            f"a {dtype} result cannot hold every value of {fmt} exactly "
            f"({dtype} holds word <= {info.nmant + 1} and steps >= 2**{info.minexp - info.nmant}); {hint}"
        )
    return dtype
