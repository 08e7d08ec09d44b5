"""Noisy activation functions (thesis 000 §4.3, lines 1004–1383; Gulcehre et al. 2016).

A hard-saturating base ``h`` (``hard_tanh`` or ``hard_sigmoid`` of `hwsim.layers.ACTIVATIONS`) with
its linearisation at 0, ``u(x) = k x + m``, and threshold ``x_t`` (``|x| >= x_t`` saturates):

============  ==============  =====================  ======
base          h(x)            u(x)                   x_t
============  ==============  =====================  ======
hard_tanh     clip(x, -1, 1)  x                      1
hard_sigmoid  clip((x+1)/2)   0.5 x + 0.5            1
============  ==============  =====================  ======

(hwsim's ``hard_sigmoid`` is BinaryConnect's (x+1)/2 clipped to [0, 1]; the thesis's is
``clip(0.25 x + 0.5)`` with x_t = 2, i.e. the same function of x/2.)

``Δ = h(x) − u(x)`` (0 in the linear region), ``σ(x) = c (sigmoid(p Δ) − 0.5)²`` (4.10) with ``p``
learned per unit (initialised U[−1, 1]) and the scale ``c`` a hyperparameter or an annealing schedule.
Variants (``ξ ~ N(0, 1)``):

- ``nan``: ``φ = h + (α − 1) Δ + d σ ξ`` (4.16, = α h + (1 − α) u + d σ ξ), ``d = −sgn(x) sgn(1 − α)``
  (4.14, sgn(0) = +1);
- ``nah``: the same with ``|ξ|`` (half-normal);
- ``nani``: ``φ = h(x + σ ξ)``, σ a fixed hyperparameter (4.18);
- ``nanil``: ``φ = h(x + σ(x) ξ)`` with the learned ``σ(x)`` of (4.10) ("σ learned as in Eqn 4.10",
  000:1196; the thesis gives c for NANIL, 000:1316);
- ``nanis``: ``φ = h(x + 1[|x| ≥ x_t] σ ξ)`` (4.19), σ fixed.

Test time (``training=False``) outputs the expectation over ξ (000:1182): nan ``h + (α−1)Δ``; nah
``h + (α−1)Δ + d σ √(2/π)`` (E|ξ| = √(2/π)); the input variants the exact Gaussian expectation
``k E[clip(x + sξ, −x_t, x_t)] + m`` (closed form with the normal CDF). In the linear region (Δ = 0)
``nan``, ``nah``, ``nanil`` and ``nanis`` output ``h(x)`` exactly — the input itself for hard_tanh —
in training and at test time; ``nani`` injects noise everywhere by definition.

Noise: ``ξ`` for element ``i`` (row-major) is ``ndtri(u_i)`` of the counter-RNG uniform ``u_i`` of
stream ``Layer.stream_seed("noise")`` (role code 8 of ``hwsim._precision``): a function of the
policy seed, the layer index and the training step only, like dropout masks and stochastic rounding.
The output goes through the ``activation`` quantizer (slot 2), so injected noise composes with the
hardware's rounding. ``p`` is committed through the ``update`` role like any parameter.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from .._precision import stream_uniforms
from .._seq_spec import LayerArgs, register_layer_token
from .._xp import get_array_module
from ._activations import KINDS
from ._anneal_schedule import AnnealInverseSqrt, AnnealLinear, as_schedule
from ._base import Layer, init_rng

__all__ = ["NOISY_BASES", "NOISY_VARIANTS", "NoisyActivation", "counter_normals"]

#: base -> (k, m, x_t): u(x) = k x + m, saturated where |x| >= x_t.
NOISY_BASES = {"hard_tanh": (1.0, 0.0, 1.0), "hard_sigmoid": (0.5, 0.5, 1.0)}
NOISY_VARIANTS = ("nan", "nah", "nani", "nanil", "nanis")
_OUTPUT_NOISE = ("nan", "nah")
_LEARNED_P = ("nan", "nah", "nanil")
HALF_NORMAL_MEAN = math.sqrt(2.0 / math.pi)
#: Workload: ops per element of drawing one Gaussian random number (a counter hash: 2 multiplies and
#: 3 xor-shifts, plus an inverse-CDF table lookup and interpolation) — a named assumption.
NOISE_RNG_OPS = 8
#: Workload: ops per element of the noisy expression beyond the random draw.
_FWD_OPS = {"nan": 13, "nah": 14, "nani": 4, "nanil": 12, "nanis": 5}
#: Workload: ops per element at test time (the expectation; input variants: two normal CDFs/PDFs).
_TEST_OPS = {"nan": 5, "nah": 13, "nani": 24, "nanil": 32, "nanis": 25}


def counter_normals(seed: int, n: int) -> np.ndarray:
    """``n`` standard normal float64 draws: ``ndtri(u_i)`` of the counter-RNG uniforms of ``seed``
    (``u = 0``, probability 2^-53, is read as 2^-54 so every draw is finite)."""
    return special.ndtri(np.maximum(stream_uniforms(seed, n), 2.0**-54))


def _half_tanh(xp, z):
    """``sigmoid(z) − 0.5`` as ``0.5 tanh(z / 2)``: exactly 0 at z = 0."""
    return 0.5 * xp.tanh(0.5 * z)


def _ndtr(xp, z):
    if xp is np:
        return special.ndtr(z)
    from cupyx.scipy import special as cs  # pragma: no cover - GPU only
    return cs.ndtr(z)


def gaussian_clip_mean(xp, mu, s, lo: float, hi: float):
    """``E[clip(mu + s ξ, lo, hi)]``, ξ ~ N(0, 1), elementwise (s > 0 where used; s = 0 gives
    ``clip(mu)``)."""
    safe = xp.where(s > 0, s, 1.0)
    a, b = (lo - mu) / safe, (hi - mu) / safe
    pa, pb = _ndtr(xp, a), _ndtr(xp, b)
    inv = 1.0 / math.sqrt(2.0 * math.pi)
    tails = safe * inv * (xp.exp(-0.5 * a * a) - xp.exp(-0.5 * b * b))
    mean = lo * pa + hi * (1.0 - pb) + mu * (pb - pa) + tails
    return xp.where(s > 0, mean, xp.clip(mu, lo, hi)).astype(mu.dtype, copy=False)


class NoisyActivation(Layer):
    """``y = Q_activation(φ(x, ξ))`` for ``variant`` in `NOISY_VARIANTS` over ``base`` in `NOISY_BASES`
    (formulas, test-time expectation and noise stream in the module docstring).

    ``shape``: the input shape without the batch axis; ``p`` has one entry per unit (the first axis:
    features of a flat input, channels of an image, broadcast over the other axes), drawn from
    U[−1, 1] with ``seed`` (variants nan, nah, nanil). ``alpha``: the leak α of nan/nah (1 = none,
    thesis ≈ 0.9). ``c``: the σ scale of nan, nah, nanil; ``sigma``: the fixed input-noise σ of nani,
    nanis. Either may be a number or an annealing schedule (`AnnealInverseSqrt`, `AnnealLinear`,
    `AnnealConstant`), evaluated at the layer's training step.
    """

    def __init__(self, base: str = "hard_tanh", variant: str = "nan", *, shape: tuple = (1,),
                 alpha: float = 1.0, c=1.0, sigma=0.05, seed=0, dtype=np.float32):
        super().__init__()
        if base not in NOISY_BASES:
            raise ValueError(f"bad noisy base {base!r}: allowed {', '.join(NOISY_BASES)}")
        if variant not in NOISY_VARIANTS:
            raise ValueError(f"bad noisy variant {variant!r}: allowed {', '.join(NOISY_VARIANTS)}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
            raise ValueError(f"alpha must be a finite number, got {alpha!r}")
        self.base, self.variant, self.alpha = base, variant, float(alpha)
        self.kind = base  # the base activation (workload and grid rules)
        self.name = f"{variant}_{base}"
        self.shape = tuple(int(s) for s in shape)
        self._h = KINDS[base]
        self.scale = as_schedule("sigma" if variant in ("nani", "nanis") else "c",
                                 sigma if variant in ("nani", "nanis") else c)
        self.p = self.dp = None
        if variant in _LEARNED_P:
            self.p = init_rng(seed).uniform(-1.0, 1.0, self.shape[0]).astype(dtype)
            self.dp = np.zeros_like(self.p)

    # ------------------------------------------------------------------ parameters
    def params(self) -> dict:
        return {} if self.p is None else {"p": self.p}

    def grads(self) -> dict:
        return {} if self.p is None else {"p": self.dp}

    def output_shape(self, input_shape: tuple) -> tuple:
        if self.p is not None and tuple(input_shape)[:1] != self.shape[:1]:
            raise ValueError(f"{self.name} has {self.shape[0]} units, got input shape {tuple(input_shape)}")
        return tuple(input_shape)

    def scale_now(self) -> float:
        """The σ scale (c, or σ for nani/nanis) at the current training step."""
        return self.scale(self.step)

    def anneal_state(self) -> dict:
        """What metrics.json records per epoch: the schedule and its value at the current step."""
        return {"step": int(self.step), "scale": self.scale_now(), "schedule": self.scale.to_dict()}

    # ------------------------------------------------------------------ forward/backward
    def _p(self, x):
        return self.p.reshape((-1,) + (1,) * (x.ndim - 2))

    def _noise(self, xp, x):
        xi = counter_normals(self.stream_seed("noise"), x.size).reshape(x.shape)
        return xp.asarray(xi, dtype=x.dtype)

    def forward(self, x, *, training: bool = False):
        xp = get_array_module(x)
        k, m, xt = NOISY_BASES[self.base]
        s0 = x.dtype.type(self.scale_now())
        h, hder = self._h(xp, x)
        delta = h - (k * x + m)
        cache: tuple = ()
        if self.p is not None:
            gm = _half_tanh(xp, self._p(x) * delta)
            sig = s0 * gm * gm
        if self.variant in _OUTPUT_NOISE:
            d = xp.where(x >= 0, x.dtype.type(-1), x.dtype.type(1)) * (1 if self.alpha <= 1 else -1)
            if training:
                eps = self._noise(xp, x)
                if self.variant == "nah":
                    eps = xp.abs(eps)
            else:
                eps = x.dtype.type(0.0 if self.variant == "nan" else HALF_NORMAL_MEAN)
            y = h + (self.alpha - 1.0) * delta + d * sig * eps
            cache = (hder, gm, delta, d * eps)
        else:
            if self.variant != "nanil":
                sig = xp.full_like(x, s0)
            mask = {"nani": None, "nanil": delta != 0, "nanis": xp.abs(x) >= xt}[self.variant]
            if training:
                xi = self._noise(xp, x)
                y_in = x + sig * xi
                if mask is not None:
                    y_in = xp.where(mask, y_in, x)
                y, hder_in = self._h(xp, y_in)
                cache = (hder_in, hder, gm, delta, xi, mask) if self.variant == "nanil" else (hder_in,)
            else:
                s = sig if mask is None else xp.where(mask, sig, 0)
                y = xp.where(s > 0, k * gaussian_clip_mean(xp, x, s, -xt, xt) + m, h)
        y, qmask = self.quantize_masked("activation", y, 2)
        if training:
            self._cache = (cache, qmask, s0)
        return y

    def _reduce_p(self, g, batch: int):
        """Sum ``g`` over every axis but the unit axis, as the mean-loss gradient of ``p``."""
        axes = (0,) + tuple(range(2, g.ndim))
        return g.sum(axis=axes) * (1.0 / batch)

    def backward(self, dy):
        cache, qmask, s0 = self._cache
        if qmask is not None:
            dy = dy * qmask
        k = NOISY_BASES[self.base][0]
        if self.variant in _OUTPUT_NOISE:
            hder, gm, delta, d_eps = cache
            dh = hder()
            # dσ/d(pΔ) = c · 2 gm · sigmoid' = c · 2 gm (0.25 − gm²)
            dsig = 2 * s0 * gm * (0.25 - gm * gm) * d_eps
            dx = dy * (dh + (self.alpha - 1.0) * (dh - k) + dsig * self._p(dy) * (dh - k))
            self._set_dp(dy * dsig * delta, dy.shape[0])
            return dx
        hder_in = cache[0]()
        if self.variant != "nanil":
            return dy * hder_in
        _, hder, gm, delta, xi, mask = cache
        dsig = 2 * s0 * gm * (0.25 - gm * gm) * xi * mask
        g = dy * hder_in
        self._set_dp(g * dsig * delta, dy.shape[0])
        return g * (1 + dsig * self._p(dy) * (hder() - k))

    def _set_dp(self, g, batch: int) -> None:
        self.dp = self.quantize("grad", self._reduce_p(g, batch).astype(self.p.dtype, copy=False), 0)

    # ------------------------------------------------------------------ workload
    def workload_forward(self, b, label: str, x_shape: tuple, y_shape: tuple, training: bool) -> None:
        """Training: ``NOISE_RNG_OPS`` per element for the random draw plus the noisy expression, at
        the activation width; inference: the expectation's ops (no random numbers)."""
        n = b.B * math.prod(y_shape)
        if training:
            b.ew(f"{label}/noise", n, "activation", NOISE_RNG_OPS, inputs=0, outputs=0)
            b.ew(f"{label}/fwd", n, "activation", _FWD_OPS[self.variant])
        else:
            b.ew(f"{label}/fwd", n, "activation", _TEST_OPS[self.variant])

    def workload_backward(self, b, label: str, x_shape: tuple, y_shape: tuple, first: bool) -> None:
        """The chain rule through the noisy expression (4 ops per element at the error width, 8 with a
        learned p: its gradient terms and reduction)."""
        n = b.B * math.prod(x_shape)
        b.ew(f"{label}/bwd", n, "error", 8 if self.p is not None else 4, op="mul", inputs=2)


