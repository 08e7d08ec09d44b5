"""Fastfood and Adaptive Fastfood (Le et al. 2013; Yang et al. 2015; seed 000:422–686)."""
from __future__ import annotations

import math

import numpy as np

import devices
import fixedpoint as fxp

from .._precision import RoleFormat
from .._seq_spec import LayerArgs, register_layer_token
from .._xp import get_array_module
from ._base import init_rng
from ._fwht import fwht, fwht_inplace, hadamard
from ._structured import StructuredLinear, check_size


def _fixed(q) -> bool:
    return isinstance(q, RoleFormat) and q.kind == "fixed"


class Fastfood(StructuredLinear):
    """``y = [x 0] V + b`` with ``V = [V₁ … V_m]`` (first ``out_features`` columns), one block per
    ``d`` outputs: ``Vₖ = Bₖ H Πₖ Gₖ H Sₖ`` on row vectors, i.e. the seed's ``h' = S H G Π H B h``
    (eq. 3.10) applied to the column ``h``. ``d`` is the input width padded with zeros to a power
    of two, ``m = ceil(out_features / d)``; ``H`` the unnormalised Walsh–Hadamard matrix computed
    by the Numba FWHT (`hwsim.layers._fwht`, never a matrix product); ``Πₖ`` a fixed random
    permutation (``perm``, drawn from the seed like the init, not a checkpoint entry); ``Bₖ``
    random ±1, ``Gₖ ~ N(0, 1)``, ``Sₖ`` chi-distributed (Le et al.) — each (m, d).

    Scaling (a named choice): ``Sₖ = sₖ / (d · ‖Gₖ‖)`` with ``sₖ ~ χ(d)``, so every column of
    ``Vₖ`` has squared norm ``sⱼ²/d`` (mean 1): the layer preserves the input variance like a
    Glorot-initialised square layer. (Le et al.'s ``1/(σ√d)`` kernel bandwidth becomes this
    normalisation; the seed's search of G's std, 000:582, is moot once S normalises by ‖G‖.)

    ``adaptive=False``: S, G, B are fixed buffers, the trained values are the bias only;
    ``adaptive=True``: S, G, B are parameters (``3·m·d`` values, plus the bias ``b``).

    Precision (roles as Dense, see `hwsim.layers._structured`): input -> activation; B, G, S and b
    -> weight (adaptive: slots 0–3; fixed: b slot 0, B, G, S slots 4–6). The four steps
    ``x ⊙ B``, ``H·``, ``Π·⊙ G``, ``H·`` are each rounded to ``acc`` (slots 2–5); the last product
    ``⊙ S`` plus b goes through acc and activation like Dense's sums.

    Exactness (``mode="exact"``, Fixed activation/weight/acc): the four steps run on int64 raw
    values (`fixedpoint.FixedArray`): each diagonal product is exact (word = sum of the operand
    words), the FWHT is additions only (the word grows by ``log2 d`` bits), then one rounding to
    acc. Each intermediate word must fit 62 bits (ValueError otherwise). The last product and the
    bias add run in float64 (exact while the acc word plus the weight word stay <= 53 bits) before
    the acc rounding. ``mode="fast"`` performs the same roundings on float values: it equals exact
    mode when every intermediate fits the float mantissa (float64: 53 bits, float32: 24 bits) —
    e.g. always in float64 for acc words <= 53 − log2 d and weight + acc words <= 53.

    Arrays: numpy only (the FWHT is a Numba CPU kernel; a CuPy input raises TypeError).

    Backward (float; straight through the intermediate roundings): with ``v₀ = [x 0]``,
    ``v₃ = Π(H(v₀ ⊙ B))``, ``v₅ = H(v₃ ⊙ G)`` and error ``g``: ``∂S = Σ v₅ ⊙ g``, ``g₄ = H(g ⊙ S)``,
    ``∂G = Σ v₃ ⊙ g₄``, ``g₁ = H(Π⁻¹(g₄ ⊙ G))``, ``∂B = Σ v₀ ⊙ g₁``, ``∂x = Σ_blocks (g₁ ⊙ B)``
    (first in_features columns) — eqs. 3.11–3.13.
    """

    def __init__(self, in_features: int, out_features: int, *, adaptive: bool = False, bias: bool = True,
                 seed=0, dtype=np.float32):
        in_features = check_size("Fastfood", "in_features", in_features)
        out_features = check_size("Fastfood", "out_features", out_features)
        self._init_common("fastfood", in_features, out_features, bias, dtype)
        self.d = d = max(2, 1 << (in_features - 1).bit_length())
        self.blocks = m = math.ceil(out_features / d)
        self.adaptive = bool(adaptive)
        rng = init_rng(seed)
        self.B = (rng.integers(0, 2, (m, d)) * 2 - 1).astype(dtype)
        g = rng.standard_normal((m, d))
        s = np.sqrt(rng.chisquare(d, (m, d)))
        self.G = g.astype(dtype)
        self.S = (s / (d * np.linalg.norm(g, axis=1, keepdims=True))).astype(dtype)
        self.perm = np.stack([rng.permutation(d) for _ in range(m)])
        self._finish_params(("B", "G", "S") if self.adaptive else ())

    def buffers(self) -> dict:
        return {} if self.adaptive else {"B": self.B, "G": self.G, "S": self.S}

    def _diags(self, w):
        """B, G, S as the products see them: the quantized parameters (adaptive) or the fixed
        buffers through the weight role (slots 4, 5, 6)."""
        return tuple(w[k] if k in w else self.quantize("weight", getattr(self, k), 4 + i)
                     for i, k in enumerate(("B", "G", "S")))

    def _gather(self, v, perm):
        """``v[:, k, perm[k]]`` for every block k."""
        xp = get_array_module(v)
        return xp.ascontiguousarray(v[:, xp.arange(self.blocks)[:, None], perm])

    # ------------------------------------------------------------------ forward
    def _forward(self, x, w, training):
        n, d = x.shape[0], self.d
        exact = self.precision.mode == "exact"
        dt = np.float64 if exact else x.dtype
        v0 = np.zeros((n, 1, d), dtype=dt)
        v0[:, 0, :self.in_features] = x
        B, G, S = self._diags(w)
        if exact:
            v3, v5 = self._exact_steps(v0, B, G)
        else:
            v2 = self.quantize("acc", fwht_inplace(self.quantize("acc", v0 * B.astype(dt), 2)), 3)
            v3 = self._gather(v2, self.perm)
            v5 = self.quantize("acc", fwht_inplace(self.quantize("acc", v3 * G.astype(dt), 4)), 5)
        if training:
            self._cache = (v0, v3, v5, B, G, S)
        y = (v5 * S.astype(dt)).reshape(n, self.blocks * d)
        return y[:, :self.out_features]

    def _exact_steps(self, v0, B, G):
        """The four rounded steps on raw integers (see the class docstring)."""
        p = self.precision
        x_fmt, w_fmt, acc = p.activation.fmt, p.weight.fmt, p.acc
        grow = int(math.log2(self.d))

        def to_acc(fa, slot):
            seed = self.stream_seed("acc", slot)
            return fa.cast(acc.fmt, acc.rounding, acc.overflow, seed=seed)

        def fwht_fixed(fa):
            fmt = _wider(fa.fmt, grow, "FWHT")
            return fxp.FixedArray(fwht(fa.raw), fmt)

        xa = fxp.FixedArray.from_float(v0, x_fmt)
        v1 = to_acc(xa * fxp.FixedArray.from_float(np.asarray(B, np.float64), w_fmt), 2)
        v2 = to_acc(fwht_fixed(v1), 3)
        v3 = fxp.FixedArray(self._gather(v2.raw, self.perm), v2.fmt)
        v4 = to_acc(v3 * fxp.FixedArray.from_float(np.asarray(G, np.float64), w_fmt), 4)
        v5 = to_acc(fwht_fixed(v4), 5)
        return v3.to_float(), v5.to_float()

    # ------------------------------------------------------------------ backward
    def _backward(self, e):
        v0, v3, v5, B, G, S = self._cache
        n, d, m = e.shape[0], self.d, self.blocks
        xp = get_array_module(e)
        g = xp.zeros((n, m * d), dtype=v5.dtype)
        g[:, :self.out_features] = e
        g = g.reshape(n, m, d)
        raw = {}
        if self.adaptive:
            raw["S"] = (v5 * g).sum(axis=0)
        g4 = fwht_inplace(g * S.astype(g.dtype))
        if self.adaptive:
            raw["G"] = (v3 * g4).sum(axis=0)
        g2 = xp.empty_like(g4)
        g2[:, xp.arange(m)[:, None], self.perm] = g4 * G.astype(g.dtype)
        g1 = fwht_inplace(g2)
        if self.adaptive:
            raw["B"] = (v0 * g1).sum(axis=0)
        dx = (g1 * B.astype(g.dtype)).sum(axis=1)[:, :self.in_features]
        return dx, raw

    def _linear_matrix(self) -> np.ndarray:
        d = self.d
        h = hadamard(d)
        cols = []
        for k in range(self.blocks):
            p = np.zeros((d, d))
            p[self.perm[k], np.arange(d)] = 1.0  # v Π = v[perm]
            vk = (self.B[k].astype(np.float64)[:, None] * h) @ p @ (self.G[k].astype(np.float64)[:, None] * h)
            cols.append(vk * self.S[k].astype(np.float64))
        return np.hstack(cols)[:self.in_features, :self.out_features]

    # ------------------------------------------------------------------ cost
    def workload_forward(self, b, label, x_shape, y_shape, training) -> None:
        """Per block row: ``⊙ B`` (Elementwise mul), FWHT (Transform fwht, d points), the gather
        by Π fused with ``⊙ G`` (Elementwise mul), FWHT, ``⊙ S`` plus the bias (Elementwise mac).
        Transforms at the acc width."""
        rows, d = b.B * self.blocks, self.d
        b.ew(f"{label}/B", rows * d, "activation", 1, op="mul")
        b.ops.append(devices.Transform(f"{label}/fwht1", "fwht", d, count=rows, bits=b.r.bits("acc")))
        b.ew(f"{label}/permG", rows * d, "acc", 1, op="mul")
        b.ops.append(devices.Transform(f"{label}/fwht2", "fwht", d, count=rows, bits=b.r.bits("acc")))
        b.ew(f"{label}/S", rows * d, "acc", 1, op="mac")

    def workload_backward(self, b, label, x_shape, y_shape, first) -> None:
        """Two FWHTs of the error and the products by S, G, B (with the S, G, B gradients when
        adaptive); a non-adaptive first layer needs none of it (only its bias gradient)."""
        if first and not self.adaptive:
            return
        rows, d = b.B * self.blocks, self.d
        per = 2 if self.adaptive else 1
        b.ew(f"{label}/bwd_S", rows * d, "error", per, op="mac", inputs=1 + per)
        b.ops.append(devices.Transform(f"{label}/bwd_fwht1", "fwht", d, count=rows, bits=b.r.bits("error")))
        b.ew(f"{label}/bwd_G", rows * d, "error", per, op="mac", inputs=1 + per)
        b.ops.append(devices.Transform(f"{label}/bwd_fwht2", "fwht", d, count=rows, bits=b.r.bits("error")))
        b.ew(f"{label}/bwd_B", rows * d, "error", per, op="mac", inputs=1 + per)


def _wider(fmt, bits: int, what: str):
    word = fmt.word + bits + (0 if fmt.signed else 1)  # the differences are signed
    if word > 62:
        raise ValueError(f"Fastfood exact mode: the {what} needs a {word}-bit word ({fmt} + {bits} bits), "
                         f"more than 62: use a narrower acc format")
    return fxp.Fixed(word, fmt.frac, True)


def _build(a: LayerArgs) -> Fastfood:
    n = a.in_features
    return Fastfood(n, a.positional(0, "out", lo=1), adaptive=a.keyword("adaptive", kind=bool, default=False),
                    bias=a.keyword("bias", kind=bool, default=True), seed=a.seed, dtype=a.dtype)


register_layer_token("fastfood", _build, "fastfood(OUT[,adaptive=true,bias=false])")
