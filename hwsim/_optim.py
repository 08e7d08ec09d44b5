"""Optimizers (SGD with momentum, Adam) and learning-rate schedules.

An optimizer computes each parameter's new value in the compute dtype and hands it to
``layer.commit(name, value)``, which clips it to ``precision.weight_clip`` and quantizes it through
the ``update`` role (stochastic rounding with a per-step seed is what lets narrow master weights
learn: Gupta et al. 2015). The optimizer's own state (momentum, Adam's moments) stays in float:
quantizing Adam's second moment (~grad^2) with a fixed-point update format rounds it to zero and
training collapses, so only the resulting weight is quantized.
"""
from __future__ import annotations

import abc
import math

import numpy as np
from numba import njit

from ._xp import get_array_module, to_numpy


class Optimizer(abc.ABC):
    """Base: one slot per (layer, parameter name) of ``model.parameters()``."""

    def __init__(self, model, lr: float, weight_decay: float = 0.0):
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        if not (weight_decay >= 0 and math.isfinite(weight_decay)):
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.slots = [(layer, name) for layer, name, _ in model.parameters()]
        self.t = 0
        self.state: list[dict] = [{} for _ in self.slots]

    def step(self) -> None:
        """Apply one update to every parameter from its current gradient."""
        self.t += 1
        self._begin_step()
        grads = {}  # id(layer) -> layer.grads(), fetched once per step
        for (layer, name), state in zip(self.slots, self.state):
            g = grads.get(id(layer))
            if g is None:
                g = grads[id(layer)] = layer.grads()
            w = getattr(layer, name)
            self._update(w, g[name], state)
            layer.commit(name, w)

    def _begin_step(self) -> None:
        """Per-step scalars (after ``t`` is incremented)."""

    def _decayed(self, w, g):
        return g + self.weight_decay * w if self.weight_decay else g

    @abc.abstractmethod
    def _update(self, w, g, state: dict) -> None:
        """Write the new value of ``w`` in place (gradient ``g`` without weight decay)."""

    def state_dict(self) -> dict[str, np.ndarray]:
        out = {"t": np.asarray(self.t), "lr": np.asarray(self.lr)}
        for (layer, name), state in zip(self.slots, self.state):
            for k, a in state.items():
                out[f"{layer.index}.{name}.{k}"] = to_numpy(a)
        return out

    def load_state_dict(self, d: dict) -> None:
        self.t, self.lr = int(d["t"]), float(d["lr"])
        for (layer, name), state in zip(self.slots, self.state):
            w = getattr(layer, name)
            xp = get_array_module(w)
            prefix = f"{layer.index}.{name}."
            state.clear()
            state.update({k[len(prefix):]: xp.asarray(v, dtype=w.dtype)
                          for k, v in d.items() if k.startswith(prefix)})


