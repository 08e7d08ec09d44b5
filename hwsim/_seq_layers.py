"""The built-in ``seq:`` layer tokens: dense, conv, pooling, flatten, batchnorm, dropout and every
activation of ``hwsim.layers.ACTIVATIONS`` (see `hwsim._seq_spec` for the grammar)."""
from __future__ import annotations

from ._seq_spec import LayerArgs, register_layer_token
from .layers import ACTIVATIONS, Activation, AvgPool2d, BatchNorm, Conv2d, Dense, Dropout, Flatten, MaxPool2d


def _image(a: LayerArgs) -> tuple[int, int, int]:
    if len(a.in_shape) != 3:
        raise a.error(f"needs an image input (C, H, W), got shape {'x'.join(map(str, a.in_shape))}: "
                      f"write the input as CxHxW (e.g. seq:1x28x28,...)")
    return a.in_shape  # type: ignore[return-value]


def _dense(a: LayerArgs) -> Dense:
    n_in = a.in_features
    return Dense(n_in, a.positional(0, "out", lo=1), seed=a.seed, dtype=a.dtype)


def _conv(a: LayerArgs) -> Conv2d:
    c = _image(a)[0]
    out, k = a.positional(0, "out", lo=1), a.positional(1, "kernel", lo=1)
    stride, pad = a.keyword("stride", default=1, lo=1), a.keyword("padding", default=0, lo=0)
    layer = Conv2d(c, out, k, stride=stride, padding=pad, seed=a.seed, dtype=a.dtype)
    layer.optical_allowed = a.keyword("optical", kind=bool, default=True)  # --optical may run it
    return layer


def _pool(cls):
    def build(a: LayerArgs):
        _image(a)
        k = a.positional(0, "k", lo=1)
        return cls(k, a.keyword("stride", default=None, lo=1))
    return build


def _batchnorm(a: LayerArgs) -> BatchNorm:
    return BatchNorm(a.in_shape[0], eps=a.keyword("eps", kind=float, default=1e-5, lo=1e-12),
                     momentum=a.keyword("momentum", kind=float, default=0.1, lo=1e-6, hi=1.0), dtype=a.dtype)


def _dropout(a: LayerArgs) -> Dropout:
    return Dropout(a.positional(0, "p", kind=float, default=0.5, lo=0.0, hi=0.999))


def _activation(kind: str):
    return lambda a: Activation(kind)


register_layer_token("dense", _dense, "dense(OUT)")
register_layer_token("conv", _conv, "conv(OUT,K[,stride=S,padding=P,optical=false])")
register_layer_token("maxpool", _pool(MaxPool2d), "maxpool(K[,stride=S])")
register_layer_token("avgpool", _pool(AvgPool2d), "avgpool(K[,stride=S])")
register_layer_token("flatten", lambda a: Flatten(), "flatten")
register_layer_token("batchnorm", _batchnorm, "batchnorm[(eps=E,momentum=M)]")
register_layer_token("dropout", _dropout, "dropout(P)")
for _kind in ACTIVATIONS:
    register_layer_token(_kind, _activation(_kind), _kind)
