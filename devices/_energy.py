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

Technology scaling (:func:`tech_energy_scale`): the Horowitz anchors (and on-chip memory energies
marked ``scale_energy``) are multiplied by E(node, Vdd) / E(45 nm, 0.9 V), with E the per-node
quadratic fits in Vdd of A. Stillmaker, B. Baas, "Scaling equations for the accurate prediction of
CMOS device performance from 180 nm to 7 nm", Integration 58 (2017) 74-81,
doi:10.1016/j.vlsi.2017.02.002, in the coefficient table and interpolation of Accelergy's
``hwcomponents`` (repository Accelergy-Project/hwcomponents, file hwcomponents/scaling/techscaling.py,
commit 72639d902bd9ef98a1a9062e537403aad9618cac, ``tech_node_energy``): linear interpolation
between the tabulated nodes, and outside 7..130 nm an extra factor sqrt(node / nearest tabulated node).
A profile gives ``process_nm`` and ``voltage_v`` (defaults 45 and 0.9: factor 1), may fix the factor
with ``energy_scale``, and its own ``[energy_pj]`` anchors are used unscaled.
"""
from __future__ import annotations

import math

#: Horowitz, ISSCC 2014, Figure 1.1.9 (45 nm, 0.9 V), pJ per operation
HOROWITZ_PJ = {
    "int8_add": 0.03, "int32_add": 0.1, "int8_mul": 0.2, "int32_mul": 3.1,
    "fp16_add": 0.4, "fp16_mul": 1.1, "fp32_add": 0.9, "fp32_mul": 3.7,
}


#: Stillmaker & Baas 2017 nodes (nm) and energy coefficients (a, b, c): E ∝ a·Vdd² + b·Vdd + c
#: (as tabulated in Accelergy hwcomponents techscaling.py, see the module docstring)
TECH_NODES_NM = (130, 90, 65, 45, 32, 20, 16, 14, 10, 7)
TECH_ENERGY_COEFFS = (
    (7.171, -6.709, 2.904), (4.762, -4.781, 2.092), (3.755, -4.398, 1.975), (1.103, -0.362, 0.2767),
    (0.9559, -0.7823, 0.471), (0.373, -0.1582, 0.04104), (0.2958, -0.1241, 0.03024),
    (0.2363, -0.09675, 0.02239), (0.2068, -0.09311, 0.02375), (0.1776, -0.09097, 0.02447),
)
#: node and supply voltage of the Horowitz anchors
ANCHOR_NM, ANCHOR_V = 45.0, 0.9


def _tech_energy(node_nm: float, vdd: float) -> float:
    """Relative switching energy at ``node_nm`` and ``vdd`` volts (Stillmaker & Baas fits)."""
    extra = 1.0
    lo, hi = TECH_NODES_NM[-1], TECH_NODES_NM[0]
    if node_nm < lo or node_nm > hi:
        edge = lo if node_nm < lo else hi
        extra, node_nm = math.sqrt(node_nm / edge), edge
    for i in range(len(TECH_NODES_NM) - 1):
        big, small = TECH_NODES_NM[i], TECH_NODES_NM[i + 1]
        if small <= node_nm <= big:
            t = (big - node_nm) / (big - small)
            e = [sum(c * vdd ** (2 - j) for j, c in enumerate(TECH_ENERGY_COEFFS[k])) for k in (i, i + 1)]
            return extra * (e[0] * (1 - t) + e[1] * t)
    raise AssertionError("unreachable: node inside the table")


def tech_energy_scale(node_nm: float, vdd: float) -> float:
    """Factor from the 45 nm / 0.9 V anchors to a chip at ``node_nm`` nm and ``vdd`` V."""
    if not (node_nm > 0 and vdd > 0):
        raise ValueError(f"process node and voltage must be > 0, got {node_nm} nm, {vdd} V")
    return _tech_energy(node_nm, vdd) / _tech_energy(ANCHOR_NM, ANCHOR_V)


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

    def __init__(self, overrides: dict[str, float] | None = None, scale: float = 1.0) -> None:
        """``scale`` multiplies the Horowitz anchors (technology scaling); ``overrides`` are used as given."""
        self.scale = scale
        self.anchors = {**{k: v * scale for k, v in HOROWITZ_PJ.items()}, **(overrides or {})}
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