class SGD(Optimizer):
    """``v = momentum * v + g; w -= lr * v`` (``g`` includes ``weight_decay * w``)."""

    def __init__(self, model, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(model, lr, weight_decay)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)

    def _update(self, w, g, state: dict) -> None:
        g = self._decayed(w, g)
        if self.momentum:
            v = state.get("v")
            if v is None:
                v = state["v"] = get_array_module(w).zeros_like(w)
            v *= self.momentum
            v += g
            g = v
        w -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) in the form ``w -= lr_t * m / (sqrt(v) + eps)`` with
    ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)``; moments in float (see the module docstring)."""

    def __init__(self, model, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(model, lr, weight_decay)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1 and eps > 0):
            raise ValueError(f"Adam needs betas in [0, 1) and eps > 0, got {betas!r}, {eps!r}")
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)

    def _begin_step(self) -> None:
        self._lr_t = self.lr * math.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)

    def _update(self, w, g, state: dict) -> None:
        xp = get_array_module(w)
        if not state:
            state.update(m=xp.zeros_like(w), v=xp.zeros_like(w))
        m, v = state["m"], state["v"]
        if xp is np and w.flags.c_contiguous and g.dtype == w.dtype:
            # numpy: one fused pass (same bits as the array expression below, which CuPy runs)
            c = w.dtype.type
            _adam_fused(w.reshape(-1), np.ascontiguousarray(g).reshape(-1), m.reshape(-1), v.reshape(-1),
                        c(self.b1), c(1 - self.b1), c(self.b2), c(1 - self.b2), c(self.eps), c(self._lr_t),
                        c(self.weight_decay))
            return
        g = self._decayed(w, g)
        m *= self.b1
        m += (1 - self.b1) * g
        v *= self.b2
        v += (1 - self.b2) * (g * g)
        d = xp.sqrt(v)
        d += self.eps
        xp.divide(m, d, out=d)
        d *= self._lr_t
        w -= d


@njit(cache=True, error_model="numpy")
def _adam_fused(w, g, m, v, b1, c1, b2, c2, eps, lr_t, wd):  # pragma: no cover - compiled
    """The array expression of `Adam._update`, elementwise and operation by operation in the
    arrays' dtype (IEEE division and sqrt, no FMA contraction, so the bits are the same);
    ``error_model="numpy"`` drops the per-element zero-division check so the loop vectorises."""
    for i in range(w.size):
        gi = g[i]
        if wd != 0:
            gi = gi + wd * w[i]
        mi = m[i] * b1 + c1 * gi
        vi = v[i] * b2 + c2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        w[i] = w[i] - (mi / (np.sqrt(vi) + eps)) * lr_t


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, model, *, lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> Optimizer:
    """``"sgd"`` (with ``momentum``) or ``"adam"``."""
    if name == "sgd":
        return SGD(model, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(model, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"bad optimizer {name!r}: allowed {', '.join(OPTIMIZERS)}")


class StepLR:
    """``lr = base * gamma ** (epoch // step_size)`` (epoch counted from 0)."""

    def __init__(self, step_size: int, gamma: float = 0.1):
        if int(step_size) != step_size or step_size < 1 or not gamma > 0:
            raise ValueError(f"StepLR needs an integer step_size >= 1 and gamma > 0, got {step_size!r}, "
                             f"{gamma!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)

    @property
    def spec(self) -> str:
        return f"step:{self.step_size}:{self.gamma!r}"

    def lr(self, base: float, epoch: int, epochs: int) -> float:
        return base * self.gamma ** (epoch // self.step_size)


class CosineLR:
    """``lr = min_lr + (base - min_lr) * (1 + cos(pi * epoch / T)) / 2``, ``T`` = ``t_max`` or the
    number of training epochs."""

    def __init__(self, t_max: int | None = None, min_lr: float = 0.0):
        if t_max is not None and (int(t_max) != t_max or t_max < 1):
            raise ValueError(f"CosineLR t_max must be an integer >= 1 or None, got {t_max!r}")
        if not min_lr >= 0:
            raise ValueError(f"CosineLR min_lr must be >= 0, got {min_lr!r}")
        self.t_max, self.min_lr = t_max, float(min_lr)

    @property
    def spec(self) -> str:
        if self.t_max is None:
            return f"cosine:{self.min_lr!r}"
        return f"cosine(t_max={self.t_max}, min_lr={self.min_lr!r})"

    def lr(self, base: float, epoch: int, epochs: int) -> float:
        t = self.t_max or epochs
        return self.min_lr + (base - self.min_lr) * (1 + math.cos(math.pi * min(epoch, t) / t)) / 2


def parse_schedule(spec):
    """None / ``"constant"``, ``"step:STEP_SIZE[:GAMMA]"``, ``"cosine[:MIN_LR]"``, or a schedule object."""
    if spec is None or spec == "constant":
        return None
    if not isinstance(spec, str):
        if not callable(getattr(spec, "lr", None)):
            raise TypeError(f"schedule must be a str or have lr(base, epoch, epochs), got {spec!r}")
        return spec
    kind, *args = spec.split(":")
    try:
        if kind == "step" and 1 <= len(args) <= 2:
            return StepLR(int(args[0]), *(float(a) for a in args[1:]))
        if kind == "cosine" and len(args) <= 1:
            return CosineLR(None, *(float(a) for a in args))
    except ValueError as err:
        raise ValueError(f"bad schedule {spec!r}: {err}") from None
    raise ValueError(f"bad schedule token {spec!r}: allowed 'constant', 'step:STEP_SIZE[:GAMMA]', "
                     "'cosine[:MIN_LR]'")
