"""Max and average pooling over k x k windows of NCHW inputs."""
from __future__ import annotations

from .._xp import get_array_module
from . import _window_kernels as _kernels
from ._base import Layer
from ._conv import conv_out_size, scatter_windows, windows


class _Pool2d(Layer):
    def __init__(self, k: int, stride: int | None = None):
        super().__init__()
        stride = k if stride is None else stride
        for arg, v in (("k", k), ("stride", stride)):
            if int(v) != v or v < 1:
                raise ValueError(f"{type(self).__name__} {arg} must be an integer >= 1, got {v!r}")
        self.k, self.stride = int(k), int(stride)

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} needs input shape (C, H, W), got {tuple(input_shape)}")
        c, h, w = input_shape
        ho, wo = conv_out_size(h, self.k, self.stride, 0), conv_out_size(w, self.k, self.stride, 0)
        if ho < 1 or wo < 1:
            raise ValueError(f"{type(self).__name__}({self.k}) does not fit input {tuple(input_shape)}")
        return (c, ho, wo)


class MaxPool2d(_Pool2d):
    """Maximum over each window (the first maximum in row-major window order gets the gradient).
    The output lies on the input's grid, so it is not quantized again."""

    passes_grid = True

    def __init__(self, k: int, stride: int | None = None):
        super().__init__(k, stride)
        self.name = "maxpool"

    def forward(self, x, *, training: bool = False):
        xp = get_array_module(x)
        ho, wo = (conv_out_size(size, self.k, self.stride, 0) for size in x.shape[2:])
        if _kernels.takes(x) and ho > 0 and wo > 0:
            y, arg = _kernels.max_windows(x, self.k, self.stride, ho, wo)
        else:
            win = windows(x, self.k, self.k, self.stride)
            flat = win.reshape(*win.shape[:4], -1)
            arg = flat.argmax(axis=-1)
            y = xp.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
        if training:
            self._cache = (x.shape, arg)
        return y

    def backward(self, dy):
        xp = get_array_module(dy)
        shape, arg = self._cache
        k = self.k
        dx = xp.zeros(shape, dtype=dy.dtype)
        if _kernels.takes(dy):
            _kernels.scatter_max_windows(dx, dy, arg, k, self.stride)
            return dx
        dwin = (xp.arange(k * k) == arg[..., None]) * dy[..., None]
        scatter_windows(dx, dwin.reshape(*dy.shape, k, k), self.stride)
        return dx


class AvgPool2d(_Pool2d):
    """Mean over each window; the output is quantized to ``activation``."""

    def __init__(self, k: int, stride: int | None = None):
        super().__init__(k, stride)
        self.name = "avgpool"

    def forward(self, x, *, training: bool = False):
        win = windows(x, self.k, self.k, self.stride)
        y = win.mean(axis=(-2, -1), dtype=x.dtype)
        y, mask = self.quantize_masked("activation", y, 2)
        if training:
            self._cache = (x.shape, mask)
        return y

    def backward(self, dy):
        xp = get_array_module(dy)
        shape, mask = self._cache
        if mask is not None:
            dy = dy * mask
        g = dy * (1.0 / (self.k * self.k))
        dwin = xp.broadcast_to(g[..., None, None], (*g.shape, self.k, self.k))
        dx = xp.zeros(shape, dtype=dy.dtype)
        scatter_windows(dx, dwin, self.stride)
        return dx
