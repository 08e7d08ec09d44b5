"""Rounding and overflow modes: one enum each, the single source of their names and codes.

A mode's integer value is the code every kernel receives; its lower-case name is the string the
public API accepts (``quantize(..., rounding="nearest_even")``).
"""
from __future__ import annotations

import enum


class Rounding(enum.IntEnum):
    """Rounding of the exact value ``x * 2**frac`` (fixed) or of the significand (float)."""

    NEAREST_EVEN = 0
    NEAREST_AWAY = 1
    TOWARD_ZERO = 2
    FLOOR = 3
    CEIL = 4
    STOCHASTIC = 5


class Overflow(enum.IntEnum):
    """What a value beyond the format's range becomes (``wrap``: fixed only; ``inf``/``nan``: float only)."""

    SATURATE = 0
    WRAP = 1
    INF = 2
    NAN = 3


def mode_names(modes: "tuple[enum.IntEnum, ...]") -> tuple[str, ...]:
    """The public (lower-case) names of ``modes``, in their order."""
    return tuple(m.name.lower() for m in modes)
