"""The array module of an array: numpy, or CuPy for CuPy arrays (CuPy is optional).

Every layer is written once against ``xp = get_array_module(x)`` so the same code runs
on the CPU (numpy) and on a CUDA GPU (CuPy). CuPy is imported only when a CuPy array is
actually seen, so importing hwsim never requires it.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np


def get_array_module(*arrays) -> ModuleType:
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy

            return cupy
    return np


def to_numpy(a):
    """A numpy copy/view of ``a`` (``a.get()`` for CuPy arrays)."""
    return a.get() if type(a).__module__.startswith("cupy") else np.asarray(a)


#: Names accepted by ``hwsim.train(..., xp=)`` and the CLI's ``--array-module``.
ARRAY_MODULES = ("numpy", "cupy")


def array_module_named(name: str, argument: str = "xp") -> ModuleType:
    """The module ``name`` of `ARRAY_MODULES`; ``"cupy"`` needs CuPy and a CUDA device
    (ValueError naming ``argument`` otherwise)."""
    if name == "numpy":
        return np
    if name != "cupy":
        raise ValueError(f"{argument} must be one of {', '.join(map(repr, ARRAY_MODULES))}; got {name!r}")
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # noqa: BLE001 (ImportError, or CUDARuntimeError: no device/driver)
        raise ValueError(f"{argument} cupy needs CuPy and a CUDA GPU (pip install 'hwsim[gpu]'): "
                         f"{err}") from None
    return cupy
