"""Any DLPack array in, the same kind of array out: torch tensors, JAX arrays, ... (zero-copy).

fixedpoint computes on numpy arrays (CPU) and CuPy arrays (CUDA). An argument of another array
library that speaks DLPack (``__dlpack__`` and ``__dlpack_device__``) is viewed without a copy —
``numpy.from_dlpack`` on the CPU, ``cupy.from_dlpack`` on a CUDA device, never a host round trip —
and the result is handed back through the ``from_dlpack`` of the argument's own top-level module
(``torch.from_dlpack`` for a ``torch.Tensor``), so it lives on the same device. fixedpoint imports
none of these libraries.
"""
from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

import numpy as np

_CPU, _CUDA, _CUDA_HOST, _CUDA_MANAGED = 1, 2, 3, 13  # DLPack device types


def is_foreign(x: Any) -> bool:
    """True for a DLPack-capable array that is neither numpy nor CuPy."""
    if isinstance(x, (np.ndarray, np.generic)):
        return False
    kind = type(x)
    return (hasattr(kind, "__dlpack__") and hasattr(kind, "__dlpack_device__")
            and kind.__module__.split(".")[0] != "cupy")


def to_native(x: Any, what: str = "x") -> Any:
    """A numpy (CPU) or CuPy (CUDA) view of the DLPack array ``x``."""
    device = x.__dlpack_device__()[0]
    try:
        if device in (_CPU, _CUDA_HOST):
            return np.from_dlpack(x)
        if device in (_CUDA, _CUDA_MANAGED):
            import cupy

            return cupy.from_dlpack(x)
    except (RuntimeError, BufferError, TypeError) as e:
        if "dtype" in str(e).lower():  # e.g. bfloat16, which numpy and CuPy do not have
            dtype = getattr(x, "dtype", "?")
            raise TypeError(f"{what}: a {type(x).__name__} of dtype {dtype}, which has no numpy/CuPy "
                            f"equivalent ({e}); convert it to float32 or float64 first") from None
        raise TypeError(f"{what}: a {type(x).__name__} that cannot be shared without a copy ({e}); "
                        f"pass a detached, dense array (e.g. tensor.detach())") from None
    raise TypeError(f"{what}: arrays on DLPack device type {device} are not supported; CPU and CUDA are")


def from_native(result: Any, like: Any) -> Any:
    """``result`` (numpy/CuPy array) as an array of ``like``'s library (zero-copy)."""
    lib = importlib.import_module(type(like).__module__.split(".")[0])
    if isinstance(result, np.generic):
        result = np.asarray(result)
    return lib.from_dlpack(result)


def dlpack_io(fn: Callable, position: int = 0) -> Callable:
    """``fn`` accepting a foreign DLPack array as its positional argument ``position`` (returned as
    the same kind of array); numpy and CuPy arguments pass straight through."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        x = args[position] if len(args) > position else None
        if x is None or not is_foreign(x):
            return fn(*args, **kwargs)
        args = (*args[:position], to_native(x), *args[position + 1:])
        return from_native(fn(*args, **kwargs), x)

    return wrapper
