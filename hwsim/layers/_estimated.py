"""Dense layer with a low-rank activation estimator that skips the rows it predicts to be zero
(Davis & Arel 2014; seed 001 ch. 3).

``y = (x W + b) ⊙ S`` with ``S = 1[(x P) Q + b - threshold > 0]``, ``W ≈ P Q`` the rank-``k``
truncated SVD of the (weight-quantized) ``W`` (``P = U_k`` (in, k), ``Q = Σ_k V_kᵀ`` (k, out), the
seed's U and V in our ``x W`` layout). Put a ``relu`` after the layer: ``relu(y) = relu(x W + b) ⊙ S``,
the seed's ``a' = relu(W a) ⊙ S``. The factors are recomputed at the start of every training epoch
(`on_epoch_start`, called by the training loops) or every ``every`` training steps; they are buffers,
so checkpoints keep them.

The forward pass computes only the selected sums: a Numba kernel walks the examples in tiles and,
for every output unit selected by at least one example of the tile, reads that row of ``Wᵀ`` once
and forms the dot products of the examples that selected it (``mode="exact"`` precision policies
compute the dense product through ``fixedpoint.matmul`` and mask it, since emulating the arithmetic
is not the hardware's cost). The measured active fraction α (selected sums / all sums) is recorded
per forward pass and cumulatively; `hwsim.workload` costs the layer at the measured α.
"""
from __future__ import annotations

import math
import warnings

import numba
import numpy as np

from .._xp import get_array_module, to_numpy
from ._dense import Dense
from ._product import product

_TILE = 8  # examples per tile of the masked kernel


@numba.njit(parallel=True, fastmath=True, cache=True)
def _masked_rows(x, wt, b, mask, out):  # pragma: no cover - compiled
    """``out[n, j] = x[n] · wt[j] + b[j]`` where ``mask[n, j]``, else 0 (sums in the dtype of x, in
    any order)."""
    n_ex, d = x.shape
    h = wt.shape[0]
    n_tiles = (n_ex + _TILE - 1) // _TILE
    for t in numba.prange(n_tiles):
        lo = t * _TILE
        hi = min(lo + _TILE, n_ex)
        for j in range(h):
            for n in range(lo, hi):
                if mask[n, j]:
                    s = x.dtype.type(0)
                    for i in range(d):
                        s += x[n, i] * wt[j, i]
                    out[n, j] = s + b[j]
                else:
                    out[n, j] = 0


def masked_rows_product(x: np.ndarray, w: np.ndarray, b: np.ndarray, mask: np.ndarray, *,
                        wt: np.ndarray | None = None) -> np.ndarray:
    """``(x @ w + b) * mask`` computing only the selected sums (numpy arrays; ``w`` (in, out);
    ``wt``: ``w.T`` as a C-contiguous array of x's dtype when the caller has it).

    Each selected sum is a dot product in ``x``'s dtype (summed in any order), so with operands whose partial
    sums are exact (e.g. small integers) it equals the dense masked product bit for bit."""
    x = np.ascontiguousarray(x)
    if wt is None:
        wt = np.ascontiguousarray(w.T, dtype=x.dtype)
    out = np.empty((x.shape[0], w.shape[1]), dtype=x.dtype)
    _masked_rows(x, wt, np.ascontiguousarray(b, dtype=x.dtype),
                 np.ascontiguousarray(mask, dtype=np.bool_), out)
    return out


