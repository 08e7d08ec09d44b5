"""Precision policies: which number format and rounding each tensor role of a network uses.

Roles (Courbariaux et al. 2015, Algorithm 1; Gupta et al. 2015):

- ``weight``     the weights (and biases) as the forward/backward products see them
- ``activation`` layer inputs, the weighted sums and the layer outputs
- ``error``      the gradient w.r.t. activations, quantized before each backward product
- ``grad``       the weight gradient handed to the optimizer
- ``update``     the stored (master) weight after each optimizer step
- ``acc``        the accumulator of every dot product

A role is a `RoleQuantizer` or None (= float, the compute dtype: float32 unless the data are
float64). `RoleFormat` is the RoleQuantizer for `fixedpoint.Fixed` / `fixedpoint.FloatFormat` formats;
schemes (binary, ternary, power-of-two ...) bring their own RoleQuantizer objects and may register a
parser for their names with `register_quantizer` so that CLI strings and checkpoints can name them.
(`RoleQuantizer` is the protocol a role holds; `fixedpoint.Quantizer` is one bound fixed-point
quantizer. ``hwsim.Quantizer`` is a deprecated alias of `RoleQuantizer`.)

Seeds (reproducible stochastic rounding). Every quantization call in layer ``i`` for role ``r`` at
training step ``t`` gets ``offset = 0`` and

    base = seed_key(seed_key(precision.seed) ^ (i << 16 | ROLE_CODE[r] << 8 | slot))
    seed = seed_key((base + t * GOLDEN) mod 2**64)

with ``seed_key`` / ``GOLDEN`` from ``fixedpoint.rng`` (SplitMix64), ``ROLE_CODE`` the
1-based position of ``r`` in `ROLES` (7 for dropout masks, 8 for injected noise) and ``slot``
distinguishing the tensors of one role in one layer (0 = W / the layer input, 1 = b / the weighted
sums, 2 = the output).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
from numba import njit

import fixedpoint as fxp
from fixedpoint.rng import GOLDEN, MASK64, seed_key, uniforms

from ._xp import get_array_module

ROLES = ("weight", "activation", "error", "grad", "update", "acc")
ROLE_CODE = {**{r: i + 1 for i, r in enumerate(ROLES)}, "dropout": 7, "noise": 8}
ROUNDINGS = fxp.ROUNDING_MODES
MODES = ("fast", "exact")


@runtime_checkable
class RoleQuantizer(Protocol):
    """What a role holds: a callable that puts an array on a grid.

    ``name`` (e.g. ``"s8.6:nearest_even"``, ``"binary"``), ``bits`` (storage/datapath width, for
    workload export), ``kind`` (``"fixed" | "float" | "binary" | "ternary" | "pow2"``).
    ``q(x, seed=, offset=, stats=)`` returns an array of x's shape and dtype on the grid;
    ``q.grad_mask(x)`` is the straight-through estimator: None = pass the gradient unchanged, else a
    0/1 array (x's shape) that multiplies the incoming gradient.
    """

    name: str
    bits: int
    kind: str

    def __call__(self, x, *, seed: int, offset: int, stats=None): ...

    def grad_mask(self, x): ...


def quantizer_alias(stacklevel: int = 2) -> type:
    """`RoleQuantizer`, with a DeprecationWarning: what the deprecated name ``Quantizer`` gives
    (``hwsim.Quantizer``, ``hwsim._precision.Quantizer``) for one release."""
    warnings.warn("hwsim.Quantizer is deprecated and will be removed in the next release: use "
                  "hwsim.RoleQuantizer (the protocol of a precision role; fixedpoint.Quantizer is a bound "
                  "fixed-point quantizer)", DeprecationWarning, stacklevel=stacklevel + 1)
    return RoleQuantizer


def __getattr__(name: str):
    if name == "Quantizer":
        return quantizer_alias(stacklevel=2)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MANTISSA_BITS = {np.dtype(np.float32): 24, np.dtype(np.float64): 53}


@dataclass(frozen=True)
class RoleFormat:
    """The RoleQuantizer for a `fixedpoint.Fixed` or `fixedpoint.FloatFormat` format.

    Calls ``fixedpoint.quantize(x, fmt, rounding, overflow, seed=, offset=, stats=,
    backend="auto")`` through the quantizer `_fixedpoint_quantizer` binds once at construction
    (so fixedpoint checks ``rounding`` and ``overflow`` there, with its own messages: ``overflow``
    is ``saturate`` or ``wrap`` for Fixed, ``saturate``, ``inf`` or ``nan`` for a float format that
    has them). A Fixed format wider than the array's float mantissa (word > 24 for float32, e.g. an
    ``s32.16`` accumulator) is quantized in float64 and cast back: rounding a float32 onto a
    coarser grid is exact in float32, so only a saturated ±max is rounded by the cast.
    `grad_mask` is the clipped straight-through estimator: 0 where x lies outside [min, max]
    (saturating overflow only), None when nothing saturates.
    """

    fmt: Any
    rounding: str = "nearest_even"
    overflow: str = "saturate"

    def __post_init__(self) -> None:
        if not isinstance(self.fmt, (fxp.Fixed, fxp.FloatFormat)):
            raise TypeError(f"fmt must be a fixedpoint.Fixed or FloatFormat, got {self.fmt!r}")
        object.__setattr__(self, "_quantize", _fixedpoint_quantizer(self.fmt, self.rounding, self.overflow))

    def __reduce__(self):  # rebuilds the bound quantizer (a fixedpoint.Quantizer is not picklable)
        return type(self), (self.fmt, self.rounding, self.overflow)

    @property
    def name(self) -> str:
        tail = "" if self.overflow == "saturate" else f":{self.overflow}"
        return f"{self.fmt}:{self.rounding}{tail}"

    @property
    def bits(self) -> int:
        return self.fmt.word if self.kind == "fixed" else self.fmt.bits

    @property
    def kind(self) -> str:
        return "fixed" if isinstance(self.fmt, fxp.Fixed) else "float"

    def __call__(self, x, *, seed: int, offset: int = 0, stats=None):
        if _needs_float64(self.fmt, x.dtype):
            return self._quantize(x.astype(np.float64), seed=seed, offset=offset,
                                  stats=stats).astype(x.dtype)
        return self._quantize(x, seed=seed, offset=offset, stats=stats)

    def grad_mask(self, x):
        if self.overflow != "saturate":
            return None
        lo, hi = self.fmt.min, self.fmt.max
        if _all_inside(x, lo, hi):
            return None
        lo, hi = np.float64(lo), np.float64(hi)  # compared exactly, not rounded to x's dtype
        return ((x >= lo) & (x <= hi)).astype(x.dtype)

    @classmethod
    def parse(cls, text: str) -> "RoleFormat":
        """Parse ``"FORMAT[:ROUNDING[:OVERFLOW]]"``.

        FORMAT is a fixed-point format (``s8.4``, ``u8.8``, ARM ``Q7.8``) or a float format
        (``e4m3``, ``fp16``, ``bf16`` ...); ROUNDING one of `ROUNDINGS` (default nearest_even);
        OVERFLOW ``saturate`` (default) or ``wrap`` for a fixed-point format, ``saturate``, ``inf``
        or ``nan`` for a float format that has infinities / NaN (``e5m2:nearest_even:inf``). A bad
        token raises ValueError naming it.
        """
        if not isinstance(text, str):
            raise TypeError(f"a role format must be a str like 's8.4:stochastic', got {text!r}")
        parts = text.strip().split(":")
        if len(parts) > 3 or not parts[0]:
            raise ValueError(f"bad format {text!r}: expected FORMAT[:ROUNDING[:OVERFLOW]], "
                             f"e.g. 's8.4:stochastic'")
        rounding = parts[1] if len(parts) > 1 else "nearest_even"
        overflow = parts[2] if len(parts) > 2 else "saturate"
        if rounding not in ROUNDINGS:
            raise ValueError(f"bad rounding token {rounding!r} in {text!r}: allowed {', '.join(ROUNDINGS)}")
        fmt = _parse_format(parts[0], text)
        try:
            return cls(fmt, rounding, overflow)
        except ValueError as err:  # fixedpoint's check of the overflow mode for this format
            raise ValueError(f"bad overflow token {overflow!r} in {text!r}: {err}") from None


def _fixedpoint_quantizer(fmt, rounding: str, overflow: str) -> fxp.Quantizer:
    """fixedpoint's quantizer of the Fixed or float format ``fmt``, ``rounding`` and ``overflow``,
    called as ``q(x, seed=, offset=, stats=)``; fixedpoint checks the arguments here, with its own
    messages, not at the first call."""
    return fxp.Quantizer(fmt, rounding, overflow)


def _all_inside(x, lo: float, hi: float) -> bool:
    """True when every element of ``x`` lies in ``[lo, hi]`` (NaN does not). A C-contiguous
    float32/float64 numpy array takes one Numba pass, comparing in its own dtype when both bounds
    are exact there (else in float64); other arrays (float16, which Numba does not compile, CuPy)
    ``min``/``max`` (CuPy: both in one copy to the host)."""
    if type(x) is np.ndarray and x.dtype.char in "fd" and x.flags.c_contiguous:
        lo_t, hi_t = x.dtype.type(lo), x.dtype.type(hi)
        if float(lo_t) == lo and float(hi_t) == hi:
            return _all_inside_flat(x.reshape(-1), lo_t, hi_t)
        return _all_inside_flat(x.reshape(-1), lo, hi)
    if type(x) is np.ndarray:
        return bool(float(x.min()) >= lo and float(x.max()) <= hi)
    x_min, x_max = get_array_module(x).stack((x.min(), x.max())).tolist()  # one synchronisation
    return bool(x_min >= lo and x_max <= hi)


@njit(cache=True)
def _all_inside_flat(x, lo, hi):  # pragma: no cover - compiled
    inside = True
    for i in range(x.size):
        inside &= (x[i] >= lo) & (x[i] <= hi)
    return inside


def _needs_float64(fmt, dtype: np.dtype) -> bool:
    """True for a Fixed ``fmt`` wider than the 24-bit mantissa of a float32 ``dtype`` (or the
    53 bits of float64; a float16 array never is: fixedpoint refuses formats it cannot hold)."""
    return isinstance(fmt, fxp.Fixed) and fmt.word > (24 if dtype.char == "f" else 53)


def _parse_format(token: str, text: str):
    errors = []
    for cls in (fxp.Fixed, fxp.FloatFormat):
        try:
            return cls.parse(token)
        except (ValueError, TypeError) as err:
            errors.append(str(err))
    raise ValueError(
        f"bad format token {token!r} in {text!r}: expected a fixed-point format like 's8.4', "
        f"'u8.8', 'Q7.8' or a float format like 'e4m3', 'fp16', 'bf16'"
    )


# Parsers for the names of scheme quantizers ("binary", "ternary", "pow2[-8,0]" ...).
_QUANTIZER_PARSERS: list[tuple[str, Callable[[str], RoleQuantizer]]] = []


def register_quantizer(prefix: str, parser: Callable[[str], RoleQuantizer]) -> None:
    """Let `parse_quantizer` (and so CLI flags and checkpoints) build a scheme's RoleQuantizer.

    ``parser(text)`` is called for every text starting with ``prefix`` and must return a RoleQuantizer
    whose ``name`` parses back to an equal quantizer.
    """
    _QUANTIZER_PARSERS.append((prefix, parser))


def parse_quantizer(text: str) -> RoleQuantizer | None:
    """A RoleQuantizer from its name; ``"fp32"``/``"none"``/``"float"`` mean None (no quantization)."""
    if not isinstance(text, str):
        raise TypeError(f"a quantizer name must be a str, got {text!r}")
    if text.strip().lower() in ("fp32", "none", "float", "float32"):
        return None
    for prefix, parser in reversed(_QUANTIZER_PARSERS):
        if text.startswith(prefix):
            return parser(text)
    return RoleFormat.parse(text)


# Presets for ``--precision``. The master weights (`update`) stay 16-bit with stochastic rounding in
# every preset: that is what lets narrow weights train (Gupta et al. 2015).
PRESETS: dict[str, dict[str, str | None]] = {
    "fp32": {},
    # 16-bit fixed point in every role; 32-bit accumulator.
    "fixed16": {"weight": "s16.14", "activation": "s16.8", "error": "s16.12",
                "grad": "s16.16:stochastic", "update": "s16.14:stochastic", "acc": "s32.16"},
    # 8-bit weights and activations (errors and gradients float32).
    "fixed8": {"weight": "s8.7", "activation": "s8.4", "update": "s16.14:stochastic"},
    # 4-bit weights (range ±0.25, step 1/32) and activations (range ±2, step 1/4).
    "fixed4": {"weight": "s4.5", "activation": "s4.2", "update": "s16.14:stochastic"},
}


@dataclass(frozen=True)
class Precision:
    """A RoleQuantizer (or None = float) per tensor role, a seed, an arithmetic mode, a weight clip.

    ``mode="fast"``: every product is a float matmul (float32 BLAS) of operands already on their
    grids, the sums are then quantized once (to ``acc``, then to ``activation``). It is bit-exact,
    i.e. equal to ``"exact"``, when `fast_mode_is_exact` holds: every partial sum of K products is
    an integer multiple of ``2^-(frac_w + frac_x)`` below ``2^mantissa`` of the compute dtype
    (float32: 24 bits, float64: 53 bits) and the accumulator neither rounds (``acc.frac >= frac_w +
    frac_x``) nor overflows. ``mode="exact"``: every product goes through ``fixedpoint.matmul``
    with the ``acc`` format (needs Fixed ``weight``, ``activation`` and ``acc``), bit-accurate.
    ``weight_clip=c`` clips the master weights to [-c, c] after every update, before the update
    quantizer (BinaryConnect).
    """

    weight: RoleQuantizer | None = None
    activation: RoleQuantizer | None = None
    error: RoleQuantizer | None = None
    grad: RoleQuantizer | None = None
    update: RoleQuantizer | None = None
    acc: RoleQuantizer | None = None
    seed: int = 0
    mode: str = "fast"
    weight_clip: float | None = None

    def __post_init__(self) -> None:
        for role in ROLES:
            q = getattr(self, role)
            if q is not None and not isinstance(q, RoleQuantizer):
                raise TypeError(f"precision role {role!r} must be a RoleQuantizer or None, got {q!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        if self.weight_clip is not None and not (math.isfinite(self.weight_clip) and self.weight_clip > 0):
            raise ValueError(f"weight_clip must be a finite number > 0 or None, got {self.weight_clip!r}")
        if self.mode == "exact":
            bad = [r for r in ("weight", "activation", "acc")
                   if not (isinstance(getattr(self, r), RoleFormat) and getattr(self, r).kind == "fixed")]
            if bad:
                raise ValueError(f"mode='exact' needs Fixed formats for weight, activation and acc; "
                                 f"missing or not fixed: {', '.join(bad)}")

    @property
    def is_float(self) -> bool:
        """True when no role is quantized."""
        return all(getattr(self, r) is None for r in ROLES)

    def replace(self, **changes) -> "Precision":
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_flags(cls, precision: str | None = "fp32", *, seed: int = 0, mode: str = "fast",
                   weight_clip: float | None = None, **roles: str | None) -> "Precision":
        """Build a policy from CLI strings: a preset (`PRESETS`: fp32, fixed16, fixed8, fixed4)
        refined by per-role strings, e.g. ``from_flags("fp32", weight="s8.6",
        activation="s8.4:nearest_even", update="s16.14:stochastic", acc="s32.16")``. A role string
        ``"fp32"`` / ``"none"`` turns that role off. Unknown roles/presets/tokens raise ValueError."""
        preset = "fp32" if precision is None else precision
        if preset not in PRESETS:
            raise ValueError(f"bad precision preset {preset!r}: allowed {', '.join(PRESETS)}")
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown precision role(s) {sorted(unknown)}: allowed {', '.join(ROLES)}")
        texts = {**PRESETS[preset], **{r: t for r, t in roles.items() if t is not None}}
        return cls(**{r: parse_quantizer(t) for r, t in texts.items()}, seed=seed, mode=mode,
                   weight_clip=weight_clip)

    def to_dict(self) -> dict:
        """JSON-ready: role -> quantizer name or None, plus seed, mode, weight_clip."""
        d = {r: (None if getattr(self, r) is None else getattr(self, r).name) for r in ROLES}
        d.update(seed=int(self.seed), mode=self.mode, weight_clip=self.weight_clip)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Precision":
        """Inverse of `to_dict`."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown precision field(s) {sorted(unknown)}: allowed {sorted(known)}")
        kw = {k: v for k, v in d.items() if k not in ROLES}
        return cls(**{r: (None if d.get(r) is None else parse_quantizer(d[r])) for r in ROLES}, **kw)

    def __str__(self) -> str:
        if self.is_float:
            return "fp32"
        return " ".join(f"{r}={getattr(self, r).name}" for r in ROLES if getattr(self, r) is not None)


