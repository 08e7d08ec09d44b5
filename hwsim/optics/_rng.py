"""Counter-based random draws for the optical noise: a function of (seed, stream, element index) only.

The rule is fixedpoint's counter generator (the one its stochastic rounding and hwsim's dropout masks
use; fixedpoint exposes no public draw function, so the rule is restated here): the 64 random bits of
element ``i`` are ``mix64(seed_key(seed) + (i + 1) * GOLDEN)`` (all arithmetic mod 2**64), ``mix64`` the
SplitMix64 finaliser with Stafford's "variant 13" constants, ``seed_key = mix64``, ``GOLDEN =
0x9E3779B97F4A7C15``. Uniforms take the top 53 bits. Each noise source of one call draws from its own
stream, ``stream_seed(seed, stream)``, so adding a source never shifts another's draws.

Poisson counts are the exact inverse CDF of the uniform (``scipy.special.pdtrik`` then a one-step
correction), Gaussians the inverse normal CDF (``scipy.special.ndtri``) of the uniform shifted to the
open interval — deterministic functions of the uniforms, so any chunking gives the same draws.
"""
from __future__ import annotations

import numpy as np
from scipy import special

GOLDEN = 0x9E3779B97F4A7C15
_MIX_1 = 0xBF58476D1CE4E5B9
_MIX_2 = 0x94D049BB133111EB
_MASK64 = (1 << 64) - 1

#: Stream numbers of the noise sources (part of the reproducibility contract).
STREAM_SHOT, STREAM_READ, STREAM_SHOT_MINUS, STREAM_READ_MINUS = 1, 2, 3, 4


def seed_key(seed: int) -> int:
    """SplitMix64 finaliser of ``seed mod 2**64`` (fixedpoint's stream key)."""
    z = int(seed) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX_1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX_2) & _MASK64
    return z ^ (z >> 31)


def derive_seed(*parts: int) -> int:
    """One 64-bit seed from integers (order matters): ``seed_key`` folded over the parts."""
    z = 0
    for p in parts:
        z = seed_key((z + (int(p) & _MASK64) * GOLDEN + 1) & _MASK64)
    return z


def stream_seed(seed: int, stream: int) -> int:
    """The seed of noise source ``stream`` within a call seeded ``seed``."""
    return seed_key((seed_key(seed) + int(stream) * GOLDEN) & _MASK64)


def random_bits(seed: int, n: int) -> np.ndarray:
    """The 64-bit draws of counters ``0 .. n-1`` for ``seed`` (uint64)."""
    key = np.uint64(seed_key(seed))
    z = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = key + z * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX_1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX_2)
        return z ^ (z >> np.uint64(31))


def uniforms(seed: int, n: int) -> np.ndarray:
    """Uniform float64 draws in [0, 1) (53 bits each), element ``i`` from counter ``i``."""
    return (random_bits(seed, n) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def poisson(mean: np.ndarray, seed: int) -> np.ndarray:
    """Poisson counts with the given means (float64 array of mean's shape), by inverse CDF."""
    lam = np.asarray(mean, dtype=np.float64)
    if np.any(lam < 0) or not np.all(np.isfinite(lam)):
        raise ValueError("poisson: means must be finite and >= 0")
    u = uniforms(seed, lam.size).reshape(lam.shape)
    k = np.ceil(special.pdtrik(u, lam))
    k = np.where(np.isnan(k), 0.0, np.maximum(k, 0.0))
    below = np.maximum(k - 1.0, 0.0)
    k = np.where((k > 0) & (special.pdtr(below, lam) >= u), below, k)
    return np.where(lam == 0, 0.0, k)


def normal(shape: tuple, seed: int) -> np.ndarray:
    """Standard normal draws (float64), inverse CDF of uniforms shifted by half a step into (0, 1)."""
    n = int(np.prod(shape, dtype=np.int64))
    u = uniforms(seed, n) + 2.0 ** -54
    return special.ndtri(u).reshape(shape)
