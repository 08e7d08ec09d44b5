"""2-D convolution (cross-correlation, NCHW) by im2col and one matrix product."""
from __future__ import annotations

import numpy as np

from .._xp import get_array_module
from . import _window_kernels as _kernels
from ._base import init_rng
from ._dense import WeightedLayer
from ._optical import OpticalOption


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def windows(x, kh: int, kw: int, stride: int):
    """Strided view (N, C, Ho, Wo, kh, kw) of the kh x kw windows of x (N, C, H, W)."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
    sn, sc, sh, sw = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, (n, c, ho, wo, kh, kw), (sn, sc, sh * stride, sw * stride, sh, sw))


def windows_as_rows(x, kh: int, kw: int, stride: int):
    """The im2col matrix (N*Ho*Wo, C*kh*kw) of ``x`` (N, C, H, W): row (n, oh, ow), column (c, i, j)
    (numpy float arrays: one Numba copy, `_window_kernels`; others: a reshape of `windows`)."""
    if _kernels.takes(x):
        ho, wo = conv_out_size(x.shape[2], kh, stride, 0), conv_out_size(x.shape[3], kw, stride, 0)
        return _kernels.windows_to_cols(x, kh, kw, stride, ho, wo)
    win = windows(x, kh, kw, stride)
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(win.shape[0] * win.shape[2] * win.shape[3], -1)


def scatter_windows(dx, dwin, stride: int) -> None:
    """Add ``dwin`` (N, C, Ho, Wo, kh, kw) back onto ``dx`` (N, C, H, W) (adjoint of `windows`), window
    offset by window offset (numpy float arrays: the same additions in one Numba pass)."""
    if _kernels.takes(dx, dwin) and dx.flags.c_contiguous:
        _kernels.scatter_windows_into(dx, dwin, stride)
        return
    ho, wo, kh, kw = dwin.shape[2:]
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * (ho - 1) + 1:stride,
               j:j + stride * (wo - 1) + 1:stride] += dwin[..., i, j]


class Conv2d(OpticalOption, WeightedLayer):
    """Convolution of NCHW inputs; ``W`` shape (cout, cin, kh, kw), ``b`` (cout,).

    The trainable layer ``hwsim.Conv2d`` (weights, forward, backward). Not ``devices.Conv2d``, the
    cost-model op (sizes and bit widths only) that `hwsim.workload` makes of this layer.

    im2col: the padded input's windows become rows of a (N*Ho*Wo, cin*kh*kw) matrix, multiplied by
    ``W`` reshaped to (cin*kh*kw, cout) with the same quantization points as `Dense`.
    Initialisation: Glorot uniform with fan_in = cin*kh*kw, fan_out = cout*kh*kw.

    ``optical=FourF(...)`` (`hwsim.optics`): the forward product runs through the emulated 4f system
    (the padded input is put on the activation grid as an image, then the quantized weights and it go
    through ``FourF.conv2d``); the bias, the ``acc``/``activation`` quantization and the backward pass
    (straight-through: the ideal convolution's gradient) are unchanged. numpy arrays only.
    """

    def __init__(self, cin: int, cout: int, kernel: int | tuple, stride: int = 1, padding: int = 0,
                 *, seed=0, dtype=np.float32, optical=None):
        super().__init__()
        kh, kw = (kernel, kernel) if np.isscalar(kernel) else kernel
        for arg, v, lo in (("cin", cin, 1), ("cout", cout, 1), ("kernel", kh, 1), ("kernel", kw, 1),
                           ("stride", stride, 1), ("padding", padding, 0)):
            if int(v) != v or v < lo:
                raise ValueError(f"Conv2d {arg} must be an integer >= {lo}, got {v!r}")
        self.name = "conv"
        self.cin, self.cout, self.kh, self.kw = int(cin), int(cout), int(kh), int(kw)
        self.stride, self.padding = int(stride), int(padding)
        a = np.sqrt(6.0 / ((cin + cout) * kh * kw))
        self.W = init_rng(seed).uniform(-a, a, (cout, cin, kh, kw)).astype(dtype)
        self.b = np.zeros(cout, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.set_optical(optical)

    def _w_matrix(self):
        return self.W.reshape(self.cout, -1).T

    def _set_dw(self, dw) -> None:
        self.dW = dw.T.reshape(self.W.shape)

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3 or input_shape[0] != self.cin:
            raise ValueError(f"Conv2d(cin={self.cin}) needs input shape (C={self.cin}, H, W), got "
                             f"{tuple(input_shape)}")
        ho = conv_out_size(input_shape[1], self.kh, self.stride, self.padding)
        wo = conv_out_size(input_shape[2], self.kw, self.stride, self.padding)
        if ho < 1 or wo < 1:
            raise ValueError(f"Conv2d kernel {self.kh}x{self.kw} does not fit input {tuple(input_shape)}")
        return (self.cout, ho, wo)

    def forward(self, x, *, training: bool = False):
        xp = get_array_module(x)
        p = self.padding
        if p:
            x = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        n, ho, wo = x.shape[0], conv_out_size(x.shape[2], self.kh, self.stride, 0), \
            conv_out_size(x.shape[3], self.kw, self.stride, 0)
        if self.optical is None:
            s = self._forward_matrix(windows_as_rows(x, self.kh, self.kw, self.stride), training)
        else:
            s = self._optical_forward(x, training)
        if training:
            self._geometry = (x.shape, ho, wo)
        return xp.ascontiguousarray(s.reshape(n, ho, wo, self.cout).transpose(0, 3, 1, 2))

    def _to_cols(self, x):
        return windows_as_rows(x, self.kh, self.kw, self.stride)

    def _optical_forward(self, x, training: bool):
        """The sums (N*Ho*Wo, cout) with the product read back from the optics (x: the padded input)."""
        self.check_optical_input(x)
        m_img = None
        if self.quantize_input:
            x, m_img = self.quantize_masked("activation", x, 0)
        seed = self.optical_seed()

        def through_optics(w2):
            w = w2.T.reshape(self.W.shape)
            y = self.optical.conv2d(x, w, padding=0, stride=self.stride, seed=seed)
            return y.transpose(0, 2, 3, 1).reshape(-1, self.cout)

        return self._forward_matrix(self._to_cols(x), training,
                                    in_mask=None if m_img is None else self._to_cols(m_img),
                                    product_of=through_optics)

    def backward(self, dy):
        xp = get_array_module(dy)
        padded_shape, ho, wo = self._geometry
        n = dy.shape[0]
        dcols = self._backward_matrix(dy.transpose(0, 2, 3, 1).reshape(-1, self.cout), n)
        dwin = dcols.reshape(n, ho, wo, self.cin, self.kh, self.kw).transpose(0, 3, 1, 2, 4, 5)
        dx = xp.zeros(padded_shape, dtype=dy.dtype)
        scatter_windows(dx, dwin, self.stride)
        p = self.padding
        return dx[:, :, p:dx.shape[2] - p, p:dx.shape[3] - p] if p else dx