def _build_noisy(a: LayerArgs) -> NoisyActivation:
    base = a.positional(0, "base", kind=str, choices=tuple(NOISY_BASES))
    variant = a.keyword("variant", kind=str, default="nan", choices=NOISY_VARIANTS)
    fixed_sigma = variant in ("nani", "nanis")
    key = "sigma" if fixed_sigma else "c"
    start = a.keyword(key, kind=float, default=0.05 if fixed_sigma else 1.0, lo=0.0)
    anneal = a.keyword("anneal", kind=str, default="none", choices=("none", "isqrt", "linear"))
    scale = start
    if anneal == "isqrt":
        scale = AnnealInverseSqrt(start, every=a.keyword("every", default=200, lo=1),
                                  floor=a.keyword("floor", kind=float, default=min(0.5, start), lo=0.0))
    elif anneal == "linear":
        scale = AnnealLinear(start, a.keyword("floor", kind=float, default=0.0, lo=0.0),
                             a.keyword("steps", lo=1))
    alpha = a.keyword("alpha", kind=float, default=1.0) if not fixed_sigma and variant != "nanil" else 1.0
    kw = {"sigma": scale} if fixed_sigma else {"c": scale}
    seed = a.seed if variant in _LEARNED_P else 0
    return NoisyActivation(base, variant, shape=a.in_shape, alpha=alpha, seed=seed, dtype=a.dtype, **kw)


register_layer_token(
    "noisy", _build_noisy,
    "noisy(BASE[,variant=nan|nah|nani|nanil|nanis,alpha=A,c=C|sigma=S,anneal=none|isqrt|linear,"
    "every=M,floor=F,steps=S]) with BASE hard_tanh or hard_sigmoid")
