"""Sequential models and the short model specs (``mlp:784-256-256-10``, ``cnn:lenet5``)."""
from __future__ import annotations

import math

import numpy as np

from . import _seq_layers  # noqa: F401  (registers the built-in seq: tokens)
from ._precision import Precision
from ._seq_spec import parse_seq
from ._xp import get_array_module, to_numpy
from .layers import ACTIVATIONS, Activation, Conv2d, Dense, Flatten, Layer, MaxPool2d, Reshape
from .layers._base import FP32


class Sequential:
    """Layers applied in order. ``input_shape`` excludes the batch axis.

    Layers are named ``<kind><index>`` (``dense0``, ``relu1`` ...) unless named explicitly.
    `set_precision` gives every layer the policy (a layer's ``precision_override`` wins) and marks
    where an input is already on the activation grid, so it is quantized once, not twice.
    """

    def __init__(self, layers: list[Layer], input_shape: tuple):
        self.layers = list(layers)
        self.input_shape = tuple(int(s) for s in input_shape)
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is not a hwsim Layer: {layer!r}")
            layer.index = i
            if not layer.name[-1:].isdigit():
                layer.name = f"{layer.name}{i}"
            shape = layer.output_shape(shape)
        self.output_shape = shape
        self.step = 0
        self.set_precision(FP32)

    # ------------------------------------------------------------------ configuration
    def set_precision(self, precision: Precision) -> None:
        assign_precision(self.layers, precision)
        self.precision = precision

    def set_step(self, step: int) -> None:
        self.step = step
        for layer in self.layers:
            layer.step = step

    def set_flags(self, *, check_finite: bool | None = None, collect_stats: bool | None = None) -> None:
        for layer in self.layers:
            if check_finite is not None:
                layer.check_finite = check_finite
            if collect_stats is not None:
                layer.collect_stats = collect_stats

    def reset_stats(self) -> None:
        for layer in self.layers:
            layer.reset_stats()

    # ------------------------------------------------------------------ passes
    def forward(self, x, training: bool = False):
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, dloss):
        """``dloss`` = gradient of the summed loss w.r.t. the output; returns it w.r.t. the input."""
        for layer in reversed(self.layers):
            dloss = layer.backward(dloss)
        return dloss

    def predict(self, x, batch: int = 1024):
        """Class indices (argmax of the outputs), computed in batches of ``batch``."""
        xp = get_array_module(x)
        out = [self.forward(x[i:i + batch]).argmax(axis=1) for i in range(0, len(x), batch)]
        return xp.concatenate(out)

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> list[tuple[Layer, str, object]]:
        return [(layer, name, p) for layer in self.layers for name, p in layer.params().items()]

    def num_parameters(self) -> int:
        return sum(int(p.size) for _, _, p in self.parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat ``"<layer index>.<name>" -> numpy array`` of parameters and buffers."""
        return {f"{layer.index}.{name}": to_numpy(a) for layer in self.layers
                for name, a in {**layer.params(), **layer.buffers()}.items()}

    def load_state_dict(self, state: dict) -> None:
        own = {f"{layer.index}.{name}": (layer, name, a) for layer in self.layers
               for name, a in {**layer.params(), **layer.buffers()}.items()}
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"state does not match the model: missing {missing}, unexpected {unexpected}")
        for key, (layer, name, a) in own.items():
            v = np.asarray(state[key])
            if v.shape != a.shape:
                raise ValueError(f"state {key!r} has shape {v.shape}, the model needs {a.shape}")
            layer.set_param(name, get_array_module(a).asarray(v, dtype=a.dtype))

    def astype(self, dtype) -> "Sequential":
        """Cast parameters, gradients and buffers to ``dtype`` (e.g. float64 for gradient checks)."""
        return self._map(lambda a: a.astype(dtype))

    def to(self, xp) -> "Sequential":
        """Move parameters to the array module ``xp`` (numpy or cupy)."""
        return self._map(lambda a: xp.asarray(a) if xp is not np else to_numpy(a))

    def _map(self, fn) -> "Sequential":
        for layer in self.layers:
            for name, a in {**layer.params(), **layer.buffers()}.items():
                setattr(layer, name, fn(a))
            for name, g in layer.grads().items():
                setattr(layer, f"d{name}", fn(g))
        return self

    def __repr__(self) -> str:
        return f"Sequential({', '.join(layer.name for layer in self.layers)}; input {self.input_shape})"


def assign_precision(layers: list[Layer], precision: Precision) -> None:
    """Give ``layers`` (run in this order) the policy (a layer's ``precision_override`` wins) and
    mark where an input is already on the activation grid, so it is quantized once, not twice."""
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a hwsim.Precision, got {precision!r}")
    grid = None  # the quantizer whose grid the current tensor lies on (None: unknown/raw)
    for layer in layers:
        layer.precision = layer.precision_override or precision
        act = layer.precision.activation
        layer.quantize_input = act is None or grid is None or grid != act
        if not layer.passes_grid:
            grid = act
        layer._bases = {}


def _image_input(input_shape: tuple, spec: str) -> tuple[list[Layer], tuple]:
    """Layers that turn ``input_shape`` into (C, H, W)."""
    if len(input_shape) == 3:
        return [], tuple(input_shape)
    if len(input_shape) == 2:
        return [Reshape((1, *input_shape))], (1, *input_shape)
    side = math.isqrt(int(input_shape[0])) if len(input_shape) == 1 else 0
    if len(input_shape) == 1 and side * side == input_shape[0]:
        return [Reshape((1, side, side))], (1, side, side)
    raise ValueError(f"{spec!r} needs image inputs (C, H, W), (H, W) or a square number of features, "
                     f"got input_shape {tuple(input_shape)}")


def lenet5(input_shape: tuple, num_classes: int, seed: int, dtype) -> list[Layer]:
    """LeNet-5 (ReLU, max-pool). Inputs of side >= 28: conv 5x5 (padding 2 when the side is 28,
    as in the original 32x32 layout), 6 maps -> pool 2 -> conv 5x5, 16 -> pool 2 -> 120 -> 84 ->
    classes. Smaller inputs (the 8x8 digits): the same stages with 3x3 convolutions, padding 1
    (8x8 -> 4x4 -> 2x2, so the classifier sees 16*2*2 = 64 features)."""
    pre, (c, h, w) = _image_input(input_shape, "cnn:lenet5")
    if min(h, w) >= 28:
        k, pad = 5, (2 if min(h, w) < 32 else 0)
        k2, pad2 = 5, 0
    elif min(h, w) >= 8:
        k, pad, k2, pad2 = 3, 1, 3, 1
    else:
        raise ValueError(f"cnn:lenet5 needs images of at least 8x8, got {h}x{w}")
    s = np.random.SeedSequence(seed).generate_state(5)
    feats = [Conv2d(c, 6, k, padding=pad, seed=s[0], dtype=dtype), Activation("relu"), MaxPool2d(2),
             Conv2d(6, 16, k2, padding=pad2, seed=s[1], dtype=dtype), Activation("relu"), MaxPool2d(2),
             Flatten()]
    shape = (c, h, w)
    for layer in feats:
        shape = layer.output_shape(shape)
    n = shape[0]
    head = [Dense(n, 120, seed=s[2], dtype=dtype), Activation("relu"),
            Dense(120, 84, seed=s[3], dtype=dtype), Activation("relu"),
            Dense(84, num_classes, seed=s[4], dtype=dtype)]
    return pre + feats + head


def _mlp(body: str, spec: str, input_shape: tuple, num_classes: int | None, seed: int, dtype) -> list[Layer]:
    parts = body.split(":")
    if len(parts) > 2:
        raise ValueError(f"bad model spec {spec!r}: expected 'mlp:IN-H1-...-OUT[:ACTIVATION]'")
    act = parts[1] if len(parts) == 2 else "relu"
    if act not in ACTIVATIONS:
        raise ValueError(f"bad activation token {act!r} in {spec!r}: allowed {', '.join(ACTIVATIONS)}")
    sizes = []
    for tok in parts[0].split("-"):
        if not tok.isdigit() or int(tok) < 1:
            raise ValueError(f"bad layer size token {tok!r} in {spec!r}: sizes are positive integers")
        sizes.append(int(tok))
    if len(sizes) < 2:
        raise ValueError(f"bad model spec {spec!r}: an MLP needs at least input and output sizes")
    n_in = math.prod(input_shape)
    if sizes[0] != n_in:
        raise ValueError(f"bad input size token {str(sizes[0])!r} in {spec!r}: the data have "
                         f"{n_in} features (input shape {tuple(input_shape)})")
    if num_classes is not None and sizes[-1] != num_classes:
        raise ValueError(f"bad output size token {str(sizes[-1])!r} in {spec!r}: the data have {num_classes} "
                         "classes")
    seeds = np.random.SeedSequence(seed).generate_state(len(sizes) - 1)
    layers: list[Layer] = [Flatten()] if len(input_shape) > 1 else []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(a, b, seed=seeds[i], dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(Activation(act))
    return layers


def _seq(spec: str, input_shape: tuple, num_classes: int | None, seed: int, dtype) -> list[Layer]:
    in_shape, layers = parse_seq(spec, seed, dtype)
    if math.prod(in_shape) != math.prod(input_shape):
        raise ValueError(f"bad input token {'x'.join(map(str, in_shape))!r} in {spec!r}: the data have "
                         f"{math.prod(input_shape)} values per example (input shape {tuple(input_shape)})")
    shape = in_shape
    for layer in layers:
        shape = layer.output_shape(shape)
    if num_classes is not None and (len(shape) != 1 or shape[0] != num_classes):
        raise ValueError(f"bad model spec {spec!r}: the last layer outputs shape {shape}, "
                         f"the data have {num_classes} classes")
    return ([Reshape(in_shape)] if tuple(in_shape) != tuple(input_shape) else []) + layers


MODEL_FAMILIES = ("mlp", "cnn", "seq")


def build_model(spec: str, input_shape: tuple = (784,), num_classes: int | None = 10, *, seed: int = 0,
                dtype=np.float32) -> Sequential:
    """A model from a short spec.

    ``mlp:IN-H1-...-OUT[:ACT]``: Dense layers with ``ACT`` (default relu; any of ``ACTIVATIONS``)
    between them; IN must equal the number of input features (image inputs are flattened first),
    OUT the number of classes. ``cnn:lenet5``: see `lenet5`. ``seq:IN,LAYER,...``: layers composed
    token by token (`hwsim._seq_spec`); IN must hold as many values as ``input_shape`` (a different
    layout is reshaped to IN first), and ``num_classes``, when given, must equal the last layer's
    width. Weights are initialised from ``seed``. A bad spec raises ValueError naming the bad token.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"bad model spec {spec!r}: expected 'mlp:784-256-256-10', 'cnn:lenet5' or "
                         f"'seq:784,dense(256),relu,dense(10)'")
    family, body = spec.split(":", 1)
    input_shape = tuple(int(s) for s in input_shape)
    if family == "seq":
        layers = _seq(spec, input_shape, num_classes, seed, dtype)
    elif family == "mlp":
        layers = _mlp(body, spec, input_shape, num_classes, seed, dtype)
    elif family == "cnn":
        if body != "lenet5":
            raise ValueError(f"bad cnn token {body!r} in {spec!r}: allowed 'lenet5'")
        layers = lenet5(input_shape, 10 if num_classes is None else num_classes, seed, dtype)
    else:
        raise ValueError(f"bad model family token {family!r} in {spec!r}: allowed "
                         f"{', '.join(MODEL_FAMILIES)}")
    model = Sequential(layers, input_shape)
    model.spec = spec
    return model
