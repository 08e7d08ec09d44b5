"""Counter-based random bits for stochastic rounding (no global state).

The 64 random bits for element ``i`` of a call (flat C-order index) are

    key   = mix64(seed mod 2**64)
    bits  = mix64(key + (offset + i + 1) * GOLDEN)        (all arithmetic mod 2**64)

where ``mix64`` is the SplitMix64 finaliser (Steele, Lea, Flood 2014; constants of
Stafford's "variant 13") and ``GOLDEN = 0x9E3779B97F4A7C15``. In other words the
value is output number ``offset + i`` of a SplitMix64 stream started at ``key``.
The result depends only on ``(seed, offset + i)``, so it is identical for any
chunking, thread count or backend: a call on ``x[:n]`` with ``offset=0`` followed by
``x[n:]`` with ``offset=n`` gives the same bits as one call on ``x``.

Uniforms: the top 53 bits, ``u = (bits >> 11) * 2**-53`` in [0, 1). With ``k`` random
bits (hardware emulation, ``sr_bits=k``) the draw is the integer ``bits >> (64 - k)``.

``scalar_bits`` is written with plain integer operations only so that the same body
compiles as a Numba CPU function and as a Numba CUDA device function.
"""
from __future__ import annotations

import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
MIX_1 = 0xBF58476D1CE4E5B9
MIX_2 = 0x94D049BB133111EB
MASK64 = (1 << 64) - 1
#: Number of random bits compared against the fraction when ``sr_bits`` is None.
DEFAULT_SR_BITS = 53


def mix64_numpy(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX_1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX_2)
        return z ^ (z >> np.uint64(31))


def seed_key(seed: int) -> int:
    """The stream key for ``seed`` (any Python int; reduced mod 2**64)."""
    z = int(seed) & MASK64
    z = ((z ^ (z >> 30)) * MIX_1) & MASK64
    z = ((z ^ (z >> 27)) * MIX_2) & MASK64
    return z ^ (z >> 31)


def random_bits(seed: int, offset: int, n: int) -> np.ndarray:
    """The 64-bit draws for counters ``offset .. offset + n - 1`` (uint64 array)."""
    key = np.uint64(seed_key(seed))
    counters = np.arange(n, dtype=np.uint64) + np.uint64((int(offset) + 1) & MASK64)
    with np.errstate(over="ignore"):
        return mix64_numpy(key + counters * np.uint64(GOLDEN))


def random_ints(seed: int, offset: int, n: int, k: int) -> np.ndarray:
    """``k``-bit random integers (0 <= r < 2**k, 1 <= k <= 63) as int64."""
    return (random_bits(seed, offset, n) >> np.uint64(64 - k)).astype(np.int64)


def uniforms(seed: int, offset: int, n: int) -> np.ndarray:
    """Uniform float64 draws in [0, 1) with 53 random bits each."""
    return (random_bits(seed, offset, n) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def draw_seed() -> int:
    """A fresh seed from the OS entropy pool (for ``seed=None``; record it to replay)."""
    return int(np.random.SeedSequence().entropy) & MASK64


def scalar_bits(key, counter):
    """64 random bits for one element; ``key`` and ``counter`` are uint64 scalars.

    ``counter`` is ``offset + i + 1``. Compiles under ``numba.njit`` and ``numba.cuda.jit``.
    """
    z = key + counter * np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX_1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX_2)
    return z ^ (z >> np.uint64(31))


def scalar_mix64(z):
    """The SplitMix64 finaliser of one uint64 scalar: ``scalar_bits(key, c)`` is
    ``scalar_mix64(key + c * GOLDEN)`` (for loops that step ``z`` by GOLDEN instead of multiplying)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX_1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX_2)
    return z ^ (z >> np.uint64(31))
