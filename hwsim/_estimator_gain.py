"""The seed's FLOP model of the activation estimator (001 §3.1.4, eqs. 3.6–3.9).

Per layer (input width d, output width h, batch N, estimator rank k, active fraction α):
``F_nn = N(2d − 1)h + Nh`` (3.6) and ``F_ae = N(2d − 1)k + N(2k − 1)h + Nh + α(N(2d − 1)h + Nh)``
(3.7, with the seed's stray factor h in the last term dropped, as its simplification 3.8 implies),
so ``γ = F_nn / F_ae = 2dh / (k(2d + 2h − 1) + 2αdh)`` (3.8); for a network
``γ_NN = Σ F_nn / Σ F_ae`` (3.9), a layer without an estimator (the output layer) counting
``F_ae = F_nn``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["estimator_flops", "estimator_gain", "estimator_gain_nn"]


def _check(d: int, h: int, k: int | None, alpha: float) -> None:
    for name, v in (("d", d), ("h", h)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be an integer >= 1 (or None for a layer without estimator), got {k!r}")
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")


def estimator_flops(d: int, h: int, k: int | None, alpha: float, n: int = 1) -> tuple[float, float]:
    """``(F_nn, F_ae)`` of one layer for ``n`` examples (eqs. 3.6, 3.7; ``k=None``: no estimator,
    ``F_ae = F_nn``)."""
    _check(d, h, k, alpha)
    f_nn = n * (2 * d - 1) * h + n * h
    if k is None:
        return float(f_nn), float(f_nn)
    f_ae = n * (2 * d - 1) * k + n * (2 * k - 1) * h + n * h + alpha * f_nn
    return float(f_nn), float(f_ae)


def estimator_gain(d: int, h: int, k: int, alpha: float) -> float:
    """γ of eq. 3.8: the FLOP reduction of one estimated layer, ``2dh / (k(2d + 2h − 1) + 2αdh)``.

    >>> round(estimator_gain(784, 1000, 50, 0.5), 2)
    1.63
    """
    _check(d, h, k, alpha)
    den = k * (2 * d + 2 * h - 1) + 2 * alpha * d * h
    return 2 * d * h / den if den else math.inf


def estimator_gain_nn(layers: Iterable[tuple[int, int, int | None, float]]) -> float:
    """γ_NN of eq. 3.9 for layers given as ``(d, h, k, alpha)`` (``k=None`` for a layer without an
    estimator, e.g. the output layer)."""
    sums = [estimator_flops(*layer) for layer in layers]
    if not sums:
        raise ValueError("estimator_gain_nn needs at least one layer")
    return sum(f for f, _ in sums) / sum(f for _, f in sums)
