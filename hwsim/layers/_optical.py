"""The ``optical=`` option of layers whose product a 4f system can run (`Conv2d`, circulant layers).

Forward runs the product through the emulated optics (``hwsim.optics.FourF``); backward is the ideal
linear operator's gradient (straight-through), so training with the optics in the loop learns weights
that tolerate its noise and quantisation. The noise seed of a forward call is
``derive_seed(optical.seed, precision.seed, layer index, step, n)``, ``n`` counting the forward calls
since the step last changed (an evaluation runs many batches at one step): a function of the run's
seeds and the call sequence alone.
"""
from __future__ import annotations

from typing import Any

from ..optics import FourF
from ..optics._rng import derive_seed

__all__ = ["OpticalOption", "set_optical"]


class OpticalOption:
    """Mixin for layers with an ``optical`` attribute (None = digital)."""

    optical: FourF | None = None
    #: False keeps this layer digital under `set_optical` (``seq:`` ``conv(...,optical=false)``).
    optical_allowed: bool = True

    def set_optical(self, optical: FourF | None) -> None:
        """Run this layer's product through ``optical`` (a ``FourF``) or digitally (None)."""
        if optical is not None and not isinstance(optical, FourF):
            raise TypeError(f"optical must be a hwsim.optics.FourF or None, got {type(optical).__name__}")
        self.optical = optical
        self._optical_calls = (None, 0)

    def check_optical_input(self, x) -> None:
        """The optics emulation is numpy only: a clear error for other arrays (CuPy)."""
        if type(x).__module__.split(".")[0] != "numpy":
            raise TypeError(f"layer {self.name!r}: the optical emulation (hwsim.optics) takes numpy arrays, "
                            f"got {type(x).__module__}.{type(x).__name__}")

    def optical_seed(self) -> int:
        """The noise seed of this forward call (see the module docstring)."""
        step, n = getattr(self, "_optical_calls", (None, 0))
        n = n + 1 if step == self.step else 0
        self._optical_calls = (self.step, n)
        return derive_seed(self.optical.seed, self.precision.seed, self.index, self.step, n)


def set_optical(model: Any, optical: FourF | None) -> int:
    """Set ``optical`` on every layer of ``model`` (a Sequential or a list of layers) that can run
    optically and allows it (``optical_allowed``); returns how many. ValueError when ``optical`` is
    set and no layer can use it."""
    layers = getattr(model, "layers", model)
    hits = [layer for layer in layers if isinstance(layer, OpticalOption) and layer.optical_allowed]
    if optical is not None and not hits:
        raise ValueError("no layer of this model runs optically: the optics emulate convolutions "
                         "(Conv2d, conv(...)) and circulant layers (not those marked optical=false)")
    for layer in hits:
        layer.set_optical(optical)
    return len(hits)
