"""ACDC and AFDF ("deep SELL", Moczulski et al. 2016; seed 000:688–980): products of diagonal
matrices and cosine / Fourier transforms, O(n) parameters per factor."""
from __future__ import annotations

import numpy as np

import devices

from .._seq_spec import LayerArgs, register_layer_token
from .._xp import get_array_module
from ._base import init_rng
from ._structured import StructuredLinear, check_size, fft_module

INITS = ("identity", "small")
_DEFAULT_SIGMA = {"identity": 0.1, "small": 1e-3}
MAX_DEPTH = 100


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II as a matrix acting on row vectors (``x C = dct(x, norm="ortho")``):
    ``C[i, k] = c_k cos(π (2i + 1) k / 2n)``, ``c_0 = sqrt(1/n)``, ``c_k = sqrt(2/n)``; ``C⁻¹ = Cᵀ``."""
    i, k = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    c = np.where(k == 0, np.sqrt(1.0 / n), np.sqrt(2.0 / n))
    return c * np.cos(np.pi * (2 * i + 1) * k / (2 * n))


def _diagonals(rng, init: str, sigma: float, shape: tuple) -> np.ndarray:
    """``N(1, σ²)`` (identity-like, the thesis's working init) or ``N(0, σ²)`` (its failing one)."""
    return rng.normal(1.0 if init == "identity" else 0.0, sigma, shape)


def _check_init(who: str, depth, init: str, sigma) -> tuple[int, float]:
    depth = check_size(who, "depth", depth)
    if depth > MAX_DEPTH:
        raise ValueError(f"{who}: depth must be in [1, {MAX_DEPTH}], got {depth}")
    if init not in INITS:
        raise ValueError(f"{who}: init must be one of {', '.join(INITS)}, got {init!r}")
    sigma = _DEFAULT_SIGMA[init] if sigma is None else float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"{who}: sigma must be a finite number >= 0, got {sigma!r}")
    return depth, sigma


