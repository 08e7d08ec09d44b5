"""`LowPrecisionOptimizer`: a torch optimizer whose master weights are stored in a low-precision format."""
from __future__ import annotations

from typing import Any

import torch

from ._convert import as_array
from ._modules import bound_parameter
from ._roles import role_quantizer, stream_seed


class LowPrecisionOptimizer(torch.optim.Optimizer):
    """Wraps ``optimizer`` (any ``torch.optim.Optimizer``): ``step()`` quantizes the gradients through
    ``grad``, runs the optimizer's own step (its state, e.g. Adam's moments, stays in float), then
    stores every parameter through ``update`` — Gupta et al. 2015's master weights, typically
    ``update="s16.14:stochastic"`` — and advances the training step of the hwsim layers.

    ``update`` / ``grad``: role strings (``"s16.14:stochastic"``) or hwsim RoleQuantizers; None takes the
    role of the policy of the `quantize_model` layer owning the parameter (None for other parameters).
    Gradients of `quantize_model` layers are already on their policy's ``grad`` grid, so ``grad=`` is
    refused for a layer whose policy sets one. ``weight_clip`` of the policy applies before ``update``
    as in hwsim.

    Seeds: a parameter of a `quantize_model` layer uses that layer's hwsim seed stream (layer index,
    role, slot = the parameter's position in the hwsim layer, step) — so its bits equal
    ``hwsim.Layer.commit``'s; any other parameter uses layer index = its position in the optimizer's
    parameter list, slot 0, and ``seed``. The step is the number of completed ``step()`` calls.

    It is a ``torch.optim.Optimizer`` whose ``param_groups`` and ``state`` are the wrapped optimizer's
    own (shared, not copied), so a learning-rate scheduler or code setting ``param_groups[i]["lr"]``
    drives the wrapped optimizer.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, update: Any = None, grad: Any = None, *,
                 seed: int = 0):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        super().__init__(optimizer.param_groups, optimizer.defaults)
        self.param_groups, self.state = optimizer.param_groups, optimizer.state  # shared with the wrapped one
        self.optimizer, self.seed, self.t = optimizer, int(seed), 0
        self.update = role_quantizer(update, "LowPrecisionOptimizer update")
        self.grad = role_quantizer(grad, "LowPrecisionOptimizer grad")
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self._layers = {id(layer): layer for p in self.params if bound_parameter(p) is not None
                        for layer in bound_parameter(p)[3]}
        for p in self.params:
            bound = bound_parameter(p)
            if self.grad is not None and bound is not None and bound[0].precision.grad is not None:
                raise ValueError(f"grad= given for parameter {bound[1]!r} of layer {bound[0].name!r}, whose "
                                 f"policy already quantizes gradients ({bound[0].precision.grad.name})")
        self._set_step(0)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def _set_step(self, t: int) -> None:
        self.t = t
        for layer in self._layers.values():
            layer.step = t

    def _seed(self, i: int, p: torch.Tensor, role: str) -> tuple[Any, int, Any]:
        """(quantizer, seed, hwsim layer or None) of parameter ``i`` for ``role``."""
        bound = bound_parameter(p)
        own = self.update if role == "update" else self.grad
        if bound is None:
            return own, stream_seed(self.seed, i, role, 0, self.t), None
        layer, name = bound[0], bound[1]
        q = own if own is not None else getattr(layer.precision, role)
        return q, layer.stream_seed(role, list(layer.params()).index(name)), layer

    @torch.no_grad()
    def step(self, closure=None):
        """One optimizer step (see the class doc); returns the closure's loss, if any."""
        if self.grad is not None:
            for i, p in enumerate(self.params):
                if p.grad is not None:
                    q, seed, _ = self._seed(i, p, "grad")
                    g = as_array(p.grad)
                    g[...] = q(g.copy(), seed=seed, offset=0)
        loss = self.optimizer.step(closure)
        for i, p in enumerate(self.params):
            q, seed, layer = self._seed(i, p, "update")
            clip = None if layer is None else layer.precision.weight_clip
            if q is None and clip is None:
                continue
            w = as_array(p)
            # a view in hwsim's layout: the element order of its seed stream (C-contiguous for the weight of
            # a quantize_model layer, which is stored transposed: `_modules._store_transposed`)
            v = w.T if layer is not None and bound_parameter(p)[2] else w
            if clip is not None:
                v.clip(-clip, clip, out=v)
            if q is not None:
                v[...] = q(v, seed=seed, offset=0)
        self._set_step(self.t + 1)
        return loss

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "t": self.t, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.seed = int(state["seed"])
        self._set_step(int(state["t"]))
