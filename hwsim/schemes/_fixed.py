"""Fixed-point training: Gupta, Agrawal, Gopalakrishnan, Narayanan, "Deep learning with limited
numerical precision", ICML 2015 (stochastic rounding); Courbariaux, Bengio, David, "Training deep
neural networks with low precision multiplications", ICLR 2015 workshop (Algorithm 1)."""
from __future__ import annotations

import dataclasses

from .._precision import ROLES, Precision
from ._base import Scheme

#: Named presets of the ``fixed`` scheme -> the `hwsim.Precision` preset they use.
FIXED_PRESETS = {"fixed16-sr": "fixed16", "fixed8-sr": "fixed8"}


@dataclasses.dataclass(frozen=True)
class FixedPoint(Scheme):
    """The per-role fixed-point policy of ``hwsim.Precision`` as a named scheme.

    ``preset`` is a ``--precision`` preset (``fp32``, ``fixed16``, ``fixed8``, ``fixed4``); each
    role string (``weight="s8.6"``, ``update="s16.14:stochastic"`` ...) refines it. Presets of
    the scheme: ``fixed16-sr`` = 16-bit fixed point in every role, 32-bit accumulator,
    stochastic rounding of gradients and updates; ``fixed8-sr`` = 8-bit weights (s8.7) and
    activations (s8.4), 16-bit stochastic updates. Quantization points: Algorithm 1 of
    Courbariaux et al. 2015; stochastic rounding of the update: Gupta et al. 2015.
    """

    name = "fixed"
    paper = ("Gupta, Agrawal, Gopalakrishnan, Narayanan 2015, Deep learning with limited numerical "
             "precision (ICML), arXiv:1502.02551; Courbariaux, Bengio, David 2015, arXiv:1412.7024")
    preset: str = "fixed16"
    weight: str | None = None
    activation: str | None = None
    error: str | None = None
    grad: str | None = None
    update: str | None = None
    acc: str | None = None
    batchnorm: bool = False

    def __post_init__(self) -> None:
        self.precision()      # validates the preset and every role string

    def precision(self, seed: int = 0) -> Precision:
        return Precision.from_flags(self.preset, seed=seed, **{r: getattr(self, r) for r in ROLES})


@dataclasses.dataclass(frozen=True)
class Float32(Scheme):
    """The float32 baseline (no quantization), optionally with the schemes' batch norm."""

    name = "fp32"
    paper = "baseline"

    def precision(self, seed: int = 0) -> Precision:
        return Precision(seed=seed)