class ACDC(StructuredLinear):
    """``y = x ∏ₖ Aₖ C Dₖ Cᵀ`` on ``n`` features, ``K = depth`` factors (row vectors, seed 000:815).

    ``C`` is the orthonormal DCT-II (``scipy.fft.dct(norm="ortho")``, `dct_matrix`), ``Aₖ``, ``Dₖ``
    learned real diagonals (parameters ``A``, ``D`` of shape (K, n)), ``biasₖ`` (parameter ``bias``,
    (K, n), zero at start) added after ``Dₖ``, i.e. in the DCT domain (000:929). Factor k:
    ``h ↦ idct(dct(h ⊙ aₖ) ⊙ dₖ + biasₖ)``. Between factors (not after the last): with
    ``permute=True`` a fixed random permutation of the features (``perm``, (K−1, n), drawn from the
    seed like the init, not a checkpoint entry), then with ``relu=True`` a ReLU (the thesis's
    interleaving, 000:929–931; the order is a named choice, the seed does not state it).
    ``relu=True`` makes the layer nonlinear: `dense_matrix` raises.

    Initialisation ``init="identity"``: ``A, D ~ N(1, σ²)``, σ = 0.1 (000:912, Fig. 3.4 left);
    ``init="small"``: ``N(0, σ²)``, σ = 10⁻³ (the standard init that fails, Fig. 3.4 right);
    ``sigma`` overrides σ. From ``numpy.random.default_rng(seed)`` (A, D, then the permutations).
    Parameters: ``3·K·n`` (``2·K·n`` with ``bias=False``).

    Precision (roles as Dense, see `hwsim.layers._structured`): input -> activation; A, D, bias ->
    weight (slots 0, 1, 2). Within factor k the DCTs are computed in floating point (coefficients
    not quantized; the compute dtype in ``mode="fast"``, float64 in ``mode="exact"``); the
    product ``h ⊙ aₖ`` is fed to the DCT unrounded; the DCT output is rounded to acc (slot 2 + 2k)
    and ``dct(·) ⊙ dₖ + biasₖ`` to acc (slot 3 + 2k); each factor's output but the last is stored,
    so rounded to activation (slot 2 + k); the last goes through acc and activation like Dense's
    sums. The backward pass is float, the incoming error rounded to ``error`` and the parameter
    gradients to ``grad``; intermediate roundings pass the gradient straight through.

    Backward per factor (``h`` the factor's input, ``h₂ = dct(h ⊙ a)``, ``g`` the error at its
    output; 000:830–840 corrected): ``g₃ = dct(g)``, ``∂d = Σ h₂ ⊙ g₃``, ``∂bias = Σ g₃``,
    ``g₁ = idct(g₃ ⊙ d)``, ``∂a = Σ h ⊙ g₁``, ``∂h = a ⊙ g₁``.
    """

    def __init__(self, n: int, depth: int = 1, *, relu: bool = False, permute: bool = False,
                 bias: bool = True,
                 init: str = "identity", sigma: float | None = None, seed=0, dtype=np.float32):
        n = check_size("ACDC", "n", n)
        depth, sigma = _check_init("ACDC", depth, init, sigma)
        self._init_common("acdc", n, n, False, dtype)
        self.depth, self.relu, self.permute, self.init = depth, bool(relu), bool(permute), init
        self.nonlinear = self.relu and depth > 1
        rng = init_rng(seed)
        self.A = _diagonals(rng, init, sigma, (depth, n)).astype(dtype)
        self.D = _diagonals(rng, init, sigma, (depth, n)).astype(dtype)
        names = ("A", "D")
        if bias:
            self.bias = np.zeros((depth, n), dtype=dtype)
            names += ("bias",)
        self.perm = (np.stack([rng.permutation(n) for _ in range(depth - 1)])
                     if permute and depth > 1 else None)
        self._finish_params(names)

    # ------------------------------------------------------------------ passes
    def _forward(self, x, w, training):
        xp = get_array_module(x)
        fft = fft_module(xp)
        dt = np.float64 if self.precision.mode == "exact" else x.dtype
        h = x.astype(dt, copy=False)
        cache = []
        for k in range(self.depth):
            h2 = self.quantize("acc", fft.dct(h * w["A"][k].astype(dt), norm="ortho", axis=-1), 2 + 2 * k)
            h3 = h2 * w["D"][k].astype(dt)
            if "bias" in w:
                h3 = h3 + w["bias"][k].astype(dt)
            out = fft.idct(self.quantize("acc", h3, 3 + 2 * k), norm="ortho", axis=-1)
            mask = None
            if k < self.depth - 1:
                out = self.quantize("activation", out, 2 + k)
                if self.perm is not None:
                    out = out[:, self.perm[k]]
                if self.relu:
                    mask = out > 0
                    out = out * mask
            if training:
                cache.append((h, h2, mask))
            h = out
        if training:
            self._cache = (cache, w)
        return h

    def _backward(self, e):
        cache, w = self._cache
        xp = get_array_module(e)
        fft = fft_module(xp)
        g = e.astype(cache[0][0].dtype, copy=False)
        raw = {n: xp.zeros_like(getattr(self, n), dtype=g.dtype) for n in self._param_names}
        for k in reversed(range(self.depth)):
            h, h2, _ = cache[k]
            if k < self.depth - 1:
                g = self._undo_between(g, k, cache[k][2])
            g3 = fft.dct(g, norm="ortho", axis=-1)
            raw["D"][k] = (h2 * g3).sum(axis=0)
            if "bias" in raw:
                raw["bias"][k] = g3.sum(axis=0)
            g1 = fft.idct(g3 * w["D"][k].astype(g.dtype), norm="ortho", axis=-1)
            raw["A"][k] = (h * g1).sum(axis=0)
            g = g1 * w["A"][k].astype(g.dtype)
        return g, raw

    def _undo_between(self, g, k, mask):
        """The error at factor k's output from the error at factor k+1's input (ReLU, permutation)."""
        if mask is not None:
            g = g * mask
        if self.perm is not None:
            out = get_array_module(g).empty_like(g)
            out[:, self.perm[k]] = g
            g = out
        return g

    def _linear_matrix(self) -> np.ndarray:
        n = self.in_features
        c = dct_matrix(n)
        m = np.eye(n)
        for k in range(self.depth):
            bias_free = ((self.A[k].astype(np.float64)[:, None] * c)
                         @ (self.D[k].astype(np.float64)[:, None] * c.T))
            m = m @ bias_free
            if k < self.depth - 1 and self.perm is not None:
                m = m[:, self.perm[k]]
        return m

    # ------------------------------------------------------------------ cost
    def workload_forward(self, b, label, x_shape, y_shape, training) -> None:
        """Per factor: the product by Aₖ (Elementwise mul), a DCT (Transform), the product by Dₖ
        plus the bias (Elementwise mac), an inverse DCT (Transform); between factors a ReLU."""
        n, rows = self.in_features, b.B
        for k in range(self.depth):
            b.ew(f"{label}/A{k}", rows * n, "activation", 1, op="mul")
            b.ops.append(devices.Transform(f"{label}/dct{k}", "dct", n, count=rows, bits=b.r.bits("acc")))
            b.ew(f"{label}/D{k}", rows * n, "acc", 1, op="mac")
            b.ops.append(devices.Transform(f"{label}/idct{k}", "dct", n, count=rows, bits=b.r.bits("acc")))
            if self.relu and k < self.depth - 1:
                b.ew(f"{label}/relu{k}", rows * n, "activation", 1)

    def workload_backward(self, b, label, x_shape, y_shape, first) -> None:
        """Per factor: two DCTs of the error, the gradients of A, D, bias (Elementwise macs over the
        batch) and the error products by Dₖ and Aₖ."""
        n, rows = self.in_features, b.B
        for k in reversed(range(self.depth)):
            b.ops.append(devices.Transform(f"{label}/bwd_dct{k}", "dct", n, count=rows,
                                           bits=b.r.bits("error")))
            b.ew(f"{label}/bwd_D{k}", rows * n, "error", 3, op="mac", inputs=2)
            b.ops.append(devices.Transform(f"{label}/bwd_idct{k}", "dct", n, count=rows,
                                           bits=b.r.bits("error")))
            b.ew(f"{label}/bwd_A{k}", rows * n, "error", 2, op="mac", inputs=2)


