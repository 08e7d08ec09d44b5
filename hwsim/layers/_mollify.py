"""Mollifying networks (thesis 000 §4.4, lines 1385–1668; Algorithm 2 and eqs. 4.24–4.31).

`MollifiedDense` is one block of a mollifying MLP: ``z = x W + b`` (a `Dense`), then

- the activation shifted so that f(0) = 0 and its linearisation at 0, ``u(z) = k z``:

  ==============  ==========================  =====
  act             f(z)                        k
  ==============  ==========================  =====
  sigmoid         sigmoid(z) − 0.5            0.25
  tanh            tanh(z)                     1
  hard_tanh       clip(z, −1, 1)              1
  hard_sigmoid    clip((z+1)/2, 0, 1) − 0.5   0.5
  relu            max(z, 0)                   1 (the right derivative; a choice)
  ==============  ==========================  =====

- Algorithm 2: ``Δ = u − f``, ``σ = (sigmoid(a Δ) − 0.5)²`` with ``a ~ U[−2, 2]`` per unit (a fixed
  buffer, 000:1606), ``s = p c σ |ξ|``, ``ψ = sgn(u) min(|u|, |f + sgn(u) |s||)`` (4.24; with f and u
  of the same sign this is ``min(u, f + s)`` for u ≥ 0 and ``max(u, f − s)`` for u < 0): s = 0 gives
  f, s → ∞ gives u;
- the skip mixing ``h = π ⊙ x̃ + (1 − π) ⊙ ψ`` (4.28), ``π ~ Bernoulli(p)`` per element, ``x̃`` the
  input zero-padded (or cut) to the output width (000:1554 allows padding or a projection);
  ``residual=True`` adds the optional residual connection of Fig. 4.15: ``h = π x̃ + (1 − π) ψ + x̃``.

``p`` is the layer's noise level: ``p = 1`` computes the identity (the skip, exactly), ``p = 0`` the
base block ``f(x W + b)`` exactly (no noise drawn). Test time uses the mean field: ``π → p`` and
``|ξ| → √(2/π)``.

The loss-driven schedule (4.31, `mollifier_update`, called by `hwsim.train` after every update ``t``
= 1, 2, ...): ``v_t = β v_{t−1} + (1 − β) loss_t`` (v_1 = loss_1), ``p^l = 1 − exp(−k v_t l / (t L))``
for the l-th of the L annealed blocks (l = 1 the lowest). The printed formula has ``v_t^l``; the text
asks for a per-layer schedule in which lower layers anneal faster (000:1578, as the linear decay of
stochastic depth), which the factor l gives — our reading. When ``Σ_l p^l <= δ`` annealing stops and
every p is set to 0: the rest of training runs the base network. Defaults (the seed gives none of
k, δ, c): ``k = 1000`` (in updates: the top layer's p falls to ≈ 1 − e^{−v} near update k),
``δ = 0.05 L``, ``c = 20`` (at p = 1 and |ξ| = E|ξ|, s reaches Δ where |a| Δ ≳ 1 (sigmoid): the
saturated units are pushed to the linearisation, and near 0 f ≈ u anyway), ``β = 0.99``.
"""
from __future__ import annotations

import math

import numpy as np

from .._precision import stream_uniforms
from .._seq_spec import LayerArgs, register_layer_token
from .._xp import get_array_module
from ._activations import KINDS
from ._dense import Dense
from ._noisy import HALF_NORMAL_MEAN, NOISE_RNG_OPS, _half_tanh, counter_normals

__all__ = ["MOLLIFIED_ACTS", "MollifiedDense", "mollifier_update"]

#: act -> (shift, k): f = act − shift, u = k z.
MOLLIFIED_ACTS = {"sigmoid": (0.5, 0.25), "tanh": (0.0, 1.0), "hard_tanh": (0.0, 1.0),
                  "hard_sigmoid": (0.5, 0.5), "relu": (0.0, 1.0)}


