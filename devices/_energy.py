"""Energy per arithmetic operation (pJ) from anchors and scaling rules.

Anchors (``HOROWITZ_PJ``): M. Horowitz, "Computing's energy problem (and what we can do about it)",
IEEE ISSCC 2014, Digest of Technical Papers, pp. 10-14, doi:10.1109/ISSCC.2014.6757323, Figure 1.1.9
("rough energy costs for various operations", 45 nm, 0.9 V): integer add 8b / 32b 0.03 / 0.1 pJ,
integer mult 8b / 32b 0.2 / 3.1 pJ, FP add 16b / 32b 0.4 / 0.9 pJ, FP mult 16b / 32b 1.1 / 3.7 pJ.
A profile's ``[energy_pj]`` table overrides or adds anchors (keys ``int8_add``, ``fp32_mul``,
``int8_mac`` ...).

Scaling outside the anchored range: adders ∝ bits and multipliers ∝ bits², each through zero from
the nearest anchor; a MAC without a ``mac`` anchor is mul + add. These are the rules of Accelergy's
Aladdin-table plug-in (Accelergy: Y. N. Wu, J. S. Emer, V. Sze, "Accelergy: An Architecture-Level
Energy Estimation Methodology for Accelerator Designs", IEEE/ACM ICCAD 2019; plug-in
``accelergy-aladdin-plug-in``, file ``aladdin_table.py``: ``intadder`` / ``fpadder`` linear and
``intmultiplier`` / ``fpmultiplier`` quadratic in datawidth from its 32-bit (FP: 32 / 64-bit) table
entry, ``intmac`` / ``fpmac`` = adder + multiplier). The plug-in's tables (``data/*.csv``) hold the
40 nm functional-unit characterisation of Aladdin (Y. S. Shao, B. Reagen, G.-Y. Wei, D. Brooks,
"Aladdin: A Pre-RTL, Power-Performance Accelerator Simulator Enabling Large Design Space Exploration
of Customized Architectures", ISCA 2014, pp. 97-108, doi:10.1109/ISCA.2014.6853196). Only the
scaling rules are taken from the plug-in's code, no Aladdin energy (its 40 nm 32-bit adder costs
0.21 pJ at a 1 ns cycle, 0.086 pJ at 5 ns, in data/adder.csv).

Estimates (no source, this module's choices): linear interpolation in bits between two anchors of
one series; a ``mac`` anchor series scaled ∝ bits²; unequal multiplier operands costed at the
geometric mean sqrt(a_bits·b_bits), i.e. ∝ a_bits·b_bits; the binary (XNOR-popcount) and shift
MACs below. The result never decreases when bits grow.
"""
from __future__ import annotations

import math

#: Horowitz, ISSCC 2014, Figure 1.1.9 (45 nm, 0.9 V), pJ per operation
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
