"""The schemes' role quantizers (`hwsim.RoleQuantizer` objects): binary, ternary, powers of two.

Each has a ``name`` that parses back into an equal object wherever a role is named (registered
below with `hwsim.register_quantizer`: ``Precision.from_flags``, ``Precision.from_dict``, the CLI's
role flags, checkpoints), ``bits`` (storage width for workload export) and ``kind`` (``"binary"``,
``"ternary"``, ``"pow2"``: the workload exporter makes products with such operands multiplication-free).

Names: ``binary`` / ``binary:stochastic`` (+ ``:ste_clip``), ``ternary`` / ``ternary:stochastic``
(unscaled {-1, 0, +1}, fixed threshold), ``twn`` (scaled {-a, 0, +a}),
``pow2[MIN,MAX]`` / ``pow2[MIN,MAX]:stochastic``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

import fixedpoint as fxp

from .._precision import register_quantizer
from .._xp import get_array_module


def _ste_clip_mask(x):
    """Clipped straight-through estimator: pass the gradient where |x| <= 1 (Hubara et al. 2016)."""
    return (abs(x) <= 1).astype(x.dtype)


@dataclass(frozen=True)
class BinaryQuantizer:
    """Sign to {-1, +1} (sign(0) = +1) or, stochastic, +1 with probability clip((x+1)/2, 0, 1).

    BinaryConnect (Courbariaux, Bengio, David 2015) binarizes the weights this way in the forward
    and backward passes while the optimizer updates real-valued weights. ``ste_clip=True`` makes the
    backward pass the BNN straight-through estimator 1_{|x| <= 1} (Hubara et al. 2016);
    otherwise the gradient passes unchanged.
    """

    stochastic: bool = False
    ste_clip: bool = False
    bits = 1
    kind = "binary"

    @property
    def name(self) -> str:
        return "binary" + (":stochastic" if self.stochastic else "") + (":ste_clip" if self.ste_clip else "")

    def __call__(self, x, *, seed: int, offset: int = 0, stats=None):
        out = fxp.binarize(x, stochastic=self.stochastic, seed=seed, offset=offset, stats=stats)
        return out.astype(x.dtype, copy=False)

    def grad_mask(self, x):
        return _ste_clip_mask(x) if self.ste_clip else None


@dataclass(frozen=True)
class TernaryQuantizer:
    """Ternarize to {-1, 0, +1}, or to {-a, 0, +a} with ``scaled=True``.

    ``scaled=False`` (TernaryConnect, Lin, Courbariaux, Memisevic, Bengio 2015): deterministic
    threshold ``threshold`` (default 0.5) on weights in [-1, 1], or stochastic: sign(w) with
    probability |w|, else 0. ``scaled=True`` (TWN, Li, Zhang, Liu 2016): threshold
    ``D = 0.7 * mean|w|`` and scale ``a = mean of |w| over |w| > D`` (per tensor).
    The gradient passes unchanged (straight-through).
    """

    stochastic: bool = False
    scaled: bool = False
    threshold: float = 0.5
    bits = 2
    kind = "ternary"

    def __post_init__(self) -> None:
        if self.scaled and self.stochastic:
            raise ValueError("a scaled (TWN) ternary quantizer is deterministic: stochastic must be False")
        if not 0.0 < float(self.threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")

    @property
    def name(self) -> str:
        if self.scaled:
            return "twn"
        if self.stochastic:
            return "ternary:stochastic"
        return "ternary" if self.threshold == 0.5 else f"ternary:{self.threshold!r}"

    def __call__(self, x, *, seed: int, offset: int = 0, stats=None):
        if self.scaled:
            xp = get_array_module(x)
            t = fxp.ternarize(x, seed=seed, offset=offset, stats=stats)    # threshold 0.7 * mean|x| (TWN)
            nz = t != 0
            alpha = xp.abs(x[nz]).mean() if bool(nz.any()) else xp.asarray(0.0)
            return (t * alpha).astype(x.dtype, copy=False)
        thr = None if self.stochastic else self.threshold
        return fxp.ternarize(x, threshold=thr, stochastic=self.stochastic, seed=seed, offset=offset,
                             stats=stats).astype(x.dtype, copy=False)

    def grad_mask(self, x):
        return None


@dataclass(frozen=True)
class Pow2Quantizer:
    """Round to 0 or ±2**k, ``min_exp <= k <= max_exp`` (``fixedpoint.pow2``).

    Quantized back-propagation (Lin et al. 2015): errors quantized to powers of two turn every
    multiplication of the weight update into a shift. Deterministic rounding is nearest in the log
    domain; ``stochastic=True`` is unbiased in the linear domain. Storage: a sign bit, a zero flag
    and the exponent, ``bits = 2 + ceil(log2(max_exp - min_exp + 1))``.
    The gradient passes unchanged (straight-through).
    """

    min_exp: int = -24
    max_exp: int = 0
    stochastic: bool = False
    kind = "pow2"

    def __post_init__(self) -> None:
        for arg in ("min_exp", "max_exp"):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not -126 <= v <= 127:
                raise ValueError(f"{arg} must be an integer in [-126, 127], got {v!r}")
        if self.min_exp > self.max_exp:
            raise ValueError(f"min_exp ({self.min_exp}) must be <= max_exp ({self.max_exp})")

    @property
    def bits(self) -> int:
        return 2 + max(0, int(np.ceil(np.log2(self.max_exp - self.min_exp + 1))))

    @property
    def name(self) -> str:
        return f"pow2[{self.min_exp},{self.max_exp}]" + (":stochastic" if self.stochastic else "")

    def __call__(self, x, *, seed: int, offset: int = 0, stats=None):
        rounding = "stochastic" if self.stochastic else "nearest"
        out = fxp.pow2(x, self.min_exp, self.max_exp, rounding=rounding, seed=seed, offset=offset,
                       stats=stats)
        return out.astype(x.dtype, copy=False)

    def grad_mask(self, x):
        return None


# ---------------------------------------------------------------- name parsing
_BINARY = re.compile(r"^binary(:stochastic)?(:ste_clip)?$")
_TERNARY = re.compile(r"^ternary(?::(stochastic|[0-9.]+))?$")
_POW2 = re.compile(r"^pow2\[(-?\d+),(-?\d+)\](:stochastic)?$")


def _parse(pattern: re.Pattern, text: str, example: str) -> re.Match:
    m = pattern.match(text.strip())
    if not m:
        raise ValueError(f"bad quantizer name {text!r}: expected e.g. {example}")
    return m


def parse_binary(text: str) -> BinaryQuantizer:
    m = _parse(_BINARY, text, "'binary', 'binary:stochastic', 'binary:ste_clip'")
    return BinaryQuantizer(stochastic=bool(m.group(1)), ste_clip=bool(m.group(2)))


def parse_ternary(text: str) -> TernaryQuantizer:
    m = _parse(_TERNARY, text, "'ternary', 'ternary:stochastic', 'ternary:0.4'")
    if m.group(1) == "stochastic":
        return TernaryQuantizer(stochastic=True)
    return TernaryQuantizer(threshold=float(m.group(1) or 0.5))


def parse_twn(text: str) -> TernaryQuantizer:
    _parse(re.compile(r"^twn$"), text, "'twn'")
    return TernaryQuantizer(scaled=True)


def parse_pow2(text: str) -> Pow2Quantizer:
    m = _parse(_POW2, text, "'pow2[-24,0]' or 'pow2[-8,0]:stochastic'")
    return Pow2Quantizer(int(m.group(1)), int(m.group(2)), stochastic=bool(m.group(3)))


register_quantizer("binary", parse_binary)
register_quantizer("ternary", parse_ternary)
register_quantizer("twn", parse_twn)
register_quantizer("pow2", parse_pow2)