class MollifiedDense(Dense):
    """A mollified block ``x -> π x̃ + (1 − π) ψ(x W + b)`` (see the module docstring).

    ``act`` in `MOLLIFIED_ACTS`; ``c`` the noise scale; ``p`` the initial noise level (1: start as
    the identity); ``anneal``: whether `mollifier_update` drives p (False: p stays fixed, e.g.
    ``p=0, residual=True`` is a plain residual block ``x̃ + f(x W + b)``); ``k``, ``delta``, ``beta``
    the schedule's constants (equal in all annealed blocks of a model).
    Buffers (checkpointed): ``p_level`` (p), ``loss_avg`` (v_t), ``a`` (the σ slopes).
    """

    def __init__(self, in_features: int, out_features: int, *, act: str = "sigmoid", c: float = 20.0,
                 p: float = 1.0, anneal: bool = True, residual: bool = False, k: float = 1000.0,
                 delta: float | None = None, beta: float = 0.99, seed=0, dtype=np.float32):
        super().__init__(in_features, out_features, seed=seed, dtype=dtype)
        if act not in MOLLIFIED_ACTS:
            raise ValueError(f"bad mollified activation {act!r}: allowed {', '.join(MOLLIFIED_ACTS)}")
        for name, v, lo, hi in (("c", c, 0.0, math.inf), ("p", p, 0.0, 1.0), ("k", k, 0.0, math.inf),
                                ("beta", beta, 0.0, 1.0)):
            if not (isinstance(v, (int, float)) and lo <= v <= hi and math.isfinite(v)):
                raise ValueError(f"{name} must be in [{lo}, {hi}], got {v!r}")
        if delta is not None and not (math.isfinite(delta) and delta >= 0):
            raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
        self.name = "mollified"
        self.act, self.c, self.anneal, self.residual = act, float(c), bool(anneal), bool(residual)
        self.k, self.delta, self.beta = float(k), delta, float(beta)
        self._f = KINDS[act]
        self.a = np.random.default_rng([int(seed), 1]).uniform(-2.0, 2.0, out_features).astype(dtype)
        self.p_level = np.array([p], dtype=np.float64)
        self.loss_avg = np.array([math.nan])

    def buffers(self) -> dict:
        return {"a": self.a, "p_level": self.p_level, "loss_avg": self.loss_avg}

    @property
    def p(self) -> float:
        """The current noise level p (1 = identity, 0 = the base block)."""
        return float(self.p_level[0])

    def anneal_state(self) -> dict:
        """What metrics.json records per epoch."""
        return {"p": self.p, "loss_avg": float(self.loss_avg[0])}

    def _skip(self, x):
        n_in, n_out = self.in_features, self.out_features
        if n_out == n_in:
            return x
        if n_out < n_in:
            return x[:, :n_out]
        return get_array_module(x).pad(x, ((0, 0), (0, n_out - n_in)))

    def _unskip(self, g):
        n_in, n_out = self.in_features, self.out_features
        if n_out >= n_in:
            return g[:, :n_in]
        return get_array_module(g).pad(g, ((0, 0), (0, n_in - n_out)))

    def forward(self, x, *, training: bool = False):
        xp = get_array_module(x)
        z = self._forward_matrix(x, training)
        shift, k = MOLLIFIED_ACTS[self.act]
        f, fder = self._f(xp, z)
        if shift:
            f = f - x.dtype.type(shift)
        p = self.p
        skip = self._skip(x)
        branch_u = dsig = None
        if p == 0.0:
            psi, pi = f, None
        else:
            u = k * z
            gm = _half_tanh(xp, self.a * (u - f))
            if training:
                xi = xp.abs(xp.asarray(counter_normals(self.stream_seed("noise", 0), z.size), dtype=z.dtype))
                xi = xi.reshape(z.shape)
                pi = xp.asarray(stream_uniforms(self.stream_seed("noise", 1), z.size).reshape(z.shape) < p)
                pi = pi.astype(z.dtype)
            else:
                xi, pi = HALF_NORMAL_MEAN, z.dtype.type(p)
            s = (p * self.c) * gm * gm * xi
            pos = u >= 0
            psi = xp.where(pos, xp.minimum(u, f + s), xp.maximum(u, f - s))
            branch_u = psi == u
            dsig = (p * self.c) * 2 * gm * (0.25 - gm * gm) * self.a * xi * xp.where(pos, 1, -1)
        h = psi if pi is None else pi * skip + (1 - pi) * psi
        if self.residual:
            h = h + skip
        h, mask = self.quantize_masked("activation", h, 2)
        if training:
            self._mcache = (fder, branch_u, dsig, pi, mask)
        return h

    def backward(self, dy):
        fder, branch_u, dsig, pi, mask = self._mcache
        xp = get_array_module(dy)
        if mask is not None:
            dy = dy * mask
        k = MOLLIFIED_ACTS[self.act][1]
        fd = fder()
        if pi is None:
            dz, dskip = dy * fd, None
        else:
            # ψ = u (slope k) or f ± s with ds/dz = p c |ξ| 2 gm sigmoid' a (k − f')
            dpsi = xp.where(branch_u, k, fd + dsig * (k - fd))
            dz, dskip = dy * (1 - pi) * dpsi, dy * pi
        if self.residual:
            dskip = dy if dskip is None else dskip + dy
        dx = self._backward_matrix(dz, dy.shape[0])
        if dskip is not None:
            dx = dx + self._unskip(dskip)
        return dx

    # ------------------------------------------------------------------ workload
    def workload_forward(self, b, label: str, x_shape: tuple, y_shape: tuple, training: bool) -> None:
        """The product (as Dense), then per output element the activation and Algorithm 2 (about 16
        ops), two random numbers in training (ξ and π, ``NOISE_RNG_OPS`` each) and the mixing (3)."""
        n = b.B * math.prod(y_shape)
        b.gemm(f"{label}/fwd", b.B, self.in_features, self.out_features, "activation", "weight", "activation")
        if training:
            b.ew(f"{label}/noise", n, "activation", 2 * NOISE_RNG_OPS, inputs=0, outputs=0)
        b.ew(f"{label}/mollify", n, "activation", 19, inputs=2)

    def workload_backward(self, b, label: str, x_shape: tuple, y_shape: tuple, first: bool) -> None:
        """Dense's two products and the chain rule through ψ and the mixing (6 ops per element)."""
        n = b.B * math.prod(y_shape)
        b.ew(f"{label}/bwd", n, "error", 6, op="mul", inputs=3)
        if not first:
            b.gemm(f"{label}/error", b.B, self.out_features, self.in_features, "error", "weight", "error")
        b.gemm(f"{label}/grad", self.in_features, b.B, self.out_features, "activation", "error", "grad")


