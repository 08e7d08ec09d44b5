"""Energy per arithmetic operation (pJ) from anchors and scaling rules.

Anchors default to Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm); a profile's
``[energy_pj]`` table overrides or adds anchors (keys ``int8_add``, ``fp32_mul``, ``int8_mac`` ...).
Between two anchors of one series the energy is interpolated linearly in bits; outside the anchored
range adders scale ∝ bits and multipliers / MACs ∝ bits² (for unequal operands ∝ a_bits·b_bits), the
rules used by Accelergy's Aladdin tables. The result never decreases when bits grow.
"""
from __future__ import annotations

import math

#: Horowitz ISSCC 2014, 45 nm, pJ per operation
HOROWITZ_PJ = {
    "int8_add": 0.03, "int32_add": 0.1, "int8_mul": 0.2, "int32_mul": 3.1,
    "fp16_add": 0.4, "fp16_mul": 1.1, "fp32_add": 0.9, "fp32_mul": 3.7,
}


def _series(anchors: dict[str, float], number: str, op: str) -> list[tuple[int, float]]:
    pts = []
    for key, e in anchors.items():
        head, kind = key.split("_")
        if kind == op and head.startswith(number) and head[len(number):].isdigit():
            pts.append((int(head[len(number):]), e))
    return sorted(pts)


def _scaled(pts: list[tuple[int, float]], bits: float, power: int) -> float:
    lo_b, lo_e = pts[0]
    hi_b, hi_e = pts[-1]
    if bits <= lo_b:
        return lo_e * (bits / lo_b) ** power
    if bits >= hi_b:
        return hi_e * (bits / hi_b) ** power
    for (b0, e0), (b1, e1) in zip(pts, pts[1:]):
        if b0 <= bits <= b1:
            return e0 + (e1 - e0) * (bits - b0) / (b1 - b0)
    raise AssertionError("unreachable: bits inside the anchored range")


class EnergyTable:
    """pJ per add / mul / mac for ``number`` = "int" or "fp" at given bit widths."""

    def __init__(self, overrides: dict[str, float] | None = None) -> None:
        self.anchors = {**HOROWITZ_PJ, **(overrides or {})}
        self._memo: dict[tuple[str, str], list[tuple[int, float]]] = {}

    def _pts(self, number: str, op: str) -> list[tuple[int, float]]:
        """The anchor series of ``number`` / ``op``, parsed from the keys once per table."""
        key = (number, op)
        if key not in self._memo:
            self._memo[key] = _series(self.anchors, number, op)
        return self._memo[key]

    def add(self, number: str, bits: float) -> float:
        return _scaled(self._pts(number, "add"), bits, 1)

    def mul(self, number: str, a_bits: float, b_bits: float) -> float:
        return _scaled(self._pts(number, "mul"), math.sqrt(a_bits * b_bits), 2)

    def mac(self, number: str, a_bits: float, b_bits: float, acc_bits: float) -> float:
        """A multiply-accumulate: a ``<number><bits>_mac`` anchor series if the profile gives one,
        else mul(a, b) + add(acc)."""
        pts = self._pts(number, "mac")
        if pts:
            return _scaled(pts, math.sqrt(a_bits * b_bits), 2)
        return self.mul(number, a_bits, b_bits) + self.add(number, acc_bits)

    def binary_mac(self) -> float:
        """XNOR-popcount MAC on 1-bit operands: an XNOR plus a 1-bit popcount add, costed as two
        1-bit integer adds (scaling rule, an estimate)."""
        return 2 * self.add("int", 1)

    def shift_mac(self, a_bits: float, acc_bits: float) -> float:
        """Power-of-two weight: the multiply is a barrel shift of ``a_bits``, costed like an add of
        ``a_bits`` (estimate), plus the accumulate at ``acc_bits``."""
        return self.add("int", a_bits) + self.add("int", acc_bits)
