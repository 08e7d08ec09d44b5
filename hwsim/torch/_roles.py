"""Role arguments as hwsim understands them: CLI strings, Quantizers, Precisions, presets, schemes.

A scheme name (``"bnn"``, ``"binaryconnect"`` ...) gives the scheme's policy; the layer changes a
scheme's own models make (batch norm after each layer, sign activations) are the model's to have.
"""
from __future__ import annotations

from typing import Any

from .._precision import PRESETS, Precision, Quantizer, parse_quantizer, role_base, step_seed


def role_quantizer(value: Any, what: str) -> Quantizer | None:
    """None, a role string (``"s16.14:stochastic"``, ``"binary"``, ``"fp32"``) or a Quantizer
    (`hwsim.RoleFormat`, a scheme's quantizer) -> the Quantizer (None = float)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_quantizer(value)
        except ValueError as e:
            raise ValueError(f"{what}: {e}") from None
    if isinstance(value, Quantizer):
        return value
    raise TypeError(f"{what} must be a role string like 's8.4:stochastic' or a hwsim Quantizer, got "
                    f"{value!r}")


def as_precision(precision: Any, seed: int | None, roles: dict) -> Precision:
    """A `Precision` from a Precision, a preset name (``"fixed8"``), a scheme name (``"bnn"``,
    ``"binaryconnect"``) or None (fp32), refined by CLI role strings (``weight="s8.7"``)."""
    if isinstance(precision, Precision):
        if roles:
            raise ValueError("pass role strings with a preset name, not beside a Precision object")
        return precision if seed is None else Precision.from_dict({**precision.to_dict(), "seed": seed})
    seed = 0 if seed is None else seed
    if precision is None or precision in PRESETS:
        return Precision.from_flags(precision, seed=seed, **roles)
    if isinstance(precision, str):
        from ..schemes import parse_scheme, scheme_names

        if precision.partition(":")[0] in scheme_names():
            if roles:
                raise ValueError(f"scheme {precision!r} sets the whole policy: drop the role strings")
            return parse_scheme(precision).precision(seed)
        raise ValueError(f"precision {precision!r}: expected a hwsim.Precision, a preset "
                         f"({', '.join(PRESETS)}) or a scheme ({', '.join(scheme_names())})")
    raise TypeError(f"precision must be a hwsim.Precision or a name, got {precision!r}")


def stream_seed(seed: int, index: int, role: str, slot: int, step: int) -> int:
    """hwsim's seed of (policy seed, layer index, role, slot) at training step ``step``."""
    return step_seed(role_base(seed, index, role, slot), step)

