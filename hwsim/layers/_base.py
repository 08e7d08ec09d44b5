"""The Layer base class: parameters, the precision in force, and the quantization points.

Gradient convention (all layers). ``backward(dy)`` receives ``dy = dS/dy`` where ``S = sum_n l_n``
is the *sum* of the per-example losses and returns ``dS/dx``; for layers that treat examples
independently this is the per-example error, which keeps fixed-point ``error`` formats on an O(1)
scale. Parameter gradients (`grads`) are those of the *mean* loss ``S / N`` (N = batch size), the
quantity an optimizer steps on.
"""
from __future__ import annotations

import numpy as np

import fixedpoint

from .._precision import Precision, role_base, step_seed
from .._xp import get_array_module

FP32 = Precision()


class DivergenceError(FloatingPointError):
    """A NaN/inf appeared; ``.layer`` and ``.role`` name where it was first seen."""

    def __init__(self, layer: str, role: str, detail: str = ""):
        self.layer, self.role, self.detail = layer, role, detail
        msg = f"training diverged: non-finite values first seen in layer {layer!r}, role {role!r}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


class Layer:
    """Base class. Subclasses set ``self.name`` and implement ``forward``/``backward``.

    Attributes set by the model: ``precision`` (the policy in force: ``precision_override`` if not
    None, else the model's), ``index`` (position in the model, used in seeds), ``step`` (training
    step, used in seeds), ``quantize_input`` (False when the input is already on this layer's
    activation grid), ``check_finite`` (diagnostic mode: raise `DivergenceError` at the first
    non-finite tensor), ``collect_stats`` (pass a ``fixedpoint.QuantStats`` per role to the
    quantizers). ``stats`` maps role -> QuantStats accumulated since the last `reset_stats`.
    """

    name = "layer"
    #: True for layers whose output lies on their input's grid (max-pool, flatten).
    passes_grid = False

    def __init__(self) -> None:
        self.precision: Precision = FP32
        self.precision_override: Precision | None = None
        self.index = 0
        self.step = 0
        self.quantize_input = True
        self.check_finite = False
        self.collect_stats = False
        self.stats: dict = {}
        self._bases: dict = {}

    def __getstate__(self) -> dict:
        """State for pickling and copying, without the training forward's cache (``_cache``): it holds
        closures (e.g. an activation's derivative), which cannot be pickled (``torch.save`` of a
        hwsim.torch model), and only the backward right after that forward reads it."""
        state = self.__dict__.copy()
        state.pop("_cache", None)
        return state

    # ------------------------------------------------------------------ parameters
    def params(self) -> dict:
        """name -> parameter array (the master weights, stored in the ``update`` format)."""
        return {}

    def grads(self) -> dict:
        """name -> gradient of the mean loss (same keys as `params`, arrays updated in place)."""
        return {}

    def buffers(self) -> dict:
        """name -> non-trained state saved in checkpoints (e.g. BatchNorm running statistics)."""
        return {}

    def set_param(self, name: str, value) -> None:
        """Replace parameter or buffer ``name`` (keeps its gradient array)."""
        if name not in self.params() and name not in self.buffers():
            raise KeyError(f"layer {self.name!r} has no parameter {name!r}")
        setattr(self, name, value)

    def output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def reset_stats(self) -> None:
        self.stats = {}

    # ------------------------------------------------------------------ quantization points
    def quantize(self, role: str, x, slot: int = 0):
        """``x`` through this layer's quantizer for ``role`` (identity when the role is None).

        NaN input raises `DivergenceError` naming this layer and the role.
        """
        q = getattr(self.precision, role)
        if self.check_finite:
            self._check(role, x)
        if q is None:
            return x
        stats = None
        if self.collect_stats:
            stats = self.stats.get(role)
            if stats is None:
                stats = self.stats[role] = fixedpoint.QuantStats()
        try:
            return q(x, seed=self.stream_seed(role, slot), offset=0, stats=stats)
        except ValueError:
            self._check(role, x)
            raise

    def stream_seed(self, role: str, slot: int = 0) -> int:
        """The counter-RNG seed of (this layer, ``role``, ``slot``) at the current step:
        ``step_seed(role_base(precision.seed, index, role, slot), step)`` (the seed rule of
        `hwsim._precision`), the base cached per layer until the precision's seed changes."""
        seed = self.precision.seed
        base = self._bases.get((role, slot))
        if base is None or base[0] != seed:
            base = self._bases[(role, slot)] = (seed, role_base(seed, self.index, role, slot))
        return step_seed(base[1], self.step)

    def quantize_masked(self, role: str, x, slot: int = 0):
        """(quantized x, straight-through mask or None) for saturating roles."""
        q = getattr(self.precision, role)
        if q is None:
            if self.check_finite:
                self._check(role, x)
            return x, None
        return self.quantize(role, x, slot), q.grad_mask(x)

    def _check(self, role: str, x) -> None:
        xp = get_array_module(x)
        if not bool(xp.isfinite(x).all()):
            n = int((~xp.isfinite(x)).sum())
            raise DivergenceError(self.name, role, f"{n} of {x.size} values")

    # ------------------------------------------------------------------ update
    def commit(self, name: str, value) -> None:
        """Store an optimizer's new value of parameter ``name``: clip to ``weight_clip``, quantize
        through the ``update`` role (slot = the parameter's position in `params`), store."""
        p = self.precision
        if p.weight_clip is not None:
            xp = get_array_module(value)
            value = xp.clip(value, -p.weight_clip, p.weight_clip, out=value)
        if p.update is not None:
            slot = list(self.params()).index(name)
            value = self.quantize("update", value, slot)
        elif self.check_finite:
            self._check("update", value)
        setattr(self, name, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


def init_rng(seed) -> np.random.Generator:
    """The numpy generator used for parameter initialisation."""
    return np.random.default_rng(seed)
