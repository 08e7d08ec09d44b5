"""Rounding and overflow modes: one enum each, the single source of their names, codes and facts.

A mode's integer value is the code every kernel receives; its lower-case name is the string the
public API accepts (``quantize(..., rounding="nearest_even")``). Each `Rounding` member also
carries the facts that the dispatchers derive from (``random``, ``direction``); every dispatcher
has one explicit branch per member and raises ValueError on anything else, and
``tests/fixedpoint/test_modes.py`` calls each one with every member.

Adding a rounding mode: a member here (code, facts), then a branch in each dispatcher:
``_fixed_scalar.round_scaled``, ``_fixed_oracle.round_scaled``, ``_fixed_numba._fused_block``,
``_shift_round.shift_round`` / ``round_shift_scalar`` / ``bias_terms``,
``_float_oracle.reference_float_quantize``, ``_float_kernels.float_round_scalar`` /
``float_quantize_cpu``, ``testing.round_fraction`` (deterministic modes); the test names them all.
"""
from __future__ import annotations

import enum


class Rounding(enum.IntEnum):
    """Rounding of the exact value ``x * 2**frac`` (fixed) or of the significand (float).

    Facts per member: ``random``: the result depends on a draw of the counter RNG (the call needs
    a seed); ``direction``: for IEEE 754's directed modes the way they round, ``0`` toward zero,
    ``-1`` toward -inf, ``+1`` toward +inf; ``None`` for the others (nearest, stochastic).
    """

    #              code  random  direction
    NEAREST_EVEN = 0, False, None
    NEAREST_AWAY = 1, False, None
    TOWARD_ZERO = 2, False, 0
    FLOOR = 3, False, -1
    CEIL = 4, False, +1
    STOCHASTIC = 5, True, None

    random: bool
    direction: int | None

    def __new__(cls, code: int, random: bool, direction: int | None) -> Rounding:
        member = int.__new__(cls, code)
        member._value_ = code
        member.random = random
        member.direction = direction
        return member

    @property
    def directed(self) -> bool:
        """One of IEEE 754's directed roundings (toward zero, -inf or +inf)."""
        return self.direction is not None

    def max_on_overflow(self, negative: bool) -> bool:
        """Whether an overflow of a value of this sign goes to the largest finite value, not to
        infinity, under IEEE 754 overflow (7.4): true exactly for a directed mode that rounds that
        sign toward zero (toward zero; floor for ``x > 0``; ceil for ``x < 0``)."""
        return self.directed and self.direction in (0, 1 if negative else -1)

    @classmethod
    def named(cls, name: str) -> Rounding:
        """The member of a public (lower-case) name; ValueError for any other value."""
        member = _ROUNDING_BY_NAME.get(name) if isinstance(name, str) else None
        if member is None:
            raise ValueError(f"rounding: unknown mode {name!r}")
        return member


class Overflow(enum.IntEnum):
    """What a value beyond the format's range becomes (``wrap``: fixed only; ``inf``/``nan``: float only)."""

    SATURATE = 0
    WRAP = 1
    INF = 2
    NAN = 3


def mode_names(modes: "tuple[enum.IntEnum, ...]") -> tuple[str, ...]:
    """The public (lower-case) names of ``modes``, in their order."""
    return tuple(m.name.lower() for m in modes)


_ROUNDING_BY_NAME = {m.name.lower(): m for m in Rounding}
