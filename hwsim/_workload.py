"""Export a network and a precision policy to a ``devices.Workload`` (what one step costs on a device).

``workload(net, precision, batch=B)`` lists, layer by layer, the operations of one inference of a batch:

* Dense → ``MatMul(m=B, k=in, n=out)``; Conv2d → ``devices.Conv2d`` (same geometry, stride, padding;
  a Conv2d with ``optical=FourF(...)`` has ``a_bits`` at most the FourF's DAC bits: what the modulator shows).
  Operand widths come from the policy: ``a_bits`` = activation role, ``b_bits`` = weight role,
  ``acc_bits`` = acc role, ``out_bits`` = activation role (the sums are quantized to it); a None role
  is float32 (32 bits). Multiply kind: both weight and activation ``binary`` → ``binary``
  (XNOR-popcount, 1 bit); weight ``binary``/``ternary``/``pow2`` → ``shift`` (multiplication-free:
  a sign flip or shift plus an add); any float operand (None role or ``kind == "float"``) →
  ``float``; otherwise ``int``. Each op counts its own operand and result bytes (devices places them
  at a memory level by working-set size), so the weights are read once per batch at their stored
  width (``b_bits``) and the activations at theirs.
* The bias add (and BatchNorm's scale and shift) is fused into the op before it and not costed
  separately: N adds next to N·K MACs, and bias bytes below 1/K of the weight bytes. One op = one
  kernel launch, so the op list is what a fused inference engine would run.
* Activations, pooling, BatchNorm, Dropout → ``Elementwise`` at the activation width, with these
  operations per element (a compare counts as an add): relu 1, hard_tanh 2, hard_sigmoid 3
  (mul, add, clamp), sign 1, tanh/sigmoid 4 (a rational approximation); MaxPool k·k−1 compares and
  AvgPool k·k adds per output; BatchNorm 1 mac (folded scale and shift) in inference, 4 in training.
  Flatten/Reshape and inference-mode Dropout cost nothing.

``training=True`` costs one optimizer step on the batch: the forward pass above, the loss (softmax
cross-entropy, 5 float ops per logit), and per layer in reverse order

* the error product ``dX = dY·Wᵀ`` (``a_bits`` = error role) and the gradient product
  ``dW = Xᵀ·dY`` (stored activations × errors, ``out_bits`` = grad role); the first layer with
  parameters needs no error product and the layers before it no backward at all; a convolution's
  two products are costed as their im2col GEMMs;
* the backward of each elementwise layer (1 mul per input element at the error width, 4 for BatchNorm);
* the update of each layer with parameters, one fused optimizer kernel: an ``Elementwise``
  read-modify-write of the master weights at the update width (SGD with momentum: 2 macs per
  parameter, Adam: 8, plus 1 for writing the weight-format copy when the weight role is set) and a
  ``Memory`` row for its other traffic: the gradients read at the grad width, the optimizer state
  (float32; SGD momentum: 1 array, Adam: 2) read and written, the weight-format copy written.

Any other layer costs itself: it defines ``workload_forward(b, label, x_shape, y_shape, training)``
and, if it has a backward cost, ``workload_backward(b, label, x_shape, y_shape, first)``, adding its
ops through the builder ``b`` (``b.gemm``, ``b.ew``, or ``b.ops.append(devices op)``; ``b.B`` is the
batch, ``b.r`` the roles' widths). Its update is costed like every layer's, from ``params()``.

Op names are ``"<layer name>/<part>"`` (``"<i>:<layer name>/<part>"``, ``i`` the layer's index, when
names repeat), so per-layer totals group by the text before ``/`` (:func:`layer_of`).
"""
from __future__ import annotations

import math
from typing import Any

import devices

from ._precision import ROLES

__all__ = ["workload", "layer_of"]

_ACT_OPS = {"relu": 1, "hard_tanh": 2, "hard_sigmoid": 3, "sign": 1, "tanh": 4, "sigmoid": 4}
_OPT = {"sgd": (2, 1), "adam": (8, 2)}  # ops per parameter, float32 state arrays per parameter
_MULT_FREE = ("binary", "ternary", "pow2")


def layer_of(op_name: str) -> str:
    """The layer label an op of :func:`workload` belongs to (the op name up to ``/``)."""
    return op_name.split("/", 1)[0]


