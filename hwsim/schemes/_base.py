"""What every training scheme provides: a `Precision` and a model built for it.

A scheme is a frozen dataclass whose fields are its parameters (`get_scheme` validates them).
``scheme.precision(seed)`` is the policy handed to ``hwsim.train``; ``scheme.build_model(spec, ...)``
builds ``spec`` with ``hwsim.build_model`` and adapts it to the scheme: with ``batchnorm=True`` a
`BatchNorm` follows every Dense/Conv2d layer (the output layer included, as in BinaryConnect and
BNN); batch norm runs in float32 with float32 parameters (its own ``precision_override``), so
``weight_clip`` and the weight quantizer act on the Dense/Conv weights only.

``unit_init=True`` (binary and ternary schemes) rescales each Dense/Conv weight at
initialisation by ``1 / max|W|``, so the master weights fill [-1, 1] (Glorot uniform divided by
its bound). That is the reference BinaryConnect code's ``H = Glorot`` convention
(``w_b = H * binarize(w / H)``, ``w`` clipped to [-H, H], learning rate scaled by 1/H) with
``H`` folded into the weights: the batch norm after the layer absorbs the scale, and the
stochastic binarization probabilities clip((w + 1)/2, 0, 1) span their whole range.
"""
from __future__ import annotations

import abc
import dataclasses
import re

from .._model import Sequential, build_model
from .._precision import Precision
from ..layers import BatchNorm, Conv2d, Dense, Layer

_FLOAT_BN = Precision()


def _base_name(layer: Layer) -> str:
    return re.sub(r"\d+$", "", layer.name)


@dataclasses.dataclass(frozen=True)
class Scheme(abc.ABC):
    """Base class: subclasses set ``name``, ``paper`` and implement `precision`."""

    name = "scheme"
    paper = ""
    batchnorm: bool = False
    unit_init: bool = False

    @abc.abstractmethod
    def precision(self, seed: int = 0) -> Precision:
        """The policy ``hwsim.train`` runs this scheme with (rounding seeds derived from ``seed``)."""

    def adapt_layers(self, layers: list[Layer]) -> list[Layer]:
        """Hook for schemes that change layers (BNN: sign activations); default unchanged."""
        return layers

    def build_model(self, spec: str, input_shape: tuple = (784,), num_classes: int | None = 10, *,
                    seed: int = 0) -> Sequential:
        """``hwsim.build_model(spec, ...)`` adapted to this scheme, with this scheme's precision set."""
        base = build_model(spec, input_shape, num_classes, seed=seed)
        layers: list[Layer] = []
        for layer in self.adapt_layers(base.layers):
            layer.name = _base_name(layer)
            if self.unit_init and isinstance(layer, (Dense, Conv2d)):
                layer.W *= 1.0 / max(float(abs(layer.W).max()), 1e-30)
            layers.append(layer)
            if self.batchnorm and isinstance(layer, (Dense, Conv2d)):
                bn = BatchNorm(int(layer.W.shape[1] if isinstance(layer, Dense) else layer.W.shape[0]))
                bn.precision_override = _FLOAT_BN
                layers.append(bn)
        model = Sequential(layers, base.input_shape)
        model.spec = spec
        model.set_precision(self.precision(seed))
        return model

    def params(self) -> dict:
        """The scheme's parameters (JSON-ready)."""
        return dataclasses.asdict(self)

    def to_dict(self) -> dict:
        return {"scheme": self.name, **self.params()}
