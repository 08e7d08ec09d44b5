"""Counter-based random draws for the optical noise: a function of (seed, stream, element index) only.

Uniforms come from ``fixedpoint.rng`` (the rule of fixedpoint's stochastic rounding and hwsim's
dropout masks: element ``i`` of ``seed`` is output ``i`` of a SplitMix64 stream keyed by
``seed_key(seed)``). Each noise source of one call draws from its own stream, ``stream_seed(seed,
stream)``, so adding a source never shifts another's draws.

Poisson counts: the inverse CDF of a uniform for small means, Hörmann's PTRS rejection sampler for
means >= 10 (see `poisson`; a compiled loop restating the SplitMix64 step so that it runs per
element); Gaussians the inverse normal CDF (``scipy.special.ndtri``) of the uniform shifted to the
open interval. Draw ``i`` is a function of ``(seed, i)`` alone, so any chunking gives the same draws.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import special

from fixedpoint.rng import GOLDEN, MASK64, seed_key, uniforms

# SplitMix64 finaliser constants (Stafford's "variant 13"), as fixedpoint.rng
_MIX_1 = 0xBF58476D1CE4E5B9
_MIX_2 = 0x94D049BB133111EB

#: Stream numbers of the noise sources (part of the reproducibility contract).
STREAM_SHOT, STREAM_READ = 1, 2
#: Poisson means below this use the inverse CDF, at or above it PTRS (see `poisson`).
PTRS_MIN_MEAN = 10.0


def derive_seed(*parts: int) -> int:
    """One 64-bit seed from integers (order matters): ``seed_key`` folded over the parts."""
    z = 0
    for p in parts:
        z = seed_key((z + (int(p) & MASK64) * GOLDEN + 1) & MASK64)
    return z


def stream_seed(seed: int, stream: int) -> int:
    """The seed of noise source ``stream`` within a call seeded ``seed``."""
    return seed_key((seed_key(seed) + int(stream) * GOLDEN) & MASK64)


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX_1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX_2)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _uniform(key, i):
    """Uniform of counter ``i`` for the stream whose key (``seed_key`` of its seed) is ``key``."""
    return float(_mix(key + (np.uint64(i) + np.uint64(1)) * np.uint64(GOLDEN)) >> np.uint64(11)) * 2.0 ** -53


@njit(cache=True)
def _poisson_kernel(lam, key0, out):
    """``out[i]`` ~ Poisson(``lam[i]``) from counter ``i`` (see `poisson`); ``key0 = seed_key(seed)``."""
    for i in range(lam.size):
        mu = lam[i]
        if mu <= 0.0:
            out[i] = 0.0
            continue
        if mu < PTRS_MIN_MEAN:
            u = _uniform(key0, i)
            p = math.exp(-mu)
            c = p
            k = 0.0
            while u > c and p > 0.0:
                k += 1.0
                p *= mu / k
                c += p
            out[i] = k
            continue
        slam, loglam = math.sqrt(mu), math.log(mu)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2.0)
        j = 0
        while True:
            key_u = _mix(_mix(key0 + np.uint64(2 * j + 1) * np.uint64(GOLDEN)))
            key_v = _mix(_mix(key0 + np.uint64(2 * j + 2) * np.uint64(GOLDEN)))
            j += 1
            uu = _uniform(key_u, i) - 0.5
            v = _uniform(key_v, i)
            us = 0.5 - abs(uu)
            if us <= 0.0:
                continue
            k = math.floor((2.0 * a / us + b) * uu + mu + 0.43)
            if us >= 0.07 and v <= vr:
                break
            if k < 0.0 or (us < 0.013 and v > us):
                continue
            if v > 0.0 and (math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b)
                            <= -mu + k * loglam - math.lgamma(k + 1.0)):
                break
        out[i] = k


def poisson(mean: np.ndarray, seed: int) -> np.ndarray:
    """Poisson counts with the given means (float64 array of mean's shape); a compiled loop.

    Mean 0: 0. Means below `PTRS_MIN_MEAN`: the inverse CDF (pmf recurrence) of the uniform of
    counter ``i``. Larger means: Hörmann's transformed rejection with squeeze (PTRS, 1993; numpy's
    algorithm), attempt ``j`` taking counter ``i`` of streams ``2j + 1`` and ``2j + 2``
    (`stream_seed`). Draw ``i`` depends on ``(seed, i)`` and its own mean only."""
    lam = np.ascontiguousarray(mean, dtype=np.float64)
    if np.any(lam < 0) or not np.all(np.isfinite(lam)):
        raise ValueError("poisson: means must be finite and >= 0")
    out = np.empty(lam.size)
    _poisson_kernel(lam.ravel(), np.uint64(seed_key(seed)), out)
    return out.reshape(lam.shape)


def normal(shape: tuple, seed: int) -> np.ndarray:
    """Standard normal draws (float64), inverse CDF of uniforms shifted by half a step into (0, 1)."""
    n = int(np.prod(shape, dtype=np.int64))
    u = uniforms(seed, 0, n) + 2.0 ** -54
    return special.ndtri(u).reshape(shape)