class _Roles:
    """Bit widths and kinds of one Precision's roles (None role = 32-bit float)."""

    def __init__(self, precision: Any) -> None:
        self.q = {r: getattr(precision, r, None) if precision is not None else None
                  for r in ROLES}

    def bits(self, role: str) -> int:
        q = self.q[role]
        return 32 if q is None else int(q.bits)

    def kind(self, role: str) -> str:
        q = self.q[role]
        return "float" if q is None else str(q.kind)

    def number(self, role: str) -> str:
        """Elementwise number kind for values of ``role``."""
        return "float" if self.kind(role) == "float" else "int"

    def product(self, a_role: str, b_role: str) -> tuple[str, int, int]:
        """(kind, a_bits, b_bits) of a product of ``a_role`` values by ``b_role`` values."""
        ka, kb = self.kind(a_role), self.kind(b_role)
        a, b = self.bits(a_role), self.bits(b_role)
        if ka == kb == "binary":
            return "binary", 1, 1
        # A binary / ternary / power-of-two operand turns the multiply into a sign flip or a shift
        # (BinaryConnect: "MACs become additions"), also when the other operand is a float.
        if kb in _MULT_FREE:
            return "shift", a, b
        if ka in _MULT_FREE:
            return "shift", b, a
        if "float" in (ka, kb):
            return "float", a, b
        return "int", a, b


def _family(layer: Any) -> str:
    if hasattr(layer, "workload_forward"):
        return "Custom"
    names = {cls.__name__ for cls in type(layer).__mro__}
    for family in ("Dense", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm", "Dropout", "Reshape",
                   "Activation"):
        if family in names:
            return family
    raise TypeError(f"workload: no cost rule for layer {getattr(layer, 'name', layer)!r} "
                    f"({type(layer).__name__})")


def _bytes(n_values: int, bits: int) -> int:
    return math.ceil(n_values * bits / 8)


class _Builder:
    def __init__(self, roles: _Roles, batch: int) -> None:
        self.r, self.B, self.ops = roles, batch, []

    def take(self, phase) -> list:
        """Run ``phase(self)`` and return the ops it added."""
        self.ops = []
        phase(self)
        return self.ops

    def ew(self, name: str, n: int, role: str, ops: int, *, op: str = "add", inputs: int = 1,
           outputs: int = 1) -> None:
        if n > 0 and (ops > 0 or inputs + outputs > 0):
            self.ops.append(devices.Elementwise(name, n=n, bits=self.r.bits(role), ops_per_element=ops,
                                                inputs=inputs, outputs=outputs, op=op,
                                                kind=self.r.number(role)))

    def gemm(self, name: str, m: int, k: int, n: int, a_role: str, b_role: str, out_role: str) -> None:
        kind, a_bits, b_bits = self.r.product(a_role, b_role)
        self.ops.append(devices.MatMul(name, m=m, k=k, n=n, a_bits=a_bits, b_bits=b_bits,
                                       acc_bits=self.r.bits("acc"), kind=kind,
                                       out_bits=self.r.bits(out_role)))

    def forward(self, label: str, fam: str, layer: Any, x: tuple, y: tuple, training: bool) -> None:
        B, n_out = self.B, self.B * math.prod(y)
        if fam == "Dense":
            fan_in, fan_out = (int(d) for d in layer.W.shape)
            self.gemm(f"{label}/fwd", B, fan_in, fan_out, "activation", "weight", "activation")
        elif fam == "Conv2d":
            cout, cin, kh, kw = (int(d) for d in layer.W.shape)
            kind, a_bits, b_bits = self.r.product("activation", "weight")
            optical = getattr(layer, "optical", None)
            if optical is not None and optical.dac_bits is not None:  # the modulator's levels, no bit slices
                a_bits = min(a_bits, int(optical.dac_bits))
            self.ops.append(devices.Conv2d(
                f"{label}/fwd", batch=B, cin=cin, cout=cout, h=int(x[1]), w=int(x[2]), kh=kh, kw=kw,
                stride=int(layer.stride), pad=int(layer.padding), a_bits=a_bits, b_bits=b_bits,
                acc_bits=self.r.bits("acc"), kind=kind, out_bits=self.r.bits("activation")))
        elif fam in ("MaxPool2d", "AvgPool2d"):
            k = int(layer.k)
            per = k * k - 1 if fam == "MaxPool2d" else k * k
            self.ew(f"{label}/fwd", n_out, "activation", per,
                    inputs=max(1, round(math.prod(x) / math.prod(y))))
        elif fam == "BatchNorm":
            self.ew(f"{label}/fwd", n_out, "activation", 4 if training else 1, op="mac")
        elif fam == "Activation":
            self.ew(f"{label}/fwd", n_out, "activation", _ACT_OPS.get(str(layer.kind), 4))
        elif fam == "Dropout" and training:
            self.ew(f"{label}/fwd", n_out, "activation", 1, op="mul", inputs=2)
        elif fam == "Custom":
            layer.workload_forward(self, label, x, y, training)

    def backward(self, label: str, fam: str, layer: Any, x: tuple, y: tuple, first: bool) -> None:
        B, n_in = self.B, self.B * math.prod(x)
        if fam == "Dense":
            fan_in, fan_out = (int(d) for d in layer.W.shape)
            if not first:
                self.gemm(f"{label}/error", B, fan_out, fan_in, "error", "weight", "error")
            self.gemm(f"{label}/grad", fan_in, B, fan_out, "activation", "error", "grad")
        elif fam == "Conv2d":
            cout, cin, kh, kw = (int(d) for d in layer.W.shape)
            pixels = B * int(y[1]) * int(y[2])
            if not first:
                self.gemm(f"{label}/error", pixels, cout, cin * kh * kw, "error", "weight", "error")
            self.gemm(f"{label}/grad", cout, pixels, cin * kh * kw, "error", "activation", "grad")
        elif fam == "BatchNorm":
            self.ew(f"{label}/bwd", n_in, "error", 4, op="mac", inputs=2)
        elif fam in ("Activation", "MaxPool2d", "AvgPool2d", "Dropout"):
            self.ew(f"{label}/bwd", n_in, "error", 1, op="mul", inputs=2)
        elif fam == "Custom" and hasattr(layer, "workload_backward"):
            layer.workload_backward(self, label, x, y, first)

    def update(self, label: str, layer: Any, optimizer: str) -> None:
        n = sum(int(a.size) for a in layer.params().values())
        if n == 0:
            return
        ops, states = _OPT[optimizer]
        quantized_copy = self.r.q["weight"] is not None
        self.ew(f"{label}/update", n, "update", ops + quantized_copy, op="mac")
        self.ops.append(devices.Memory(
            f"{label}/opt_state", read_bytes=_bytes(n, self.r.bits("grad")) + states * n * 4,
            write_bytes=states * n * 4 + quantized_copy * _bytes(n, self.r.bits("weight"))))


