"""Training through fixedpoint's Numba kernels (``backend="auto"``) gives the numpy oracle's bits."""
from __future__ import annotations

import numpy as np
import pytest

import fixedpoint
from hwsim import Precision, build_model, train

from .test_train import DATA


@pytest.mark.parametrize("flags", [
    dict(weight="s8.7", activation="s8.4", update="s16.14:stochastic"),
    dict(precision="fixed16"),
    dict(update="s16.8:stochastic"),
], ids=["w8a8", "fixed16", "coarse-stochastic-update"])
def test_training_with_numba_kernels_equals_numpy_oracle(flags, monkeypatch) -> None:
    """Every quantization of a short run (health statistics on every batch, so both the fused
    loops and the statistics pass run) forced onto each backend: the same weights, bit for bit."""
    original = fixedpoint.quantize
    weights = {}
    for backend in ("numpy", "numba"):
        monkeypatch.setattr(fixedpoint, "quantize",
                            lambda *a, _forced=backend, **k: original(*a, **{**k, "backend": _forced}))
        roles = {r: t for r, t in flags.items() if r != "precision"}
        precision = Precision.from_flags(flags.get("precision", "fp32"), seed=5, **roles)
        model = build_model("mlp:10-16-3", (10,), 3, seed=1)
        for every in (1, 10**9):
            train(model, DATA, precision, epochs=1, batch=32, lr=0.01, progress=False,
                  health_every=every)
        weights[backend] = [np.asarray(v).tobytes() for layer in model.layers
                            for v in layer.params().values()]
    assert weights["numpy"] == weights["numba"]