def mollifier_update(layers: list, loss: float, t: int) -> None:
    """The loss-driven schedule (4.31) after update ``t`` (1-based) with the minibatch ``loss``, for
    ``layers`` = the annealed `MollifiedDense` blocks of a model, lowest first."""
    if not layers:
        return
    first = layers[0]
    consts = {(la.k, la.delta, la.beta) for la in layers}
    if len(consts) > 1:
        raise ValueError(f"mollified blocks need the same k, delta, beta; got {sorted(consts, key=str)}")
    big_l = len(layers)
    delta = 0.05 * big_l if first.delta is None else first.delta
    v_old = float(first.loss_avg[0])
    v = loss if math.isnan(v_old) else first.beta * v_old + (1 - first.beta) * loss
    if math.isfinite(loss) and all(la.p == 0.0 for la in layers):
        for la in layers:
            la.loss_avg[0] = v
        return
    ps = [1.0 - math.exp(-first.k * v * ll / (t * big_l)) for ll in range(1, big_l + 1)]
    if sum(ps) <= delta:
        ps = [0.0] * big_l
    for la, p in zip(layers, ps):
        la.loss_avg[0] = v
        la.p_level[0] = p


def _build_mollified(a: LayerArgs) -> MollifiedDense:
    n_in = a.in_features
    out = a.positional(0, "out", lo=1)
    delta = a.keyword("delta", kind=float, default=None, lo=0.0)
    return MollifiedDense(
        n_in, out, act=a.keyword("act", kind=str, default="sigmoid", choices=tuple(MOLLIFIED_ACTS)),
        c=a.keyword("c", kind=float, default=20.0, lo=0.0),
        p=a.keyword("p", kind=float, default=1.0, lo=0.0, hi=1.0),
        anneal=a.keyword("anneal", kind=bool, default=True),
        residual=a.keyword("residual", kind=bool, default=False),
        k=a.keyword("k", kind=float, default=1000.0, lo=0.0), delta=delta,
        beta=a.keyword("beta", kind=float, default=0.99, lo=0.0, hi=1.0), seed=a.seed, dtype=a.dtype)


register_layer_token(
    "mollified", _build_mollified,
    "mollified(OUT[,act=sigmoid|tanh|hard_tanh|hard_sigmoid|relu,c=C,p=P,anneal=true|false,"
    "residual=true|false,k=K,delta=D,beta=B])")
