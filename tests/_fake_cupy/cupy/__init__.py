"""A stand-in for CuPy in tests without a GPU (tests/test_cupy_branches_sim.py): numpy arrays of
a subclass whose module is ``cupy``, so that fixedpoint and hwsim take their CuPy branches; the
kernels then run under the CUDA simulator. Not a model of CuPy's API beyond what those use."""
import types as _types

import numpy as _np


class ndarray(_np.ndarray):
    def get(self):
        """A numpy copy (CuPy: device to host)."""
        return _np.asarray(self).copy()


ndarray.__module__ = "cupy._core.core"


def _wrap(a):
    return a.view(ndarray) if isinstance(a, _np.ndarray) and not isinstance(a, ndarray) else a


def asarray(a, dtype=None):
    return _np.asarray(a, dtype=dtype).view(ndarray)


def asnumpy(a):
    return _np.asarray(a).copy()


def __getattr__(name):
    """numpy's function ``name``, returning this module's arrays (dtypes and constants as is)."""
    f = getattr(_np, name)
    if callable(f) and not isinstance(f, type):
        return lambda *args, **kw: _wrap(f(*args, **kw))
    return f


class _Stream:
    ptr = 0  # the legacy default stream


cuda = _types.SimpleNamespace(get_current_stream=_Stream,
                              runtime=_types.SimpleNamespace(getDeviceCount=lambda: 1))
