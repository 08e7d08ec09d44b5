"""``QuantStats``: what a hardware designer checks first after quantizing.

Pass one object as ``stats=`` to any number of ``quantize``/``to_raw`` calls: the counts add up,
the maximum error is the maximum over all calls, and ``seed`` is the last stochastic seed used
(drawn for ``seed=None``), so a run can be replayed. Every backend fills it identically: counts and
the maximum are order-free, and the error sum has one fixed order (`block_sums`): fixed blocks of
:data:`BLOCK` elements (flat C order), each summed in :data:`LANES` interleaved lanes (element
``i`` of a block goes to lane ``i mod LANES``; each lane adds its elements in order; the lane sums
are then added in lane order), and the block sums added exactly (``math.fsum``). The lanes let the
CPU kernel keep eight independent additions in flight instead of one chain.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ._validate import is_cupy_array

#: Elements per block of the deterministic error sum (shared by all backends).
BLOCK = 8192
#: Interleaved partial sums per block (element i of a block is added to lane i mod LANES).
LANES = 8


@dataclass
class QuantStats:
    """Counts and errors accumulated over quantize calls.

    ``n``: elements seen; ``nan``: NaN inputs (mapped to 0 with ``nan="zero"``; excluded from the
    errors); ``saturated``/``wrapped``: elements whose rounded value lay outside the raw range;
    ``flushed_to_zero``: nonzero inputs that became 0; ``max_abs_error``/``sum_abs_error``:
    ``|result - x|`` in float64 (input units); ``seed``: the last stochastic seed used.
    """

    n: int = 0
    nan: int = 0
    saturated: int = 0
    wrapped: int = 0
    flushed_to_zero: int = 0
    max_abs_error: float = 0.0
    sum_abs_error: float = 0.0
    seed: Optional[int] = None

    @property
    def mean_abs_error(self) -> float:
        """Mean ``|result - x|`` over the non-NaN elements (NaN when there are none)."""
        counted = self.n - self.nan
        return self.sum_abs_error / counted if counted else math.nan

    def _fraction(self, count: int) -> float:
        return count / self.n if self.n else 0.0

    @property
    def fraction_saturated(self) -> float:
        """Share of elements that saturated."""
        return self._fraction(self.saturated)

    @property
    def fraction_wrapped(self) -> float:
        """Share of elements that wrapped around."""
        return self._fraction(self.wrapped)

    @property
    def fraction_flushed_to_zero(self) -> float:
        """Share of elements that were nonzero and became zero."""
        return self._fraction(self.flushed_to_zero)

    def merge(self, other: QuantStats) -> QuantStats:
        """A new object holding both; ``seed`` is ``other.seed`` when set."""
        out = QuantStats(**self.__dict__)
        out.add(other.n, other.nan, other.saturated, other.wrapped, other.flushed_to_zero,
                other.max_abs_error, other.sum_abs_error, other.seed)
        return out

    def add(self, n: int, nan: int, saturated: int, wrapped: int, flushed_to_zero: int,
            max_abs_error: float, sum_abs_error: float, seed: Optional[int] = None) -> None:
        """Accumulate one call's results in place."""
        self.n += int(n)
        self.nan += int(nan)
        self.saturated += int(saturated)
        self.wrapped += int(wrapped)
        self.flushed_to_zero += int(flushed_to_zero)
        self.max_abs_error = max(self.max_abs_error, float(max_abs_error))
        self.sum_abs_error += float(sum_abs_error)
        if seed is not None:
            self.seed = int(seed)

    def __str__(self) -> str:
        return (
            f"n={self.n} nan={self.nan} saturated={self.saturated} ({self.fraction_saturated:.3%}) "
            f"wrapped={self.wrapped} ({self.fraction_wrapped:.3%}) "
            f"flushed_to_zero={self.flushed_to_zero} ({self.fraction_flushed_to_zero:.3%}) "
            f"max_abs_error={self.max_abs_error:.6g} mean_abs_error={self.mean_abs_error:.6g}"
            + (f" seed={self.seed}" if self.seed is not None else "")
        )


def check_stats(stats: object) -> None:
    """TypeError unless ``stats`` is a :class:`QuantStats` or None (the ``stats=`` argument)."""
    if stats is not None and not isinstance(stats, QuantStats):
        raise TypeError(f"stats must be a QuantStats or None, got {type(stats).__name__}")


def block_sums(errors: np.ndarray) -> np.ndarray:
    """The sums of consecutive :data:`BLOCK`-element chunks of a flat float64 array, each in the
    order that every backend follows: :data:`LANES` interleaved lane sums, each strictly left to
    right, then added in lane order (``cumsum`` accumulates strictly in order; the zero padding
    of the last block adds ``+0.0``, which changes no sum of non-negative errors).
    """
    nblocks = -(-errors.size // BLOCK)
    padded = np.zeros(nblocks * BLOCK)
    padded[: errors.size] = errors
    with np.errstate(over="ignore", invalid="ignore"):  # errors near 1e308 sum to inf, as in the kernels
        lanes = padded.reshape(nblocks, BLOCK // LANES, LANES).cumsum(axis=1)[:, -1, :]
        return lanes.cumsum(axis=1)[:, -1]


def record_stats(stats: QuantStats, x: Any, y: Any, flags: Any, seed: Optional[int]) -> None:
    """Add one call of an elementwise quantizer (float formats, binarize/ternarize/pow2) to ``stats``:
    ``x`` the flat input, ``y`` the flat result, ``flags`` int8 per element (1 = overflowed, counted
    as saturated; 2 = flushed to zero). Errors are taken over finite inputs with finite results, in
    the order of `block_sums`; numpy or CuPy arrays (CuPy ones are copied to the host for this)."""
    x, y, flags = (np.asarray(a.get() if is_cupy_array(a) else a)
                   for a in (x, y, flags))
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    both = np.isfinite(x64) & np.isfinite(y64)
    err = np.where(both, np.abs(y64 - np.where(both, x64, 0.0)), 0.0)
    stats.add(x.size, np.count_nonzero(np.isnan(x64)), np.count_nonzero(flags == 1), 0,
              np.count_nonzero(flags == 2), err.max(initial=0.0), math.fsum(block_sums(err)), seed)
