"""The ``out=`` argument of `quantize`, `Quantizer` and `to_raw`: which arrays may receive a result.

numpy's convention: ``out`` has the shape of ``x``, lives where the result lives (a numpy array for
numpy input, whatever the backend; a CuPy array on x's device for CuPy input), is writeable and has
a dtype that holds every value of the format exactly (float16, float32 or float64 for values; int64
for raw integers), in either byte order. It may be any strided view, and may be ``x`` itself
(in-place rounding). The result's bits are those of the call without ``out``, converted to
``out.dtype`` (exact: the dtype holds every value). A bad ``out`` raises before anything is written.

A result goes straight into ``out`` when the kernel can write it there (C-contiguous, the kernel's
dtype, no memory shared with ``x``: the kernels read ``x`` again after writing, e.g. to redo a block
or count the errors); otherwise it is computed into a temporary array and copied into ``out`` once
the call has succeeded (so an error leaves an aliased ``x`` untouched).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ._validate import is_cupy_array

#: The float dtypes a result may have (quantize returns x's, which is one of them).
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
#: The dtype of raw integers (`to_raw`).
RAW_DTYPES = (np.dtype(np.int64),)


def holding_dtypes(holds: Callable[[np.dtype], bool]) -> tuple[np.dtype, ...]:
    """The float dtypes for which ``holds(dtype)`` (the format fits them)."""
    return tuple(d for d in FLOAT_DTYPES if holds(d))


def check_out(out: Any, x: Any, allowed: tuple[np.dtype, ...], what: str) -> None:
    """TypeError/ValueError, one line naming ``out`` and what is allowed, unless ``out`` can
    receive the result for the float array ``x`` (numpy or CuPy): ``allowed`` dtypes (either byte
    order), ``what`` the values they must hold (for the message)."""
    on_gpu = is_cupy_array(x)
    if on_gpu != is_cupy_array(out) or not (on_gpu or isinstance(out, np.ndarray)):
        raise TypeError(f"out must be a {'CuPy' if on_gpu else 'numpy'} array as x is, "
                        f"got {type(out).__name__}")
    if on_gpu and out.device != x.device:
        raise ValueError(f"out must be on x's device {x.device}, got one on {out.device}")
    if out.shape != x.shape:
        raise ValueError(f"out must have x's shape {x.shape}, got shape {out.shape}")
    if out.dtype.newbyteorder("=") not in allowed:
        names = ", ".join(str(d) for d in allowed)
        raise TypeError(f"out must have a dtype that holds {what} exactly ({names}), got {out.dtype}")
    if not getattr(out.flags, "writeable", True):  # CuPy arrays are always writeable
        raise ValueError("out must be writeable, got a read-only array")


def direct_view(out: Any, x: Any, dtype: np.dtype, xp: Any) -> Any:
    """``out`` as a flat array a kernel can write the ``dtype`` result of ``x`` into (C-contiguous,
    that dtype, no memory shared with ``x``), else None (the result goes through a temporary)."""
    if (out is None or out.dtype != dtype or not out.flags.c_contiguous
            or xp.may_share_memory(out, x)):
        return None
    return out.reshape(-1)


def deliver(y: Any, shape: tuple, out: Any, written: bool) -> Any:
    """The result of a call from its flat ``y``: ``y`` in ``shape`` (0-d as a scalar), or ``out``
    holding it (``written``: ``y`` is already ``out``'s memory)."""
    if out is None:
        y = y.reshape(shape)
        return y[()] if y.ndim == 0 else y
    if not written:
        out[...] = y.reshape(shape)
    return out
