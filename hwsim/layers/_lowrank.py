"""Low-rank factorised layer ``W = U V`` (seed 000:645–651, 004:432–444)."""
from __future__ import annotations

import math

import numpy as np

from .._seq_spec import LayerArgs, register_layer_token
from ._base import init_rng
from ._dense import Dense
from ._product import product
from ._structured import StructuredLinear, check_size


class LowRank(StructuredLinear):
    """``y = (x U) V + b``: ``U`` (in, rank), ``V`` (rank, out), ``b`` (out); ``rank·(in + out) + out``
    parameters.

    Initialisation (a named choice): ``U ~ U(−a, a)``, ``a = sqrt(3/in)`` (the bottleneck keeps
    the input variance), ``V ~ U(−c, c)``, ``c = sqrt(6·in / ((in + out)·rank))``, so ``W = U V``
    has the Glorot variance ``2/(in + out)`` of a Dense layer. `from_dense` instead starts from the
    truncated SVD of a trained Dense layer: ``W ≈ P_r Σ_r Q_rᵀ``, ``U = P_r Σ_r^½``,
    ``V = Σ_r^½ Q_rᵀ`` (Eckart–Young: the best rank-r approximation), bias copied.

    Precision: two products exactly as two Dense layers without a nonlinearity: input ->
    activation; U, V, b -> weight (slots 0, 1, 2); ``x U`` accumulated at acc (``fixedpoint.matmul``
    in ``mode="exact"``, see `hwsim.layers._product`), rounded to acc (slot 2) and stored as an
    activation (slot 2); ``t V + b`` through acc and activation (slot 1). Backward: the error ->
    error (slot 0); ``∂V = tᵀ e``, ``e_t = e Vᵀ`` -> error (slot 1), ``∂U = xᵀ e_t``, ``∂x = e_t Uᵀ``.
    Fast equals exact when `hwsim.fast_mode_is_exact` holds for fan-ins ``in`` and ``rank``.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, *, bias: bool = True, seed=0,
                 dtype=np.float32):
        in_features = check_size("LowRank", "in_features", in_features)
        out_features = check_size("LowRank", "out_features", out_features)
        rank = check_size("LowRank", "rank", rank)
        if rank > min(in_features, out_features):
            raise ValueError("LowRank: rank must be in [1, min(in, out) = "
                             f"{min(in_features, out_features)}], "
                             f"got {rank}")
        self._init_common("lowrank", in_features, out_features, bias, dtype)
        self.rank = rank
        rng = init_rng(seed)
        a = math.sqrt(3.0 / in_features)
        c = math.sqrt(6.0 * in_features / ((in_features + out_features) * rank))
        self.U = rng.uniform(-a, a, (in_features, rank)).astype(dtype)
        self.V = rng.uniform(-c, c, (rank, out_features)).astype(dtype)
        self._finish_params(("U", "V"))

    @classmethod
    def from_dense(cls, dense: Dense, rank: int) -> LowRank:
        """The rank-``rank`` truncated SVD of ``dense.W`` (and its bias)."""
        if not isinstance(dense, Dense):
            raise TypeError(f"LowRank.from_dense needs a hwsim Dense layer, got {type(dense).__name__}")
        layer = cls(dense.in_features, dense.out_features, rank, dtype=dense.W.dtype)
        p, s, qt = np.linalg.svd(np.asarray(dense.W, np.float64), full_matrices=False)
        root = np.sqrt(s[:rank])
        layer.U = (p[:, :rank] * root).astype(dense.W.dtype)
        layer.V = (root[:, None] * qt[:rank]).astype(dense.W.dtype)
        layer.b = np.array(dense.b, copy=True)
        return layer

    def _forward(self, x, w, training):
        t = self.quantize("acc", product(self, x, w["U"], "activation", "weight"), 2)
        t, m_t = self.quantize_masked("activation", t.astype(x.dtype, copy=False), 2)
        if training:
            self._cache = (x, t, m_t, w)
        return product(self, t, w["V"], "activation", "weight")

    def _backward(self, e):
        x, t, m_t, w = self._cache
        dv = product(self, t.T, e, "activation", "error")
        et = product(self, e, w["V"].T, "error", "weight").astype(e.dtype, copy=False)
        if m_t is not None:
            et = et * m_t
        et = self.quantize("error", et, 1)
        du = product(self, x.T, et, "activation", "error")
        return product(self, et, w["U"].T, "error", "weight"), {"U": du, "V": dv}

    def _linear_matrix(self) -> np.ndarray:
        return self.U.astype(np.float64) @ self.V.astype(np.float64)

    def workload_forward(self, b, label, x_shape, y_shape, training) -> None:
        """Two MatMuls: ``x U`` (B×in×rank) and ``t V`` (B×rank×out)."""
        b.gemm(f"{label}/fwd_U", b.B, self.in_features, self.rank, "activation", "weight", "activation")
        b.gemm(f"{label}/fwd_V", b.B, self.rank, self.out_features, "activation", "weight", "activation")

    def workload_backward(self, b, label, x_shape, y_shape, first) -> None:
        """Gradient and error products of both factors (no input error for the first layer)."""
        n_in, r, n_out = self.in_features, self.rank, self.out_features
        b.gemm(f"{label}/grad_V", r, b.B, n_out, "activation", "error", "grad")
        b.gemm(f"{label}/error_V", b.B, n_out, r, "error", "weight", "error")
        b.gemm(f"{label}/grad_U", n_in, b.B, r, "activation", "error", "grad")
        if not first:
            b.gemm(f"{label}/error", b.B, r, n_in, "error", "weight", "error")


def _build(a: LayerArgs) -> LowRank:
    n = a.in_features
    out = a.positional(0, "out", lo=1)
    return LowRank(n, out, a.keyword("rank", lo=1, hi=min(n, out)),
                   bias=a.keyword("bias", kind=bool, default=True),
                   seed=a.seed, dtype=a.dtype)


register_layer_token("lowrank", _build, "lowrank(OUT,rank=R[,bias=false])")
