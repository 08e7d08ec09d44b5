"""Zero-copy views between torch tensors and the arrays hwsim computes on (numpy, CuPy)."""
from __future__ import annotations

import numpy as np
import torch


def as_array(t: torch.Tensor):
    """A view of ``t`` (detached) as a numpy array (CPU) or a CuPy array (CUDA), sharing its memory."""
    t = t.detach()
    if t.device.type == "cpu":
        try:
            return t.numpy()
        except TypeError:  # a dtype numpy lacks (bfloat16, the float8 types)
            raise TypeError(f"hwsim.torch: a tensor of dtype {t.dtype} has no numpy equivalent; convert it "
                            f"to float32 or float64 first") from None
    if t.device.type == "cuda":
        import cupy

        return cupy.from_dlpack(t)
    raise TypeError(f"hwsim.torch runs on CPU and CUDA tensors, got a tensor on {t.device}")


def as_tensor(a) -> torch.Tensor:
    """A tensor sharing the memory of the numpy or CuPy array ``a`` (a copy only for a negatively
    strided numpy view, which torch cannot share)."""
    if isinstance(a, np.ndarray):
        if any(s < 0 for s in a.strides):
            a = np.ascontiguousarray(a)
        return torch.from_numpy(a)
    return torch.from_dlpack(a)