def workload(net: Any, precision: Any = None, batch: int = 1, training: bool = False, *,
             optimizer: str = "adam") -> "devices.Workload":
    """The ``devices.Workload`` of one inference (or, with ``training=True``, one optimizer step) of
    ``batch`` examples through ``net`` (a ``Sequential``) under ``precision`` (see the module docstring).

    ``precision=None`` uses each layer's own ``.precision`` (the policy set on the model plus any
    per-layer override); a Precision given here applies to every layer. ``optimizer`` ("adam" or
    "sgd") sets the update cost of a training step.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    if optimizer not in _OPT:
        raise ValueError(f"optimizer must be one of {sorted(_OPT)}, got {optimizer!r}")
    layers = list(net.layers)
    shapes = [tuple(net.input_shape)]
    for layer in layers:
        shapes.append(tuple(layer.output_shape(shapes[-1])))
    labels = [layer.name for layer in layers]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{name}" for i, name in enumerate(labels)]
    families = [_family(layer) for layer in layers]
    builders = [_Builder(_Roles(precision if precision is not None else getattr(layer, "precision", None)),
                         batch) for layer in layers]
    ops = []
    for i, layer in enumerate(layers):
        ops += builders[i].take(lambda b: b.forward(labels[i], families[i], layer, shapes[i],
                                                    shapes[i + 1], training))
    if training:
        ops.append(devices.Elementwise("loss/softmax_xent", n=batch * math.prod(shapes[-1]), bits=32,
                                       ops_per_element=5, inputs=2, outputs=1, kind="float"))
        has_params = [any(int(a.size) for a in layer.params().values()) for layer in layers]
        first = has_params.index(True) if any(has_params) else len(layers)
        for i in reversed(range(first, len(layers))):
            ops += builders[i].take(lambda b: b.backward(labels[i], families[i], layers[i], shapes[i],
                                                         shapes[i + 1], first=i == first))
        for i, layer in enumerate(layers):
            ops += builders[i].take(lambda b: b.update(labels[i], layer, optimizer))
    return devices.Workload(ops)
