"""Circulant layer ``Φ = D̃₁ F D₂ F⁻¹`` (Cheng et al. 2015; seed 000:728–730), via real FFTs."""
from __future__ import annotations

import math

import numpy as np

import devices

from .._seq_spec import LayerArgs, register_layer_token
from .._xp import get_array_module
from ._base import init_rng
from ._optical import OpticalOption
from ._structured import StructuredLinear, check_size, fft_module


def spectrum_weights(n: int, xp=np):
    """How often each rfft bin occurs in the full length-``n`` spectrum: 1 for bin 0 (and bin n/2
    when ``n`` is even), 2 for the others (their mirror images)."""
    w = xp.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


class Circulant(OpticalOption, StructuredLinear):
    """``y = x D̃₁ F D₂ F⁻¹ + b`` on ``n`` features: a random ±1 sign flip ``D̃₁`` (fixed, the
    ``sign`` buffer), then a circular convolution with a learned real kernel ``r`` given by its
    spectrum ``D₂ = rfft(r)``.

    Computation (row vectors, ``u = x ⊙ sign``)::

        y = irfft(rfft(u) ⊙ (spec_re + i·spec_im), n) + b       (numpy FFT convention)

    so ``y_j = Σ_i sign_i x_i r_((j − i) mod n)`` with ``r = irfft(spectrum, n)``: a real circulant
    matrix after the sign flip. Parameters: ``spec_re``, ``spec_im`` (each ``n//2 + 1`` values, the
    rfft bins of ``r``) and ``b`` (``n``, zero at start). ``spec_im[0]`` (and ``spec_im[n/2]`` for
    even ``n``) do not act — irfft takes the real part of those bins — and get zero gradient; they
    start at 0. Total ``n + 2 + n`` (even n) trained values: O(n).

    Initialisation (a named assumption; the seed gives none): ``r ~ U(−a, a)``, ``a = sqrt(3/n)``
    (variance 1/n, so the map preserves the input variance, like Glorot for a square layer), from
    ``numpy.random.default_rng(seed)``; then ``sign`` ~ ±1 from the same generator.

    Precision roles (see `hwsim.layers._structured`): input -> activation; spec_re, spec_im, b ->
    weight (slots 0, 1, 2); the convolution output + b -> acc then activation. The FFTs and the
    spectral product are computed in floating point (the compute dtype in ``mode="fast"``:
    complex64 for float32; float64/complex128 in ``mode="exact"``) and are not rounded to any
    role: a fixed-point FFT datapath (rounding per butterfly stage) is not emulated, so
    ``mode="exact"`` is "float64 transform, then the same roundings", not bit-exact fixed point.

    Backward (``e`` the quantized error, ``E = rfft(e)``, ``U = rfft(u)``, ``w`` =
    `spectrum_weights`): ``dx = sign ⊙ irfft(E ⊙ conj(D₂), n)``; ``d spec = Σ_batch w/n · conj(U) ⊙ E``
    split into real and imaginary parts (mean over the batch like every parameter gradient).

    Optics hook: `convolve` is the ``F D₂ F⁻¹`` step alone (what a 4f system computes); a model of
    an optical implementation can override it, the rest of forward and backward stay.
    ``optical=FourF(...)`` (`hwsim.optics`, or `hwsim.set_optical`) runs it through the emulated 4f
    system (kernel ``r``, numpy arrays); backward stays the ideal gradient (straight-through).
    """

    def __init__(self, n: int, *, bias: bool = True, sign: bool = True, seed=0, dtype=np.float32,
                 optical=None):
        n = check_size("Circulant", "n", n, 2)
        self._init_common("circulant", n, n, bias, dtype)
        rng = init_rng(seed)
        a = math.sqrt(3.0 / n)
        spec = np.fft.rfft(rng.uniform(-a, a, n))
        if n % 2 == 0:
            spec[-1] = spec[-1].real
        self.spec_re = spec.real.astype(dtype)
        self.spec_im = spec.imag.astype(dtype)
        self.spec_im[0] = 0
        self.sign = (rng.integers(0, 2, n) * 2 - 1).astype(dtype) if sign else np.ones(n, dtype)
        self._finish_params(("spec_re", "spec_im"))
        self.set_optical(optical)

    def buffers(self) -> dict:
        return {"sign": self.sign}

    def convolve(self, u, spectrum):
        """``irfft(rfft(u) ⊙ spectrum, n)`` along the last axis: the ``F D₂ F⁻¹`` step.

        ``u`` real (batch, n); ``spectrum`` complex (n//2 + 1,). Float64 in ``mode="exact"``."""
        if self.optical is not None:  # through the emulated 4f system (hwsim.optics); backward unchanged
            self.check_optical_input(u)
            kernel = np.fft.irfft(np.asarray(spectrum), n=self.in_features)
            return self.optical.circulant(u, kernel.astype(u.dtype), seed=self.optical_seed())
        fft = fft_module(get_array_module(u))
        return fft.irfft(fft.rfft(u, axis=-1) * spectrum, n=self.in_features, axis=-1)

    def _spectrum(self, re, im, dtype):
        xp = get_array_module(re)
        c = xp.complex128 if dtype == np.float64 else xp.complex64
        return re.astype(c) + 1j * im.astype(c)

    def _compute_dtype(self, x):
        return np.float64 if self.precision.mode == "exact" else x.dtype

    def _forward(self, x, w, training):
        dt = self._compute_dtype(x)
        u = (x * self.sign).astype(dt, copy=False)
        s = self._spectrum(w["spec_re"], w["spec_im"], dt)
        if training:
            self._cache = (u, s)
        return self.convolve(u, s)

    def _backward(self, e):
        u, s = self._cache
        xp = get_array_module(e)
        fft = fft_module(xp)
        n = self.in_features
        big = fft.rfft(e.astype(u.dtype, copy=False), axis=-1)
        dx = fft.irfft(big * xp.conj(s), n=n, axis=-1) * self.sign
        ds = (xp.conj(fft.rfft(u, axis=-1)) * big).sum(axis=0) * (spectrum_weights(n, xp) / n)
        return dx, {"spec_re": ds.real, "spec_im": ds.imag}

    def kernel(self) -> np.ndarray:
        """The real circulant kernel ``r = irfft(spectrum, n)`` (float64, master values)."""
        s = self.spec_re.astype(np.float64) + 1j * self.spec_im.astype(np.float64)
        return np.fft.irfft(s, n=self.in_features)

    def _linear_matrix(self) -> np.ndarray:
        n = self.in_features
        r = self.kernel()
        i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        return self.sign.astype(np.float64)[:, None] * r[(j - i) % n]

    # ------------------------------------------------------------------ cost
    def workload_forward(self, b, label, x_shape, y_shape, training) -> None:
        """The sign flip (fused: 1 op per element) and the ``F D₂ F⁻¹`` product as a MatMul with
        ``structure="circulant"`` (an optical4f profile runs it optically; electronic profiles
        cost it as real FFTs and the spectral product, see ``devices.MatMul``)."""
        n = self.in_features
        if np.any(self.sign != 1):
            b.ew(f"{label}/sign", b.B * n, "activation", 1, op="mul")
        kind, a_bits, b_bits = b.r.product("activation", "weight")
        if self.optical is not None and self.optical.dac_bits is not None:  # what the modulator shows
            a_bits = min(a_bits, int(self.optical.dac_bits))
        b.ops.append(devices.MatMul(f"{label}/circ", m=b.B, k=n, n=n, a_bits=a_bits, b_bits=b_bits,
                                    acc_bits=b.r.bits("acc"), kind=kind, out_bits=b.r.bits("activation"),
                                    structure="circulant"))

    def workload_backward(self, b, label, x_shape, y_shape, first) -> None:
        """The error product (a circulant product with the conjugate spectrum, unless this is the
        first trained layer) and the spectrum gradient (two FFTs and a product per example)."""
        n = self.in_features
        if not first:
            kind, a_bits, b_bits = b.r.product("error", "weight")
            b.ops.append(devices.MatMul(f"{label}/error", m=b.B, k=n, n=n, a_bits=a_bits, b_bits=b_bits,
                                        acc_bits=b.r.bits("acc"), kind=kind, out_bits=b.r.bits("error"),
                                        structure="circulant"))
        # rfft of the error (shared with the error product): about one complex n-point FFT per two rows
        b.ops.append(devices.Transform(f"{label}/grad_fft", "fft", n, count=max(1, b.B // 2),
                                       bits=b.r.bits("error")))
        b.ew(f"{label}/grad", (n // 2 + 1) * b.B, "grad", 4, op="mac", inputs=2)


def _build(a: LayerArgs) -> Circulant:
    n = a.in_features
    if n < 2:
        raise a.error("needs at least 2 input features")
    layer = Circulant(n, bias=a.keyword("bias", kind=bool, default=True),
                      sign=a.keyword("sign", kind=bool, default=True), seed=a.seed, dtype=a.dtype)
    layer.optical_allowed = a.keyword("optical", kind=bool, default=True)  # --optical may run it
    return layer


register_layer_token("circulant", _build, "circulant[(bias=true,sign=true,optical=false)]")
