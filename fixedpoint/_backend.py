"""Backends: which one runs a call, and the one driver of the elementwise quantizers.

Every quantizer has three backends that give the same bits and statistics: ``"numpy"`` (the oracle,
the specification), ``"numba"`` (parallel CPU kernels) and ``"cuda"`` (Numba CUDA kernels; CuPy
arrays, or numpy input copied to the GPU and back). `_choose_backend` resolves ``backend="auto"``.

`run_elementwise` drives the float-format quantizer and binarize/ternarize/pow2: choose the
backend, move numpy input to the GPU for ``"cuda"`` (and the result back), flatten (C order),
launch the oracle or the kernel, add the statistics, reshape (or write into ``out``). The Fixed
path shares the choice and the delivery (`fixed_kernel`, `_out.deliver`): its backends move data
to the GPU themselves and return counts and error sums rather than per-element flags, and the
`Quantizer` short path calls the Numba kernel directly.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import numpy as np

from ._out import deliver, direct_view
from ._stats import QuantStats, record_stats
from ._validate import array_module, check_choice, is_cupy_array

#: Backends of the quantizers: the numpy oracle, Numba CPU kernels, Numba CUDA kernels.
BACKENDS = ("auto", "numpy", "numba", "cuda")
#: ``backend="auto"`` uses Numba for numpy arrays with at least this many elements.
NUMBA_THRESHOLD = 1 << 16
#: The same for Fixed formats in ``quantize``/``to_raw``, whose Numba kernel runs arrays of up to
#: ``_fixed_numba.SERIAL_MAX`` elements on the calling thread: faster than the numpy oracle from
#: one element on (reports/benchmarks/numerics.md, "Small arrays", has the per-call times).
FIXED_NUMBA_THRESHOLD = 1


def _choose_backend(backend: str, x: Any, threshold: int = NUMBA_THRESHOLD) -> str:
    """The backend that runs ``x``: ``"cuda"`` for CuPy arrays (``"numpy"``/``"numba"`` raise),
    for ``"auto"`` Numba from ``threshold`` elements on, else numpy; ValueError for other names."""
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
def fixed_kernel(which: str) -> Callable:
    """The ``quantize_flat`` of backend ``which`` for Fixed formats (imported on first use)."""
    if which == "numpy":
        from ._fixed_oracle import quantize_flat
    elif which == "numba":
        from ._fixed_numba import quantize_flat
    else:
        from ._fixed_cuda import quantize_flat
    return quantize_flat


def run_elementwise(arr: Any, backend: str, oracle: Callable, kernel: Callable, *,
                    stats: Optional[QuantStats], seed: Optional[int], out: Any = None,
                    flags_of: Optional[Callable] = None) -> Any:
    """Quantize the float array ``arr`` (numpy or CuPy, checked) element by element.

    ``oracle(flat)`` -> ``(y, flags)`` runs the numpy backend on the flat input; ``kernel(which,
    work, y, flags)`` runs ``"numba"``/``"cuda"``, writing into ``y`` (and into ``flags`` when it
    has ``work.size`` elements, i.e. with ``stats``); ``work`` is the flat input in float32 for
    float16 (the kernels take float32/float64; both casts are exact). ``flags`` are int8 per
    element (1 overflowed, 2 flushed to zero) for `record_stats`; ``flags_of(src, y)`` computes
    them instead from the array the backend read and its result. The result has ``arr``'s shape
    and dtype (0-d: a scalar), or is ``out`` (checked by `_out.check_out`) holding it.
    """
    which = _choose_backend(backend, arr)
    to_device = which == "cuda" and not is_cupy_array(arr)
    if to_device:
        import cupy

        arr_dev = cupy.asarray(arr)
    else:
        arr_dev = arr
    xp = array_module(arr_dev)
    flat = xp.ascontiguousarray(arr_dev).reshape(-1)
    written = False
    if which == "numpy":
        src = flat
        y, flags = oracle(flat)
    else:
        src = flat.astype(np.float32) if flat.dtype == np.float16 else flat
        direct = not to_device and src.dtype == arr.dtype
        y = direct_view(out, arr, arr.dtype, xp) if direct else None
        written = y is not None
        if y is None:
            y = xp.empty(flat.size, dtype=src.dtype)
        flags = xp.empty(flat.size if stats is not None and flags_of is None else 0, dtype=np.int8)
        kernel(which, src, y, flags)
    if stats is not None and flags_of is not None:
        flags = flags_of(src, y)
    y = y.astype(arr.dtype, copy=False)
    if stats is not None:
        record_stats(stats, flat, y, flags, seed)
    if to_device:
        y = y.get()
    return deliver(y, arr.shape, out, written)
