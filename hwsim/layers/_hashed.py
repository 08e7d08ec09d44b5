"""HashedNets (Chen et al. 2015; seed 004:363–410): a virtual weight matrix drawn from a small
budget of real weights by a hash of (row, column)."""
from __future__ import annotations

import math

import numpy as np

import devices

from .._seq_spec import LayerArgs, register_layer_token
from .._xp import get_array_module
from ._base import init_rng
from ._product import product
from ._structured import StructuredLinear, check_size

_M1, _M2, _GOLDEN = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB),
                     np.uint64(0x9E3779B97F4A7C15))
#: integer operations per virtual weight to hash (i, j) and pick its sign: the SplitMix64 finaliser
#: (2 multiplies, 3 xor-shifts of 2 ops, the counter multiply-add) ≈ 10 (a named estimate)
HASH_OPS = 10


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 values (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def hash_index_sign(seed: int, rows: int, cols: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """``(h, ξ)`` for every (i, j) of a ``rows × cols`` matrix: ``z = mix64(key + (i·cols + j + 1)·φ)``
    with ``key = mix64(seed)``, ``φ`` the 64-bit golden ratio; ``h = ⌊(z >> 32) · budget / 2³²⌋``
    (high bits, int64), ``ξ = +1`` when bit 0 of ``z`` is 0 else −1 (int8). A pure function of
    (seed, i, j, cols, budget): counter-based, nothing stored."""
    key = _mix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    c = np.arange(1, rows * cols + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = _mix64(key + c * _GOLDEN)
    h = ((z >> np.uint64(32)) * np.uint64(budget)) >> np.uint64(32)
    xi = 1 - 2 * (z & np.uint64(1)).astype(np.int8)
    return h.astype(np.int64).reshape(rows, cols), xi.reshape(rows, cols)


class Hashed(StructuredLinear):
    """``y = x V + b`` with the virtual matrix ``V_ij = ξ(i, j) · w[h(i, j)]`` (in × out) built from
    the ``budget`` real weights ``w`` by `hash_index_sign` (HashedNets with the sign hash of the
    original paper). Parameters: ``w`` (budget) and ``b`` (out).

    The hash is reproducible from ``hash_seed`` alone (no index matrix is a parameter, buffer or
    checkpoint entry); the (h, ξ) arrays are recomputed from it and cached in memory for speed.
    Initialisation: ``w ~ U(−a, a)``, ``a = sqrt(6/(in + out))``: ``V`` has Dense's Glorot
    variance. From ``numpy.random.default_rng(seed)``; ``hash_seed`` defaults to ``seed``.

    Precision: as Dense with ``V`` as its weight matrix: ``w`` -> weight (slot 0; a sign flip keeps
    ``V`` on the grid), b -> weight (slot 1); the product is accumulated at acc
    (``fixedpoint.matmul`` in ``mode="exact"``). Backward: ``∂V = xᵀ e`` (the virtual gradient),
    accumulated into the budget: ``∂w_k = Σ_{h(i,j) = k} ξ(i, j) ∂V_ij`` (``numpy.bincount``);
    ``∂x = e Vᵀ``.
    """

    def __init__(self, in_features: int, out_features: int, budget: int, *, hash_seed: int | None = None,
                 bias: bool = True, seed=0, dtype=np.float32):
        in_features = check_size("Hashed", "in_features", in_features)
        out_features = check_size("Hashed", "out_features", out_features)
        budget = check_size("Hashed", "budget", budget)
        if budget > in_features * out_features:
            raise ValueError(f"Hashed: budget must be in [1, in·out = {in_features * out_features}], got "
                             f"{budget}")
        self._init_common("hashed", in_features, out_features, bias, dtype)
        self.budget = budget
        self.hash_seed = int(seed if hash_seed is None else hash_seed)
        a = math.sqrt(6.0 / (in_features + out_features))
        self.w = init_rng(seed).uniform(-a, a, budget).astype(dtype)
        self._hash = None
        self._finish_params(("w",))

    def hash(self) -> tuple[np.ndarray, np.ndarray]:
        """The (h, ξ) arrays, (in, out) each (computed once, then cached)."""
        if self._hash is None:
            self._hash = hash_index_sign(self.hash_seed, self.in_features, self.out_features, self.budget)
        return self._hash

    def virtual_matrix(self, w=None):
        """``V = ξ ⊙ w[h]`` (in × out) from ``w`` (default: the master weights)."""
        w = self.w if w is None else w
        xp = get_array_module(w)
        h, xi = self.hash()
        return xp.asarray(xi, dtype=w.dtype) * w[xp.asarray(h)]

    def _forward(self, x, w, training):
        v = self.virtual_matrix(w["w"])
        if training:
            self._cache = (x, v)
        return product(self, x, v, "activation", "weight")

    def _backward(self, e):
        x, v = self._cache
        xp = get_array_module(e)
        h, xi = self.hash()
        dv = product(self, x.T, e, "activation", "error")
        dw = xp.bincount(xp.asarray(h).ravel(), weights=(dv * xp.asarray(xi)).ravel(), minlength=self.budget)
        return product(self, e, v.T, "error", "weight"), {"w": dw}

    def _linear_matrix(self) -> np.ndarray:
        h, xi = self.hash()
        return xi.astype(np.float64) * self.w.astype(np.float64)[h]

    def workload_forward(self, b, label, x_shape, y_shape, training) -> None:
        """The hash of every virtual weight (Elementwise, `HASH_OPS` integer ops each, no memory
        traffic: computed in registers) and a MatMul whose weight traffic is the budget."""
        n_in, n_out = self.in_features, self.out_features
        b.ops.append(devices.Elementwise(f"{label}/hash", n=n_in * n_out, bits=32, ops_per_element=HASH_OPS,
                                         inputs=0, outputs=0, op="mul", kind="int"))
        kind, a_bits, b_bits = b.r.product("activation", "weight")
        b.ops.append(devices.MatMul(f"{label}/fwd", m=b.B, k=n_in, n=n_out, a_bits=a_bits, b_bits=b_bits,
                                    acc_bits=b.r.bits("acc"), kind=kind, out_bits=b.r.bits("activation"),
                                    stored_weights=self.budget))

    def workload_backward(self, b, label, x_shape, y_shape, first) -> None:
        """The error product (as the forward: budget traffic), the virtual gradient ``xᵀ e`` and its
        scatter-add into the budget (1 add per virtual weight, the budget read and written)."""
        n_in, n_out = self.in_features, self.out_features
        if not first:
            kind, a_bits, b_bits = b.r.product("error", "weight")
            b.ops.append(devices.MatMul(f"{label}/error", m=b.B, k=n_out, n=n_in, a_bits=a_bits,
                                        b_bits=b_bits,
                                        acc_bits=b.r.bits("acc"), kind=kind, out_bits=b.r.bits("error"),
                                        stored_weights=self.budget))
        b.gemm(f"{label}/grad", n_in, b.B, n_out, "activation", "error", "grad")
        b.ew(f"{label}/scatter", n_in * n_out, "grad", 1 + HASH_OPS, inputs=1, outputs=0)


def _build(a: LayerArgs) -> Hashed:
    n = a.in_features
    out = a.positional(0, "out", lo=1)
    return Hashed(n, out, a.keyword("budget", lo=1, hi=n * out),
                  bias=a.keyword("bias", kind=bool, default=True),
                  seed=a.seed, dtype=a.dtype)


register_layer_token("hashed", _build, "hashed(OUT,budget=B[,bias=false])")
