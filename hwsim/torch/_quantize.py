"""`Quantize`: a tensor onto a format's grid in the forward pass, its gradient onto another's."""
from __future__ import annotations

from typing import Any

import torch

from ._convert import as_array, as_tensor
from ._roles import role_quantizer, stream_seed


class _QuantizeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, module: "Quantize", step: int) -> torch.Tensor:
        xa = as_array(x.contiguous())
        q = module.forward_quantizer
        ctx.module, ctx.step, ctx.mask = module, step, None
        if q is None:
            return x.clone()
        if ctx.needs_input_grad[0]:
            ctx.mask = q.grad_mask(xa)
        return as_tensor(q(xa, seed=stream_seed(module.seed, module.index, module.forward_role, 0, step),
                           offset=0))

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        module, g = ctx.module, as_array(dy.contiguous())
        if ctx.mask is not None:
            g = g * ctx.mask
        q = module.backward_quantizer
        if q is not None:
            g = q(g, seed=stream_seed(module.seed, module.index, module.backward_role, 0, ctx.step), offset=0)
        elif ctx.mask is None:
            g = g.copy()
        return as_tensor(g), None, None


class Quantize(torch.nn.Module):
    """``y = Q_forward(x)``; backward ``dx = Q_backward(dy * mask)``.

    ``forward`` / ``backward`` are role strings (``"s8.4"``, ``"s16.14:stochastic"``, ``"e4m3"``,
    ``"binary"``; ``"fp32"`` or None = no quantization) or hwsim RoleQuantizers. ``mask`` is the forward
    quantizer's straight-through estimator (`hwsim.RoleQuantizer.grad_mask`): for a saturating format the
    gradient is zeroed where ``x`` lies outside [min, max], as in hwsim's layers; None elsewhere.

    Seeds (stochastic rounding): hwsim's rule with layer index ``index``, roles ``forward_role``
    (default ``"activation"``) and ``backward_role`` (``"error"``), slot 0 and the module's ``step``,
    which counts the forward calls made in training mode (`set_step` sets it). So a run is
    reproducible and the same on CPU and CUDA tensors. Two modules with the same ``seed``, ``index``
    and roles draw the same numbers at the same step (element for element): give each module of a
    model its own ``index`` where the draws must be independent. Bits: those of ``fixedpoint.quantize`` on the
    tensor's values in its own dtype (float32 or float64).
    """

    def __init__(self, forward: Any = None, backward: Any = None, *, seed: int = 0, index: int = 0,
                 forward_role: str = "activation", backward_role: str = "error"):
        super().__init__()
        self.forward_quantizer = role_quantizer(forward, "Quantize forward")
        self.backward_quantizer = role_quantizer(backward, "Quantize backward")
        self.seed, self.index, self.step = int(seed), int(index), 0
        self.forward_role, self.backward_role = forward_role, backward_role

    def set_step(self, step: int) -> None:
        self.step = int(step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _QuantizeFunction.apply(x, self, self.step)
        if self.training:
            self.step += 1
        return y

    def extra_repr(self) -> str:
        name = lambda q: "fp32" if q is None else q.name  # noqa: E731
        return (f"forward={name(self.forward_quantizer)}, backward={name(self.backward_quantizer)}, "
                f"seed={self.seed}, index={self.index}")
