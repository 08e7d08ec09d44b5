"""`Quantizer`: a format bound to its rounding, overflow, ``sr_bits`` and NaN policy, checked once.

All backends implement one rule (see ``_fixed_oracle.py`` and ``_float_quantize.py``) and give
identical bits and statistics; ``Quantizer(fmt, ...)(x, ...)`` is ``quantize(x, fmt, ...)``.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Optional, Union

import numpy as np

from . import _fixed_numba
from ._backend import FIXED_NUMBA_THRESHOLD, _choose_backend, fixed_kernel
from ._counter_rng import MASK64, seed_key
from ._dlpack import dlpack_io
from ._fixed_format import Fixed
from ._fixed_scalar import STOCHASTIC, Params, call_head
from ._float_format import FloatFormat
from ._float_quantize import check_float_modes, quantize_float_checked
from ._modes import Rounding
from ._out import RAW_DTYPES, check_out, deliver, holding_dtypes
from ._stats import QuantStats, check_stats
from ._validate import (
    array_module,
    as_float_array,
    check_nan_policy,
    check_offset,
    check_overflow,
    check_result_dtype,
    check_rounding,
    check_sr_bits,
    nan_error,
    resolve_seed,
)


def _call_modes(rounding: Any, overflow: Any, nan: Any, sr_bits: Any) -> tuple[int, bool, bool, int]:
    """``(mode code, wrap, raise on NaN, sr_bits)`` of checked mode arguments."""
    rounding = check_rounding(rounding)
    wrap = check_overflow(overflow) == "wrap"
    raise_nan = check_nan_policy(nan) == "raise"
    return int(Rounding.named(rounding)), wrap, raise_nan, check_sr_bits(sr_bits, rounding)


def _fixed_out_dtypes(fmt: Fixed) -> tuple[np.dtype, ...]:
    """The float dtypes an ``out`` for ``fmt`` may have: those that hold every value exactly."""
    def holds(dtype: np.dtype) -> bool:
        try:
            check_result_dtype(fmt, dtype)
        except ValueError:
            return False
        return True

    return holding_dtypes(holds)


_COUNTER_OF_OFFSET_0 = np.uint64(1)
_KEY_OF_SEED_0 = np.uint64(seed_key(0))


class Quantizer:
    """A format (`Fixed` or `FloatFormat`) with its rounding, overflow, ``sr_bits`` and NaN
    policy, checked once (with `quantize`'s messages): ``Quantizer(fmt, rounding, ...)(x, seed=,
    offset=)`` is ``quantize(x, fmt, rounding, ..., seed=, offset=)`` (the same bits, statistics
    and errors) with less work per call.

    For a network, which quantizes a few tensors per layer and step (many of them small), the
    per-call overhead is what costs: for a Fixed format, a call on a C-contiguous float32/float64
    numpy array with ``backend="auto"`` or ``"numba"`` takes a short path straight to the Numba
    kernels (writing into ``out`` when it is a C-contiguous numpy array of that dtype, apart from
    ``x``); any other call (CuPy, float16, other backends, a seed or offset to check, a float
    format) takes ``quantize``'s.
    """

    __slots__ = ("fmt", "rounding", "overflow", "sr_bits", "nan", "_mode", "_raise_nan", "_k",
                 "_head", "_arrays")

    def __init__(self, fmt: Union[Fixed, FloatFormat], rounding: str = "nearest_even",
                 overflow: str = "saturate", *, sr_bits: Optional[int] = None,
                 nan: str = "raise") -> None:
        if isinstance(fmt, Fixed):
            mode, wrap, raise_nan, k = _call_modes(rounding, overflow, nan, sr_bits)
            head = call_head(mode, wrap, fmt)
            arrays = {}  # input dtype char -> (result dtype, Numba call arrays)
        elif isinstance(fmt, FloatFormat):
            k = check_float_modes(fmt, rounding, overflow, nan, sr_bits)
            mode = raise_nan = head = arrays = None  # the short path's, unused
        else:
            raise TypeError(f"fmt must be a Fixed or FloatFormat, got {type(fmt).__name__}")
        fields = dict(fmt=fmt, rounding=rounding, overflow=overflow, sr_bits=sr_bits, nan=nan,
                      _mode=mode, _raise_nan=raise_nan, _k=k, _head=head, _arrays=arrays)
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Quantizer is immutable (make a new one for another {name!r})")

    def __copy__(self) -> Quantizer:
        return self  # immutable: a copy may share it (copy.deepcopy of a model holding one)

    def __deepcopy__(self, memo: dict) -> Quantizer:
        return self

    def __repr__(self) -> str:
        tail = "" if self.sr_bits is None else f", sr_bits={self.sr_bits}"
        return (f"Quantizer({self.fmt}, {self.rounding!r}, {self.overflow!r}{tail}, "
                f"nan={self.nan!r})")

    @functools.partial(dlpack_io, position=1)
    def __call__(self, x: Any, *, seed: Optional[int] = None, offset: int = 0,
                 backend: str = "auto", stats: Optional[QuantStats] = None, out: Any = None) -> Any:
        """``x`` on the grid (same shape and float dtype), or ``out`` holding it; arguments as
        in `quantize`."""
        if self._head is None:
            return quantize_float_checked(x, self.fmt, self.rounding, self.overflow, self.nan,
                                          self._k, seed=seed, offset=offset, backend=backend,
                                          stats=stats, out=out)
        if (type(x) is np.ndarray and (backend == "auto" or backend == "numba")
                and type(offset) is int and 0 <= offset <= MASK64 and x.size
                and (stats is None or type(stats) is QuantStats) and x.flags.c_contiguous
                and x.dtype.isnative):  # other byte orders: `_general` converts them
            stochastic = self._mode == STOCHASTIC
            if type(seed) is int and 0 <= seed <= MASK64:
                key = np.uint64(seed_key(seed)) if stochastic else _KEY_OF_SEED_0
            elif seed is None and not stochastic:
                key = _KEY_OF_SEED_0
            else:  # a seed to draw (stochastic, None) or to check
                return self._general(x, seed, offset, backend, stats, out)
            entry = self._arrays.get(x.dtype.char)
            if entry is None:
                if x.dtype.char not in "fd":
                    return self._general(x, seed, offset, backend, stats, out)
                out_dtype = check_result_dtype(self.fmt, x.dtype)
                entry = self._arrays[x.dtype.char] = (
                    out_dtype, _fixed_numba.call_arrays(x.dtype.char, out_dtype, self._head, self._k))
            flat = x.reshape(-1)
            if out is None:
                result = np.empty(flat.size, entry[0])
            elif (type(out) is np.ndarray and out.dtype == entry[0] and out.shape == x.shape
                  and out.flags.c_contiguous and out.flags.writeable
                  and not np.may_share_memory(out, x)):
                result = out.reshape(-1)  # the kernel writes straight into out
            else:  # checked, computed into a temporary and copied
                return self._general(x, seed, offset, backend, stats, out)
            counter0 = _COUNTER_OF_OFFSET_0 if offset == 0 else np.uint64((offset + 1) & MASK64)
            counts, max_error, sums = _fixed_numba.run(flat, result, entry[1], key, counter0,
                                                         stats is not None)
            return self._finish(x, result, counts, max_error, sums, seed, stats, out, True)
        if (type(x) is np.ndarray and x.ndim > 1 and x.flags.f_contiguous and not x.flags.c_contiguous
                and stats is None and self._mode != STOCHASTIC
                and (out is None or (type(out) is np.ndarray and out.shape == x.shape))):
            # a transposed view (e.g. a weight stored (out, in)): a deterministic mode rounds each element
            # on its own, so run the contiguous x.T and hand back its transpose, without a copy
            y = self(x.T, seed=seed, offset=offset, backend=backend, out=None if out is None else out.T)
            return y.T if out is None else out
        return self._general(x, seed, offset, backend, stats, out)

    def _general(self, x: Any, seed: Any, offset: Any, backend: Any, stats: Any, out: Any = None,
                 as_raw: bool = False) -> Any:
        """Any call (checks every argument, picks the backend); ``as_raw``: `to_raw`."""
        x = as_float_array(x, "x")
        offset = check_offset(offset)
        check_stats(stats)
        stochastic = self._mode == STOCHASTIC
        if stochastic or seed is not None:
            seed = resolve_seed(seed)
        out_dtype = np.dtype(np.int64) if as_raw else check_result_dtype(self.fmt, x.dtype)
        if out is not None:
            allowed = RAW_DTYPES if as_raw else _fixed_out_dtypes(self.fmt)
            check_out(out, x, allowed, f"every {'raw integer' if as_raw else 'value'} of {self.fmt}")
        which = _choose_backend(backend, x, FIXED_NUMBA_THRESHOLD)
        params = Params(*self._head,
                        key=np.uint64(seed_key(seed)) if stochastic else _KEY_OF_SEED_0,
                        counter0=np.uint64((offset + 1) & MASK64), k=self._k, kpow=1 << self._k)
        result, counts, max_error, sums = fixed_kernel(which)(x.reshape(-1), params,
                                                              seed if stochastic else 0, offset,
                                                              out_dtype, stats is not None)
        return self._finish(x, result, counts, max_error, sums, seed, stats, out, False)

    def _finish(self, x, result, counts, max_error: float, sums, seed, stats, out, written: bool):
        """A backend's flat ``result`` for ``x``: raise for NaN (``nan="raise"``) or wrapped
        infinities, add the statistics, give the result the shape of ``x`` (or write it into
        ``out``; ``written``: ``result`` is ``out``'s memory)."""
        saturated, wrapped, flushed, nans, inf_wrap = counts.tolist()
        if nans and self._raise_nan:
            raise nan_error(x, "x")
        if inf_wrap:
            xp = array_module(x)
            first = int(xp.flatnonzero(xp.isinf(x.reshape(-1)))[0])
            raise ValueError(f"x contains {inf_wrap} infinite value(s) (first at flat index "
                             f"{first}); overflow='wrap' cannot wrap infinity, use "
                             "overflow='saturate'")
        if stats is not None:
            stats.add(x.size, nans, saturated, wrapped, flushed, max_error,
                      math.fsum(np.asarray(sums).tolist()),
                      seed if self._mode == STOCHASTIC else None)
        if x.ndim == 1 and out is None:
            return result
        return deliver(result, x.shape, out, written)