def dft_matrix(n: int) -> np.ndarray:
    """The unnormalised DFT as a matrix on row vectors (``x F = fft(x)``): ``F[j, k] = e^{−2πi jk/n}``."""
    j, k = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.exp(-2j * np.pi * j * k / n)


class AFDF(StructuredLinear):
    """``y = Re(x ∏ₖ Aₖ F Dₖ F⁻¹) + b`` on ``n`` real features, ``K = depth`` factors (000:781–789).

    ``F`` is the unnormalised DFT (``numpy``/``scipy.fft.fft``), ``F⁻¹`` its inverse (``ifft``,
    with the 1/n), ``Aₖ``, ``Dₖ`` learned complex diagonals stored as real and imaginary parts
    (parameters ``A_re``, ``A_im``, ``D_re``, ``D_im``, each (K, n)). The real input enters as a
    complex vector with zero imaginary part; all K factors act on complex values; the output is the
    real part of the last factor's output (the imaginary part is dropped once, at the end), plus a
    real output bias ``b`` (n, zero at start). So the layer is the real linear map ``x ↦ x Re(M)``,
    ``M = ∏ₖ Aₖ F Dₖ F⁻¹``; an order-n AFDF spans all of ℂⁿˣⁿ (000:803–809).

    Initialisation as `ACDC`: real parts ``N(1, σ²)`` (identity) or ``N(0, σ²)`` (small),
    imaginary parts ``N(0, σ²)``; σ = 0.1 / 10⁻³ unless given. Parameters ``4·K·n + n``.

    Precision: input -> activation; A_re, A_im, D_re, D_im, b -> weight (slots 0..4); the FFTs and
    the complex products are computed in complex floating point (complex64 for float32 in
    ``mode="fast"``, complex128 in ``mode="exact"``) without intermediate rounding; the real output
    (+ b) goes through acc and activation like Dense's sums.

    Backward (Wirtinger, ``G = ∂L/∂Re z + i ∂L/∂Im z`` for each complex value z): for
    ``z = ifft(fft(h ⊙ a) ⊙ d)``: ``G₃ = fft(G_z)/n``, ``∂d = Σ conj(fft(h ⊙ a)) ⊙ G₃``,
    ``G₁ = n·ifft(conj(d) ⊙ G₃)``, ``∂a = Σ conj(h) ⊙ G₁``, ``G_h = conj(a) ⊙ G₁``; the input error is
    ``Re(G_x)``; real/imaginary parts of ∂a, ∂d are the gradients of the ``_re``/``_im`` parameters.
    """

    def __init__(self, n: int, depth: int = 1, *, bias: bool = True, init: str = "identity",
                 sigma: float | None = None, seed=0, dtype=np.float32):
        n = check_size("AFDF", "n", n)
        depth, sigma = _check_init("AFDF", depth, init, sigma)
        self._init_common("afdf", n, n, bias, dtype)
        self.depth, self.init = depth, init
        rng = init_rng(seed)
        for name in ("A", "D"):
            setattr(self, name + "_re", _diagonals(rng, init, sigma, (depth, n)).astype(dtype))
            setattr(self, name + "_im", rng.normal(0.0, sigma, (depth, n)).astype(dtype))
        self._finish_params(("A_re", "A_im", "D_re", "D_im"))

    def _complex(self, w, name, k, ct):
        return w[name + "_re"][k].astype(ct) + 1j * w[name + "_im"][k].astype(ct)

    def _forward(self, x, w, training):
        fft = fft_module(get_array_module(x))
        ct = np.complex128 if self.precision.mode == "exact" or x.dtype == np.float64 else np.complex64
        h = x.astype(ct)
        cache = []
        for k in range(self.depth):
            z2 = fft.fft(h * self._complex(w, "A", k, ct), axis=-1)
            if training:
                cache.append((h, z2))
            h = fft.ifft(z2 * self._complex(w, "D", k, ct), axis=-1)
        if training:
            self._cache = (cache, w, ct)
        return h.real

    def _backward(self, e):
        cache, w, ct = self._cache
        xp = get_array_module(e)
        fft = fft_module(xp)
        n = self.in_features
        g = e.astype(ct)
        raw = {}
        da, dd = [], []
        for k in reversed(range(self.depth)):
            h, z2 = cache[k]
            g3 = fft.fft(g, axis=-1) / n
            dd.append((xp.conj(z2) * g3).sum(axis=0))
            g1 = fft.ifft(xp.conj(self._complex(w, "D", k, ct)) * g3, axis=-1) * n
            da.append((xp.conj(h) * g1).sum(axis=0))
            g = xp.conj(self._complex(w, "A", k, ct)) * g1
        da, dd = xp.stack(da[::-1]), xp.stack(dd[::-1])
        raw.update(A_re=da.real, A_im=da.imag, D_re=dd.real, D_im=dd.imag)
        return g.real, raw

    def _linear_matrix(self) -> np.ndarray:
        n = self.in_features
        f = dft_matrix(n)
        finv = f.conj() / n
        m = np.eye(n, dtype=complex)
        for k in range(self.depth):
            a = self.A_re[k].astype(np.float64) + 1j * self.A_im[k].astype(np.float64)
            d = self.D_re[k].astype(np.float64) + 1j * self.D_im[k].astype(np.float64)
            m = m @ (a[:, None] * f) @ (d[:, None] * finv)
        return m.real

    def workload_forward(self, b, label, x_shape, y_shape, training) -> None:
        """Per factor: complex products by Aₖ and Dₖ (Elementwise, 6 real ops per complex
        multiply; the first one on a real input 2) and two complex FFTs (Transform fft)."""
        n, rows = self.in_features, b.B
        for k in range(self.depth):
            b.ew(f"{label}/A{k}", rows * n, "activation", 2 if k == 0 else 6, op="mul")
            b.ops.append(devices.Transform(f"{label}/fft{k}", "fft", n, count=rows, bits=b.r.bits("acc")))
            b.ew(f"{label}/D{k}", rows * n, "acc", 6, op="mul", inputs=2, outputs=2)
            b.ops.append(devices.Transform(f"{label}/ifft{k}", "fft", n, count=rows, bits=b.r.bits("acc")))

    def workload_backward(self, b, label, x_shape, y_shape, first) -> None:
        """Per factor: two complex FFTs of the error and the complex gradient/error products."""
        n, rows = self.in_features, b.B
        for k in reversed(range(self.depth)):
            b.ops.append(devices.Transform(f"{label}/bwd_fft{k}", "fft", n, count=rows,
                                           bits=b.r.bits("error")))
            b.ew(f"{label}/bwd_D{k}", rows * n, "error", 12, op="mac", inputs=4, outputs=2)
            b.ops.append(devices.Transform(f"{label}/bwd_ifft{k}", "fft", n, count=rows,
                                           bits=b.r.bits("error")))
            b.ew(f"{label}/bwd_A{k}", rows * n, "error", 12, op="mac", inputs=4, outputs=2)


