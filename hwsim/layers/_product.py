"""Dot products at a layer's precision: ``fast`` (float BLAS) or ``exact`` (``fixedpoint.matmul``)."""
from __future__ import annotations

import fixedpoint as fxp

from .._precision import RoleFormat, role_base, step_seed
from .._xp import get_array_module


def _fixed(q) -> bool:
    return isinstance(q, RoleFormat) and q.kind == "fixed"


def product(layer, a, b, a_role: str, b_role: str):
    """``a @ b`` for operands already on the grids of ``a_role`` / ``b_role``.

    ``mode="fast"``: a float matmul in the operands' dtype (float32 BLAS by default).
    ``mode="exact"`` with Fixed formats for both roles: ``fixedpoint.matmul`` accumulating in the
    ``acc`` format (``acc_overflow="wrap"``; exact products, aligned to ``acc.frac`` with the acc
    rounding when it is coarser — stochastic seeds by the rule of ``hwsim._precision`` with role
    "acc", slot 3), returned as float64 values on the acc grid (the caller quantizes them); on
    CuPy operands it runs on the GPU (the same bits).
    Otherwise (a role float, e.g. float errors in exact mode) the float matmul: ``layer.matmul(a, b)``
    when the layer has one (hwsim.torch sets torch's GEMM on zero-copy views), else ``a @ b``.
    """
    p = layer.precision
    if p.mode == "exact":
        qa, qb = getattr(p, a_role), getattr(p, b_role)
        if _fixed(qa) and _fixed(qb):
            seed = step_seed(role_base(p.seed, layer.index, "acc", 3), layer.step)
            s = fxp.matmul(a, b, acc=p.acc.fmt, out=p.acc.fmt, rounding=p.acc.rounding,
                           acc_overflow="wrap", seed=seed, a_fmt=qa.fmt, b_fmt=qb.fmt)
            return get_array_module(a).asarray(s.to_float())
    matmul = getattr(layer, "matmul", None)
    return a @ b if matmul is None else matmul(a, b)
