"""Public ``quantize`` / ``to_raw`` / ``from_raw`` and the choice of backend.

All backends implement one rule (see ``_fixed_oracle.py``) and give identical bits and statistics.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Optional

import numpy as np

from . import _fixed_numba
from ._counter_rng import MASK64, seed_key
from ._dlpack import dlpack_io
from ._fixed_format import Fixed
from ._fixed_scalar import STOCHASTIC, Params, call_head
from ._modes import Rounding
from ._stats import QuantStats, check_stats
from ._validate import (
    array_module,
    as_float_array,
    check_choice,
    check_nan_policy,
    check_offset,
    check_overflow,
    check_result_dtype,
    check_rounding,
    check_sr_bits,
    is_cupy_array,
    nan_error,
    resolve_seed,
)

#: Backends of ``quantize``: the numpy oracle, fused Numba CPU kernels, Numba CUDA kernels.
BACKENDS = ("auto", "numpy", "numba", "cuda")
#: ``backend="auto"`` uses Numba for numpy arrays with at least this many elements.
NUMBA_THRESHOLD = 1 << 16
#: The same for Fixed formats in ``quantize``/``to_raw``, whose Numba kernel runs arrays of up to
#: ``_fixed_numba.SERIAL_MAX`` elements on the calling thread: faster than the numpy oracle from
#: one element on (reports/benchmarks/numerics.md, "Small arrays", has the per-call times).
FIXED_NUMBA_THRESHOLD = 1


@dlpack_io
def quantize(x: Any, fmt: Any, rounding: str = "nearest_even", overflow: str = "saturate", *,
             seed: Optional[int] = None, offset: int = 0, sr_bits: Optional[int] = None,
             backend: str = "auto", stats: Optional[QuantStats] = None, nan: str = "raise") -> Any:
    """Round ``x`` onto the grid of ``fmt``; same shape and float dtype as ``x``.

    ``fmt`` is a :class:`Fixed` (or a ``FloatFormat``, handled by ``quantize_float``).
    ``rounding`` applies to the exact value ``x * 2**frac``: ``nearest_even``, ``nearest_away``,
    ``toward_zero``, ``floor``, ``ceil`` or ``stochastic`` (round up with probability equal to
    the fractional part, drawn from the counter hash of ``(seed, offset + i)`` for flat index
    ``i``; ``sr_bits=k`` uses k random bits, default 53). ``overflow``: ``saturate`` or ``wrap``
    (two's complement modulo ``2**word``). ``seed=None`` with stochastic rounding draws a seed,
    recorded in ``stats.seed``. NaN raises ValueError unless ``nan="zero"``; +-inf saturate
    (wrap raises). Integer input is converted to float64 when exact. ``backend``: ``"auto"``,
    ``"numpy"``, ``"numba"`` or ``"cuda"`` (CuPy arrays; numpy input is copied to the GPU and back).
    """
    if not isinstance(fmt, Fixed):
        from ._float_format import FloatFormat

        if isinstance(fmt, FloatFormat):
            from ._float_quantize import quantize_float

            return quantize_float(x, fmt, rounding=rounding, overflow=overflow, seed=seed,
                                  offset=offset, sr_bits=sr_bits, backend=backend, stats=stats,
                                  nan=nan)
        raise TypeError(f"fmt must be a Fixed or FloatFormat, got {type(fmt).__name__}")
    return _bound(fmt, rounding, overflow, sr_bits, nan)(x, seed=seed, offset=offset,
                                                         backend=backend, stats=stats)


@dlpack_io
def to_raw(x: Any, fmt: Fixed, rounding: str = "nearest_even", overflow: str = "saturate", *,
           seed: Optional[int] = None, offset: int = 0, sr_bits: Optional[int] = None,
           backend: str = "auto", stats: Optional[QuantStats] = None, nan: str = "raise") -> Any:
    """The raw int64 integers of ``quantize(x, fmt, ...)`` (value = raw * 2**-frac), any word."""
    if not isinstance(fmt, Fixed):
        raise TypeError(f"fmt must be a Fixed format, got {type(fmt).__name__}")
    return _bound(fmt, rounding, overflow, sr_bits, nan)._general(x, seed, offset, backend,
                                                                  stats, as_raw=True)


def from_raw(raw: Any, fmt: Fixed, dtype: Any = np.float64) -> Any:
    """Values ``raw * 2**-frac`` of raw integers in ``[fmt.raw_min, fmt.raw_max]``.

    ``dtype`` must hold every value of ``fmt`` exactly (ValueError otherwise).
    """
    if not isinstance(fmt, Fixed):
        raise TypeError(f"fmt must be a Fixed format, got {type(fmt).__name__}")
    out_dtype = check_result_dtype(fmt, dtype)
    xp = array_module(raw)
    arr = xp.asarray(raw)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"raw must be an integer array, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < fmt.raw_min or int(arr.max()) > fmt.raw_max):
        raise ValueError(
            f"raw must lie in [{fmt.raw_min}, {fmt.raw_max}] for {fmt}, "
            f"got values in [{int(arr.min())}, {int(arr.max())}]"
        )
    out = (arr.astype(np.float64) * fmt.step).astype(out_dtype)
    return out[()] if out.ndim == 0 else out


def _choose_backend(backend: str, x: Any, threshold: int = NUMBA_THRESHOLD) -> str:
    check_choice(backend, "backend", BACKENDS)
    if is_cupy_array(x):
        if backend in ("numpy", "numba"):
            raise ValueError(f"backend={backend!r} needs a numpy array; got a CuPy array "
                             "(use backend='cuda' or 'auto')")
        return "cuda"
    if backend == "auto":
        return "numba" if x.size >= threshold else "numpy"
    return backend


@functools.lru_cache(maxsize=None)
def _backend_kernel(which: str):
    """The ``quantize_flat`` of backend ``which`` (imported on first use)."""
    if which == "numpy":
        from ._fixed_oracle import quantize_flat
    elif which == "numba":
        from ._fixed_numba import quantize_flat
    else:
        from ._fixed_cuda import quantize_flat
    return quantize_flat


def _call_modes(rounding: Any, overflow: Any, nan: Any, sr_bits: Any) -> tuple[int, bool, bool, int]:
    """``(mode code, wrap, raise on NaN, sr_bits)`` of checked mode arguments."""
    rounding = check_rounding(rounding)
    wrap = check_overflow(overflow) == "wrap"
    raise_nan = check_nan_policy(nan) == "raise"
    return int(Rounding.named(rounding)), wrap, raise_nan, check_sr_bits(sr_bits, rounding)


_COUNTER_OF_OFFSET_0 = np.uint64(1)
_KEY_OF_SEED_0 = np.uint64(seed_key(0))


class Quantizer:
    """A fixed-point format with its rounding, overflow, ``sr_bits`` and NaN policy, checked
    once: ``Quantizer(fmt, rounding, ...)(x, seed=, offset=)`` is ``quantize(x, fmt, rounding,
    ..., seed=, offset=)`` (the same bits, statistics and errors) with less work per call.

    For a network, which quantizes a few tensors per layer and step (many of them small), the
    per-call overhead is what costs: a call on a C-contiguous float32/float64 numpy array with
    ``backend="auto"`` or ``"numba"`` takes a short path straight to the Numba kernels; any
    other call (CuPy, float16, other backends, a seed or offset to check) takes ``quantize``'s.
    """

    __slots__ = ("fmt", "rounding", "overflow", "sr_bits", "nan", "_mode", "_raise_nan", "_k",
                 "_head", "_arrays")

    def __init__(self, fmt: Fixed, rounding: str = "nearest_even", overflow: str = "saturate", *,
                 sr_bits: Optional[int] = None, nan: str = "raise") -> None:
        if not isinstance(fmt, Fixed):
            raise TypeError(f"fmt must be a Fixed format, got {type(fmt).__name__}")
        mode, wrap, raise_nan, k = _call_modes(rounding, overflow, nan, sr_bits)
        fields = dict(fmt=fmt, rounding=rounding, overflow=overflow, sr_bits=sr_bits, nan=nan,
                      _mode=mode, _raise_nan=raise_nan, _k=k,
                      _head=call_head(mode, wrap, fmt),
                      _arrays={})  # input dtype char -> (result dtype, Numba call arrays)
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
                 backend: str = "auto", stats: Optional[QuantStats] = None) -> Any:
        """``x`` on the grid (same shape and float dtype); arguments as in `quantize`."""
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
                return self._general(x, seed, offset, backend, stats)
            entry = self._arrays.get(x.dtype.char)
            if entry is None:
                if x.dtype.char not in "fd":
                    return self._general(x, seed, offset, backend, stats)
                out_dtype = check_result_dtype(self.fmt, x.dtype)
                entry = self._arrays[x.dtype.char] = (
                    out_dtype, _fixed_numba.call_arrays(x.dtype.char, out_dtype, self._head, self._k))
            flat = x.reshape(-1)
            out = np.empty(flat.size, entry[0])
            counter0 = _COUNTER_OF_OFFSET_0 if offset == 0 else np.uint64((offset + 1) & MASK64)
            counts, max_error, sums = _fixed_numba.run(flat, out, entry[1], key, counter0,
                                                         stats is not None)
            return self._finish(x, out, counts, max_error, sums, seed, stats)
        if (type(x) is np.ndarray and x.ndim > 1 and x.flags.f_contiguous and stats is None
                and self._mode != STOCHASTIC):
            # a transposed view (e.g. a weight stored (out, in)): a deterministic mode rounds each element
            # on its own, so run the contiguous x.T and hand back its transpose, without a copy
            return self(x.T, seed=seed, offset=offset, backend=backend).T
        return self._general(x, seed, offset, backend, stats)

    def _general(self, x: Any, seed: Any, offset: Any, backend: Any, stats: Any,
                as_raw: bool = False) -> Any:
        """Any call (checks every argument, picks the backend); ``as_raw``: `to_raw`."""
        x = as_float_array(x, "x")
        offset = check_offset(offset)
        check_stats(stats)
        stochastic = self._mode == STOCHASTIC
        if stochastic or seed is not None:
            seed = resolve_seed(seed)
        out_dtype = np.dtype(np.int64) if as_raw else check_result_dtype(self.fmt, x.dtype)
        which = _choose_backend(backend, x, FIXED_NUMBA_THRESHOLD)
        params = Params(*self._head,
                        key=np.uint64(seed_key(seed)) if stochastic else _KEY_OF_SEED_0,
                        counter0=np.uint64((offset + 1) & MASK64), k=self._k, kpow=1 << self._k)
        out, counts, max_error, sums = _backend_kernel(which)(x.reshape(-1), params,
                                                              seed if stochastic else 0, offset,
                                                              out_dtype, stats is not None)
        return self._finish(x, out, counts, max_error, sums, seed, stats)

    def _finish(self, x, out, counts, max_error: float, sums, seed, stats):
        """A backend's flat result for ``x``: raise for NaN (``nan="raise"``) or wrapped
        infinities, add the statistics, give ``out`` the shape of ``x``."""
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
        if x.ndim == 1:
            return out
        out = out.reshape(x.shape)
        return out[()] if out.ndim == 0 else out


@functools.lru_cache(maxsize=256)
def _cached_bound(fmt: Fixed, rounding: str, overflow: str, sr_bits: Optional[int],
                  nan: str) -> Quantizer:
    return Quantizer(fmt, rounding, overflow, sr_bits=sr_bits, nan=nan)


def _bound(fmt: Fixed, rounding: Any, overflow: Any, sr_bits: Any, nan: Any) -> Quantizer:
    """The `Quantizer` of a `quantize` call, cached only for exact ``str`` modes and an
    ``int``/None ``sr_bits`` (so that e.g. ``True`` or ``1.0`` never hit the entry of ``1``, and
    unhashable arguments get the checks' own errors)."""
    if (type(rounding) is str and type(overflow) is str and type(nan) is str
            and (sr_bits is None or type(sr_bits) is int)):
        return _cached_bound(fmt, rounding, overflow, sr_bits, nan)
    return Quantizer(fmt, rounding, overflow, sr_bits=sr_bits, nan=nan)
