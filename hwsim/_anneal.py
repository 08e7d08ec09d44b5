"""Training hooks for annealed layers (noisy activations, mollified blocks): `anneal_after_step` runs
the loss-driven mollifier schedule after each optimizer step, `anneal_record` is what metrics.json
records per epoch under ``"annealing"`` (layer name -> its ``anneal_state()``). Step-driven schedules
(`AnnealInverseSqrt` ...) need no hook: a layer evaluates them at its training step."""
from __future__ import annotations

from .layers._mollify import MollifiedDense, mollifier_update

__all__ = ["anneal_after_step", "anneal_record"]


def anneal_after_step(model, loss: float, step: int) -> None:
    """After the optimizer step of global step ``step`` (0-based) with minibatch ``loss``."""
    blocks = [la for la in model.layers if isinstance(la, MollifiedDense) and la.anneal]
    if blocks:
        mollifier_update(blocks, loss, step + 1)


def anneal_record(model) -> dict:
    """``{layer name: anneal_state()}`` for every layer that has one (empty when none)."""
    return {la.name: la.anneal_state() for la in model.layers if hasattr(la, "anneal_state")}
