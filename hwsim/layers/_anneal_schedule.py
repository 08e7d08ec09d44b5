"""Annealing schedules for a noise scale: a value as a function of the global training step.

A schedule is a callable ``schedule(step) -> float`` (``step`` = the model's training step,
`Sequential.set_step`, 0 for the first minibatch) with a ``spec`` text and `to_dict` for metrics.
A layer that holds one reads it at its current step, so annealing follows the step counter that a
checkpoint restores: a resumed run anneals exactly like an uninterrupted one.

- `AnnealConstant(value)`: no annealing.
- `AnnealInverseSqrt(start, every=200, floor=0.5)`: ``max(floor, start / sqrt(t + 1))`` with
  ``t = step // every`` (thesis 000:1340: c from 30 as c/sqrt(t+1), t += 1 every 200 minibatch
  updates, down to 0.5).
- `AnnealLinear(start, end, steps)`: ``start + (end - start) * min(step / steps, 1)``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["AnnealConstant", "AnnealInverseSqrt", "AnnealLinear", "as_schedule"]


def _finite(name: str, v: float, lo: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo:
        raise ValueError(f"{name} must be a finite number >= {lo}, got {v!r}")
    return float(v)


def _count(name: str, v: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return v


class _Schedule:
    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}

    @property
    def spec(self) -> str:
        return f"{self.kind}(" + ",".join(f"{k}={v:g}" for k, v in asdict(self).items()) + ")"


@dataclass(frozen=True)
class AnnealConstant(_Schedule):
    """The same value at every step."""

    value: float
    kind = "constant"

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _finite("value", self.value))

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class AnnealInverseSqrt(_Schedule):
    """``max(floor, start / sqrt(step // every + 1))`` (thesis: start 30, every 200, floor 0.5)."""

    start: float
    every: int = 200
    floor: float = 0.5
    kind = "isqrt"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _finite("start", self.start))
        object.__setattr__(self, "floor", _finite("floor", self.floor))
        _count("every", self.every)

    def __call__(self, step: int) -> float:
        return max(self.floor, self.start / math.sqrt(int(step) // self.every + 1))


@dataclass(frozen=True)
class AnnealLinear(_Schedule):
    """From ``start`` at step 0 to ``end`` at step ``steps``, then ``end``."""

    start: float
    end: float
    steps: int
    kind = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _finite("start", self.start))
        object.__setattr__(self, "end", _finite("end", self.end))
        _count("steps", self.steps)

    def __call__(self, step: int) -> float:
        return self.start + (self.end - self.start) * min(int(step) / self.steps, 1.0)


def as_schedule(name: str, value) -> _Schedule:
    """``value`` as a schedule: a number becomes `AnnealConstant`; a schedule passes."""
    if isinstance(value, _Schedule):
        return value
    try:
        return AnnealConstant(value)
    except ValueError:
        raise ValueError(f"{name} must be a number >= 0 or an annealing schedule, got {value!r}") from None