def _build_acdc(a: LayerArgs) -> ACDC:
    n = a.in_features
    init = a.keyword("init", kind=str, default="identity", choices=INITS)
    return ACDC(n, a.keyword("depth", default=1, lo=1, hi=MAX_DEPTH),
                relu=a.keyword("relu", kind=bool, default=False),
                permute=a.keyword("permute", kind=bool, default=False),
                bias=a.keyword("bias", kind=bool, default=True),
                init=init, sigma=a.keyword("sigma", kind=float, default=_DEFAULT_SIGMA[init], lo=0.0),
                seed=a.seed, dtype=a.dtype)


def _build_afdf(a: LayerArgs) -> AFDF:
    n = a.in_features
    init = a.keyword("init", kind=str, default="identity", choices=INITS)
    return AFDF(n, a.keyword("depth", default=1, lo=1, hi=MAX_DEPTH),
                bias=a.keyword("bias", kind=bool, default=True),
                init=init, sigma=a.keyword("sigma", kind=float, default=_DEFAULT_SIGMA[init], lo=0.0),
                seed=a.seed, dtype=a.dtype)


register_layer_token("acdc", _build_acdc,
                     "acdc(depth=K[,relu=true,permute=true,bias=false,init=identity|small,sigma=S])")
register_layer_token("afdf", _build_afdf, "afdf(depth=K[,bias=false,init=identity|small,sigma=S])")
