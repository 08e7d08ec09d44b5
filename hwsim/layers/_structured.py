"""What the structured linear layers (Circulant, ACDC, AFDF, Fastfood, LowRank, Hashed) share.

A structured layer is a linear map ``y = x Φ + b`` (row vectors, as in the seed thesis, 000:696)
whose ``Φ`` is a product of cheap factors with O(n) parameters. `StructuredLinear` holds what does
not depend on the factors: the parameter/gradient dictionaries, the quantization of the input, of
the trained arrays and of the output, the straight-through masks, the mean-loss gradient scaling,
the bias and `dense_matrix`.

Quantization points (the roles of Dense):

* input -> ``activation`` (slot 0), unless it is already on the grid;
* every trained array (diagonals, spectra, factors, budget, bias) -> ``weight`` with slot = its
  position in `params` (the ``update`` role stores the master copy, `Layer.commit`);
* the result before the bias-free output -> ``acc`` (slot 1) then ``activation`` (slot 1), as the
  weighted sums of Dense;
* the incoming error -> ``error`` (slot 0); each parameter gradient -> ``grad`` (slot = its position).

Each family's docstring says which intermediate values (between factors) are rounded where.
"""
from __future__ import annotations

import numpy as np

from ._base import Layer
from ._dense import combine_masks


def fft_module(xp):
    """``scipy.fft`` for numpy arrays (keeps float32 as complex64), ``xp.fft`` otherwise (CuPy)."""
    if xp is np:
        import scipy.fft

        return scipy.fft
    return xp.fft


def check_size(who: str, what: str, value, lo: int = 1) -> int:
    """``int(value)`` when it is an integer >= ``lo``; ValueError naming ``who``/``what`` otherwise."""
    if isinstance(value, bool) or int(value) != value or int(value) < lo:
        raise ValueError(f"{who}: {what} must be an integer >= {lo}, got {value!r}")
    return int(value)


class StructuredLinear(Layer):
    """Base of the structured layers: ``in_features`` -> ``out_features``, trained arrays named in
    ``_param_names`` (gradient of ``p`` stored as ``d<p>``), optional bias ``b`` (last parameter).

    Subclasses implement ``_forward(x, w, training)`` (``w``: name -> quantized array; returns the
    output before the bias), ``_backward(e) -> (dx, raw grads)`` (``e``: quantized error; raw grads
    are sums over the batch, before the 1/N scaling), and ``_linear_matrix()`` (float64).
    """

    #: True when nonlinearities sit between the factors (then there is no dense matrix)
    nonlinear = False

    def _init_common(self, name: str, in_features: int, out_features: int, bias: bool, dtype) -> None:
        Layer.__init__(self)
        self.name = name
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = np.dtype(dtype)
        self.has_bias = bool(bias)
        if self.has_bias:
            self.b = np.zeros(self.out_features, dtype=dtype)

    def _finish_params(self, names: tuple[str, ...]) -> None:
        """Declare the trained arrays (bias appended when present) and allocate their gradients."""
        self._param_names = names + (("b",) if self.has_bias else ())
        for n in self._param_names:
            setattr(self, "d" + n, np.zeros_like(getattr(self, n)))

    # ------------------------------------------------------------------ parameters
    def params(self) -> dict:
        return {n: getattr(self, n) for n in self._param_names}

    def grads(self) -> dict:
        return {n: getattr(self, "d" + n) for n in self._param_names}

    def output_shape(self, input_shape: tuple) -> tuple:
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{type(self).__name__}({self.in_features} -> {self.out_features}) got input "
                             f"shape {tuple(input_shape)}")
        return (self.out_features,)

    # ------------------------------------------------------------------ passes
    def forward(self, x, *, training: bool = False):
        x, m_in = self.quantize_masked("activation", x, 0) if self.quantize_input else (x, None)
        w, m_w = {}, {}
        for slot, n in enumerate(self._param_names):
            w[n], m_w[n] = self.quantize_masked("weight", getattr(self, n), slot)
        y = self._forward(x, w, training)
        if self.has_bias:
            y = y + w["b"]
        y, m_acc = self.quantize_masked("acc", y, 1)
        y, m_act = self.quantize_masked("activation", y, 1)
        if y.dtype != x.dtype:
            y = y.astype(x.dtype)
        if training:
            self._io_cache = (m_in, m_w, combine_masks(m_acc, m_act))
        return y

    def backward(self, dy):
        m_in, m_w, m_out = self._io_cache
        if m_out is not None:
            dy = dy * m_out
        e = self.quantize("error", dy, 0)
        dx, raw = self._backward(e)
        if self.has_bias:
            raw["b"] = e.sum(axis=0)
        inv = 1.0 / e.shape[0]
        for slot, n in enumerate(self._param_names):
            g = raw[n] * inv
            if m_w[n] is not None:
                g = g * m_w[n]
            p = getattr(self, n)
            setattr(self, "d" + n, self.quantize("grad", g.astype(p.dtype, copy=False), slot))
        if dx.dtype != dy.dtype:
            dx = dx.astype(dy.dtype)
        if m_in is not None:
            dx = dx * m_in
        return dx

    # ------------------------------------------------------------------ the equivalent matrix
    def dense_matrix(self) -> np.ndarray:
        """The float64 ``(in_features, out_features)`` matrix ``M`` of the linear map, bias
        excluded: ``forward(x) == x @ M + b`` up to float rounding under the fp32 policy.

        Computed from the factors (float64, the unquantized master values), not by running
        `forward`. ValueError for a layer with nonlinearities between its factors."""
        if self.nonlinear:
            raise ValueError(f"{self.name}: dense_matrix() needs a linear layer; this one has "
                             f"nonlinearities between its factors (relu=true)")
        return self._linear_matrix()

    def num_parameters(self) -> int:
        """Trained values (bias included)."""
        return sum(int(p.size) for p in self.params().values())