class EstimatedDense(Dense):
    """`Dense` whose outputs are computed only where a rank-``rank`` estimator predicts them positive.

    ``every``: recompute the factors every ``every`` training steps (0 = once per epoch, the seed's
    choice). ``threshold``: the seed's estimator bias (``sgn(UVa - b)``): a positive value selects
    fewer units. Attributes: ``last_alpha`` (α of the latest forward pass), ``alpha`` (cumulative
    since `reset_alpha`, NaN before any pass).
    """

    def __init__(self, in_features: int, out_features: int, rank: int, *, every: int = 0,
                 threshold: float = 0.0, seed=0, dtype=np.float32):
        super().__init__(in_features, out_features, seed=seed, dtype=dtype)
        if not 1 <= int(rank) <= min(in_features, out_features):
            raise ValueError(f"EstimatedDense rank must be in [1, {min(in_features, out_features)}], got "
                             f"{rank!r}")
        if int(every) < 0:
            raise ValueError(f"EstimatedDense every must be >= 0 (0 = once per epoch), got {every!r}")
        self.name = "estdense"
        self.rank, self.every, self.threshold = int(rank), int(every), float(threshold)
        self.est_p = np.zeros((in_features, self.rank), dtype=dtype)
        self.est_q = np.zeros((self.rank, out_features), dtype=dtype)
        self._fresh = False
        self._wt = None
        self.last_alpha = math.nan
        self.reset_alpha()

    # ------------------------------------------------------------------ estimator
    def buffers(self) -> dict:
        return {"est_p": self.est_p, "est_q": self.est_q}

    def set_param(self, name: str, value) -> None:
        self._wt = None
        super().set_param(name, value)
        if name in ("est_p", "est_q"):  # factors from a checkpoint (all zero: never computed there)
            self._fresh = bool(get_array_module(self.est_q).any(self.est_q))

    def refresh_estimator(self) -> None:
        """Recompute ``P, Q`` from the truncated SVD of the weight-quantized ``W`` (float64 SVD)."""
        w = to_numpy(self.quantize("weight", self.W, 0)).astype(np.float64)
        u, sv, vt = np.linalg.svd(w, full_matrices=False)
        k = self.rank
        xp = get_array_module(self.W)
        self.est_p = xp.asarray(u[:, :k], dtype=self.W.dtype)
        self.est_q = xp.asarray(sv[:k, None] * vt[:k], dtype=self.W.dtype)
        self._fresh = True

    def on_epoch_start(self, epoch: int) -> None:
        """Training-loop hook: once-per-epoch refresh (when ``every`` is 0)."""
        if self.every == 0:
            self.refresh_estimator()

    def estimate_mask(self, x):
        """The boolean mask ``S = (x P) Q + b - threshold > 0`` for inputs ``x`` (M, in)."""
        if not self._fresh:
            self.refresh_estimator()
        e = (x @ self.est_p) @ self.est_q
        e += self.b - self.b.dtype.type(self.threshold)
        return e > 0

    def reset_alpha(self) -> None:
        self._active, self._total = 0, 0

    @property
    def alpha(self) -> float:
        """Cumulative measured active fraction since `reset_alpha` (NaN before any forward pass)."""
        return self._active / self._total if self._total else math.nan

    # ------------------------------------------------------------------ passes
    def forward(self, x, *, training: bool = False):
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if training and self.every and self.step % self.every == 0:
            self.refresh_estimator()
        x2, m_in = self.quantize_masked("activation", x2, 0) if self.quantize_input else (x2, None)
        w2, m_w = self.quantize_masked("weight", self.W, 0)
        b = self.quantize("weight", self.b, 1)
        mask = self.estimate_mask(x2)
        active = int(mask.sum())
        self.last_alpha = active / mask.size if mask.size else math.nan
        self._active += active
        self._total += int(mask.size)
        xp = get_array_module(x2)
        if self.precision.mode == "exact" or xp is not np:
            s = product(self, x2, w2, "activation", "weight")
            s += b
            s = s * mask
        else:
            s = masked_rows_product(x2, w2, b, mask, wt=self._transposed(w2, x2.dtype))
        s, m_acc = self.quantize_masked("acc", s, 1)
        s, m_act = self.quantize_masked("activation", s, 1)
        if s.dtype != x2.dtype:
            s = s.astype(x2.dtype)
        if training:
            m_out = mask.astype(x2.dtype)
            for m in (m_acc, m_act):
                if m is not None:
                    m_out = m_out * m
            self._cache = (x2, w2, m_in, m_w, m_out)
        return s.reshape(*lead, self.out_features)

    def _transposed(self, w2, dtype):
        """``w2.T`` C-contiguous; cached while ``W`` is unquantized and unchanged (`commit` and
        `set_param` drop the cache; a new ``W`` object misses it)."""
        if w2 is not self.W:
            return np.ascontiguousarray(w2.T, dtype=dtype)
        if self._wt is None or self._wt[0] is not self.W or self._wt[1].dtype != dtype:
            self._wt = (self.W, np.ascontiguousarray(self.W.T, dtype=dtype))
        return self._wt[1]

    def commit(self, name: str, value) -> None:
        self._wt = None
        super().commit(name, value)

    # backward: Dense's (the estimator mask is one of the output masks of the cache)

    # ------------------------------------------------------------------ cost
    def workload_forward(self, b, label: str, x_shape: tuple, y_shape: tuple, training: bool) -> None:
        """Estimator products ``(B, in)·(in, k)`` and ``(B, k)·(k, out)``, the sign test (1 op per
        output) and the conditional product as ``(B, in)·(in, ⌈α·out⌉)`` at the measured α (α = 1
        with a warning when no forward pass has been measured yet)."""
        alpha = self.alpha
        if math.isnan(alpha):
            warnings.warn(f"{self.name}: no measured active fraction yet (run a forward pass on data); "
                          f"costing alpha = 1", stacklevel=3)
            alpha = 1.0
        d, h, k, B = self.in_features, self.out_features, self.rank, b.B
        b.gemm(f"{label}/estimate_in", B, d, k, "activation", "weight", "acc")
        b.gemm(f"{label}/estimate_out", B, k, h, "acc", "weight", "acc")
        b.ew(f"{label}/estimate_sign", B * h, "acc", 1)
        n_active = max(1, math.ceil(alpha * h))
        b.gemm(f"{label}/fwd_active", B, d, n_active, "activation", "weight", "activation")

    def workload_backward(self, b, label: str, x_shape: tuple, y_shape: tuple, first: bool) -> None:
        """As `Dense` (the dense error and gradient products; errors of skipped sums are zero)."""
        d, h, B = self.in_features, self.out_features, b.B
        if not first:
            b.gemm(f"{label}/error", B, h, d, "error", "weight", "error")
        b.gemm(f"{label}/grad", d, B, h, "activation", "error", "grad")