def role_base(seed: int, layer_index: int, role: str, slot: int = 0) -> int:
    """The per-(layer, role, slot) stream key of the seed rule in the module docstring."""
    return seed_key(seed_key(seed) ^ (layer_index << 16 | ROLE_CODE[role] << 8 | slot))


def stream_uniforms(seed: int, n: int):
    """``n`` uniform float64 draws in [0, 1) of the counter RNG stream ``seed`` (element ``i`` is
    ``fixedpoint``'s counter draw number ``i``: 53 random bits of SplitMix64(seed, i))."""
    return uniforms(seed, 0, n)


def step_seed(base: int, step: int) -> int:
    """The seed of one quantization call: ``seed_key(base + step * GOLDEN)``."""
    return seed_key((base + step * GOLDEN) & MASK64)


def _raw_abs_max(fmt) -> int:
    return max(-fmt.raw_min, fmt.raw_max)


def fast_mode_is_exact(precision: Precision, fan_in: int, dtype=np.float32) -> bool:
    """True when ``mode="fast"`` gives the same bits as ``mode="exact"`` for a dot product of
    length ``fan_in`` (plus a bias) in float ``dtype``.

    In units of ``u = 2^-(frac_w + frac_x)`` every product is an integer and the sum is bounded by
    ``B = fan_in * |w_raw|max * |x_raw|max + |b_raw|max * 2^frac_x``. Fast is exact when the formats
    of weight, activation and acc are Fixed, ``B < 2^mantissa(dtype)`` (float32: 24, float64: 53 —
    so every partial sum is exact in any summation order), ``acc.frac >= frac_w + frac_x`` (no
    accumulator rounding) and B fits the acc range (no saturation or wrap).
    """
    w, x, acc = precision.weight, precision.activation, precision.acc
    if not all(isinstance(q, RoleFormat) and q.kind == "fixed" for q in (w, x, acc)):
        return False
    wf, xf, af = w.fmt, x.fmt, acc.fmt
    shift = af.frac - wf.frac - xf.frac
    if shift < 0 or xf.frac < 0:
        return False
    bound = fan_in * _raw_abs_max(wf) * _raw_abs_max(xf) + _raw_abs_max(wf) * 2**xf.frac
    return bound < 2 ** _MANTISSA_BITS[np.dtype(dtype)] and (bound << shift) <= af.raw_max
