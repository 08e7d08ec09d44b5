"""The counter-based random generator of fixedpoint, public: what stochastic rounding draws, for any
caller that needs reproducible random numbers with the same rule (hwsim's dropout masks and noise).

Element ``i`` of a draw with ``(seed, offset)`` gets 64 bits

    bits = mix64(mix64(seed mod 2**64) + (offset + i + 1) * GOLDEN)        (arithmetic mod 2**64)

(``mix64`` the SplitMix64 finaliser, ``GOLDEN = 0x9E3779B97F4A7C15``): output number ``offset + i``
of a SplitMix64 stream keyed by ``seed``. Results depend on ``(seed, offset + i)`` alone, never on
chunking, threads or backend. Uniforms are the top 53 bits times 2**-53, in [0, 1).
"""
from ._counter_rng import (
                           DEFAULT_SR_BITS,
                           GOLDEN,
                           MASK64,
                           draw_seed,
                           random_bits,
                           random_ints,
                           seed_key,
                           uniforms,
)
from ._counter_rng import mix64_numpy as mix64

__all__ = ["DEFAULT_SR_BITS", "GOLDEN", "MASK64", "draw_seed", "mix64", "random_bits", "random_ints",
           "seed_key", "uniforms"]
