"""Import an ONNX graph as a ``devices.Workload`` (what one inference costs on a device).

``workload_from_onnx(path, precision, batch)`` reads the graph (``onnx.load`` without external
weight data: only shapes and element types are needed), sets the first dimension of every graph input
to ``batch`` (when given), runs ONNX shape inference and maps each node, in graph order, to devices ops:

* Conv (1-D or 2-D; groups, depthwise, strides, dilations, pads, auto_pad) → ``devices.Conv2d``
  (a 1-D convolution is a 2-D one with h = 1); Gemm → ``MatMul(m, k, n)``; MatMul → ``MatMul`` with
  m = the product of the leading dimensions (a product of two activations counts the second operand
  as the weight operand, read once).
* Folded, as deployment stacks fold them for inference (TensorRT, TFLite, OpenVINO, X-CUBE-AI):
  a BatchNormalization whose input is the output of a Conv / Gemm / MatMul with no other consumer,
  and an Add or Mul of a constant in that position (a bias or a TF-style BN scale / shift); conv and
  Gemm biases. They cost nothing; the surviving product writes their output. With
  ``fuse_activations=True`` (default) a pointwise activation (Relu, Clip, LeakyRelu, PRelu,
  HardSigmoid, HardSwish, Sigmoid, Tanh, Elu, Selu, Softplus, Gelu) that is the only consumer of
  such a product (after its folds) runs in the product's epilogue (free), and one that is the only
  consumer of an elementwise op (the ReLU after a residual Add) joins that op's pass (its ops per
  element added, no extra memory traffic); ``fuse_activations=False`` costs them as separate ops.
* Residual adds fused into the convolution epilogue, as TensorRT (its layer-fusion catalog:
  convolution + element-wise sum), OpenVINO and X-CUBE-AI run ``y = conv(x) + skip``: with
  ``fuse_residual=True`` (default) an Add of two non-constant tensors of its output's shape, one of
  which a Conv / Gemm / MatMul writes (after linear folds only) for this Add alone, runs in the
  epilogue of that product (of the later one in graph order when both qualify): the product reads
  the other input, the skip tensor, once more (``residual_bits`` of its op; one extra read, no
  separate pass, its adds not counted as ops) and writes the sum; with ``fuse_activations`` a ReLU
  after it joins the same epilogue. ``fuse_residual=False`` costs the Add as its own elementwise pass.
* Elementwise at the activation width, ops per element (a compare-and-select is op ``max``): Relu 1,
  LeakyRelu / PRelu / Clip / Abs / Neg / Max / Min 2 / 2 / 2 / 1 / 1 / 1 / 1, HardSigmoid 3,
  HardSwish 4, Sigmoid / Tanh / Elu / Selu / Softplus / Gelu / Erf / Exp / Log / Sqrt /
  Reciprocal 4 (a rational approximation), an unfolded BatchNormalization 1 mac, Add / Sub /
  Mul / Div 1 (residual adds read both inputs), Softmax / LogSoftmax 5 (max, exp, sum, divide),
  LRN size + 3. Each input that is as large as the output is read; smaller (broadcast) inputs are not
  counted.
* Pooling: MaxPool k·k − 1 compares and AveragePool k·k adds per output element, reading the input
  once; GlobalAveragePool / GlobalMaxPool / ReduceMean over the spatial axes: H·W per output.
* Transpose and Pad: a copy (0 ops, read and write). Flatten, Reshape, Squeeze, Unsqueeze, Identity,
  Dropout, Constant, Cast of a constant and Concat cost nothing (Concat: the producers write into the
  concatenated buffer, as TensorRT and TFLite plan it).
* QDQ int8 models: QuantizeLinear / DequantizeLinear nodes are folded into the integer kernels
  around them (not costed). A tensor that a DequantizeLinear produces from an integer tensor, or
  that a QuantizeLinear consumes, is stored at that integer width (int8 → 8 bits), and a product
  whose operands both are is an integer product with a 32-bit accumulator. Other tensors take the
  widths of ``precision`` (``hwsim.workload``'s rules: activation / weight / acc roles, None = 32-bit
  float).

An unsupported op is a ValueError naming the op type and node and listing the supported ones; with
``skip_unsupported=True`` it is a warning and the node becomes a ``devices.Memory`` op named
``"<node>/UNSUPPORTED <op type>"`` that moves its input and output bytes (never a silent zero).

Op names are ``"<node label>/<part>"`` (the node's name with ``/`` replaced by ``.``, or
``<op type>_<index>`` when it has none), so ``hwsim._workload.layer_of`` groups them per node.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import replace
from typing import Any

import devices

from ._workload import _Roles

__all__ = ["SUPPORTED_OPS", "workload_from_onnx"]

INSTALL_HINT = "ONNX import needs the 'onnx' package: pip install -e '.[onnx]' (or pip install onnx)"

#: ops per element (op kind) of the elementwise ONNX ops
_UNARY = {"Relu": (1, "max"), "LeakyRelu": (2, "mul"), "PRelu": (2, "mul"), "Clip": (2, "max"),
          "Abs": (1, "add"), "Neg": (1, "add"), "HardSigmoid": (3, "mac"), "HardSwish": (4, "mac"),
          "Sigmoid": (4, "mac"), "Tanh": (4, "mac"), "Elu": (4, "mac"), "Selu": (4, "mac"),
          "Softplus": (4, "mac"), "Gelu": (4, "mac"), "Erf": (4, "mac"), "Exp": (4, "mac"),
          "Log": (4, "mac"), "Sqrt": (4, "mac"), "Reciprocal": (4, "mac"), "Softmax": (5, "mac"),
          "LogSoftmax": (5, "mac"), "BatchNormalization": (1, "mac")}
_BINARY = {"Add": "add", "Sub": "add", "Max": "max", "Min": "max", "Mul": "mul", "Div": "mul"}
_FREE = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant", "Concat",
         "QuantizeLinear", "DequantizeLinear")
_COPY = ("Transpose", "Pad")
_POOL = ("MaxPool", "AveragePool")
_GLOBAL = ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean")
_PRODUCTS = ("Conv", "Gemm", "MatMul")
#: pointwise activations that deployment stacks run in the epilogue of the kernel before them
_EPILOGUE = ("Relu", "Clip", "LeakyRelu", "PRelu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "Elu",
             "Selu", "Softplus", "Gelu")
#: every op type the importer costs
SUPPORTED_OPS = tuple(sorted({*_UNARY, *_BINARY, *_FREE, *_COPY, *_POOL, *_GLOBAL, *_PRODUCTS, "LRN"}))
#: bits of the ONNX integer element types (QDQ stored widths)
_INT_BITS = {"INT8": 8, "UINT8": 8, "INT16": 16, "UINT16": 16, "INT4": 4, "UINT4": 4, "INT32": 32}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return onnx


def _load(onnx, model: Any, batch: int | None):
    """The ModelProto with every graph input's first dimension set to ``batch`` (None: a symbolic
    first dimension becomes 1, a fixed one stays), shapes inferred."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX model file not found: {path}")
        from google.protobuf.message import DecodeError  # onnx depends on protobuf
        try:
            model = onnx.load(path, load_external_data=False)
        except (DecodeError, OSError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    elif not isinstance(model, onnx.ModelProto):
        raise TypeError(f"model must be a path or an onnx.ModelProto, got {type(model).__name__}")
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())  # never edit the caller's graph
    inits = {t.name for t in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if len(dims) and (batch is not None or not dims[0].HasField("dim_value")):
            dims[0].ClearField("dim_param")
            dims[0].dim_value = batch or 1
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as exc:
        raise ValueError(f"ONNX shape inference failed: {exc}") from None


class _Graph:
    """Shapes, element types, producers and consumers of the tensors of an inferred graph."""

    def __init__(self, onnx, model) -> None:
        g = model.graph
        self.etype = onnx.TensorProto.DataType.Name
        self.init = {t.name: t for t in g.initializer}
        self.shape: dict[str, tuple[int, ...]] = {}
        self.dtype: dict[str, str] = {}
        for t in g.initializer:
            self.shape[t.name], self.dtype[t.name] = tuple(int(d) for d in t.dims), self.etype(t.data_type)
        for vi in [*g.input, *g.value_info, *g.output]:
            tt = vi.type.tensor_type
            if vi.name in self.init or not tt.HasField("shape"):
                continue
            self.dtype[vi.name] = self.etype(tt.elem_type)
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            if all(d is not None for d in dims):
                self.shape[vi.name] = tuple(dims)
        for node in g.node:  # Constant nodes are constants too
            if node.op_type == "Constant":
                for out in node.output:
                    self.init.setdefault(out, None)
        self.consumers: dict[str, list] = {}
        self.producer: dict[str, Any] = {}
        for node in g.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
            for name in node.output:
                self.producer[name] = node

    def dims(self, name: str, node_label: str) -> tuple[int, ...]:
        if name not in self.shape:
            raise ValueError(f"node {node_label!r}: shape of tensor {name!r} unknown after shape inference "
                             f"(a dynamic dimension other than the batch?)")
        return self.shape[name]

    def size(self, name: str, node_label: str) -> int:
        return math.prod(self.dims(name, node_label))

    def is_const(self, name: str) -> bool:
        return name in self.init


def _attrs(onnx, node) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _labels(nodes) -> list[str]:
    out, seen = [], set()
    for i, node in enumerate(nodes):
        label = node.name.strip("/").replace("/", ".") or f"{node.op_type}_{i}"
        if label in seen:
            label = f"{label}#{i}"
        seen.add(label)
        out.append(label)
    return out


def _stored_bits(graph: _Graph, nodes) -> dict[str, int]:
    """Integer widths of the tensors a QDQ graph stores quantized (see the module docstring)."""
    bits: dict[str, int] = {}
    for node in nodes:
        if node.op_type == "DequantizeLinear" and graph.dtype.get(node.input[0]) in _INT_BITS:
            bits[node.output[0]] = _INT_BITS[graph.dtype[node.input[0]]]
        elif node.op_type == "QuantizeLinear" and graph.dtype.get(node.output[0]) in _INT_BITS:
            bits[node.input[0]] = _INT_BITS[graph.dtype[node.output[0]]]
    return bits


def _const_operand(graph: _Graph, node) -> str | None:
    """The data input of a BatchNormalization, or of an Add / Mul with exactly one constant operand
    (None for other nodes)."""
    if node.op_type == "BatchNormalization":
        return node.input[0]
    if node.op_type in ("Add", "Mul") and len(node.input) == 2 and sum(map(graph.is_const, node.input)) == 1:
        return node.input[0] if graph.is_const(node.input[1]) else node.input[1]
    return None


class _Importer:
    def __init__(self, onnx, model, precision: Any, skip_unsupported: bool, fuse_activations: bool,
                 fuse_residual: bool) -> None:
        self.onnx, self.g, self.r = onnx, _Graph(onnx, model), _Roles(precision)
        self.nodes = list(model.graph.node)
        self.labels = _labels(self.nodes)
        self.qbits = _stored_bits(self.g, self.nodes)
        self.skip = skip_unsupported
        self.ops: list = []
        self.fuse = fuse_activations
        self.fuse_residual = fuse_residual
        self._skip: dict[str, str] = {}  # product-written tensor -> skip tensor its fused residual add reads
        self._fold_target: dict[str, str] = {}  # a folded node's input -> its output (the tensor written)
        self._folded: dict[str, str] = {}  # node output -> "product" | "elementwise": what absorbs it
        self._op_of: dict[str, int] = {}  # tensor -> index in self.ops of the elementwise op writing it

    def act_bits(self, name: str) -> int:
        return self.qbits.get(name, self.r.bits("activation"))

    def number(self, name: str) -> str:
        return "int" if name in self.qbits else self.r.number("activation")

    def out_bits(self, node) -> int:
        """Stored width of a product's result: that of the tensor it finally writes (after folds)."""
        name = node.output[0]
        while name in self._fold_target:
            name = self._fold_target[name]
        return self.qbits.get(name, self.r.bits("activation"))

    def residual_bits(self, node) -> int:
        """Stored width of the skip tensor a product's fused residual add reads (0: none)."""
        name = node.output[0]
        while name not in self._skip and name in self._fold_target:
            name = self._fold_target[name]
        return self.act_bits(self._skip[name]) if name in self._skip else 0

    def product_kind(self, a: str, b: str) -> tuple[str, int, int, int]:
        """(kind, a_bits, b_bits, acc_bits) of a product of tensors a (activation) and b (weight)."""
        if a in self.qbits and b in self.qbits:
            return "int", self.qbits[a], self.qbits[b], 32
        kind, a_bits, b_bits = self.r.product("activation", "weight")
        return kind, self.qbits.get(a, a_bits), self.qbits.get(b, b_bits), self.r.bits("acc")

    def _fold_pass(self) -> None:
        """Find the nodes folded into the op before them (see the module docstring) before costing,
        so that products know the tensor they finally write."""
        g = self.g
        root: dict[str, str] = {}  # tensor -> "product" | "elementwise": the kernel that writes it
        linear: set[str] = set()  # tensors a product writes with only linear folds after it
        made_at: dict[str, int] = {}  # tensor -> index of the node that writes it
        for i, node in enumerate(self.nodes):
            out = node.output[0] if node.output else ""
            made_at[out] = i
            if node.op_type in _PRODUCTS:
                root[out] = "product"
                linear.add(out)
                continue
            data, kind = _const_operand(g, node), None
            if data is not None and data in linear:
                kind = "product"
            elif data is None and node.op_type in _BINARY:
                data = self._residual_operand(node, linear, made_at)
                if data is None:
                    root[out] = "elementwise"
                else:
                    kind = "product"
                    self._skip[data] = next(x for x in node.input if x != data)
            elif self.fuse and node.op_type in _EPILOGUE and root.get(node.input[0]):
                data, kind = node.input[0], root[node.input[0]]
            if kind is not None and len(g.consumers.get(data, ())) == 1:
                self._folded[out] = kind
                self._fold_target[data] = out
                root[out] = kind
                if data in linear and node.op_type not in _EPILOGUE and data not in self._skip:
                    linear.add(out)  # a residual sum is not linear in the product: nothing folds after it

    def _residual_operand(self, node, linear: set[str], made_at: dict[str, int]) -> str | None:
        """The input of a residual Add that a product writes for it alone (see the module
        docstring), or None when the Add is not fused."""
        g = self.g
        if not self.fuse_residual or node.op_type != "Add" or len(node.input) != 2:
            return None
        shape = g.shape.get(node.output[0])
        if (shape is None or node.input[0] == node.input[1]
                or any(g.is_const(x) or g.shape.get(x) != shape for x in node.input)):
            return None
        fit = [x for x in node.input if x in linear and len(g.consumers.get(x, ())) == 1]
        return max(fit, key=made_at.__getitem__) if fit else None

    def run(self) -> devices.Workload:
        self._fold_pass()
        for node, label in zip(self.nodes, self.labels):
            self.node(node, label)
        return devices.Workload(self.ops)

    def ew(self, label: str, node, n: int, ops: int, op: str, inputs: int, outputs: int = 1) -> None:
        src = node.input[0] if node.input else node.output[0]
        self.ops.append(devices.Elementwise(f"{label}/fwd", n=n, bits=self.act_bits(src), ops_per_element=ops,
                                            inputs=inputs, outputs=outputs, op=op, kind=self.number(src)))
        self._op_of[node.output[0]] = len(self.ops) - 1

    def fuse_into_elementwise(self, node) -> None:
        """An activation after an elementwise op (e.g. the ReLU after a residual add): one pass."""
        idx = self._op_of[node.input[0]]
        op = self.ops[idx]
        self.ops[idx] = replace(op, ops_per_element=op.ops_per_element + _UNARY[node.op_type][0])
        self._op_of[node.output[0]] = idx

    def node(self, node, label: str) -> None:
        t, g = node.op_type, self.g
        if t in _FREE or (t == "Cast" and g.is_const(node.input[0])):
            return
        if node.output[0] in self._folded:
            if self._folded[node.output[0]] == "elementwise":
                self.fuse_into_elementwise(node)
            return
        if t == "Conv":
            self.conv(node, label)
        elif t == "Gemm":
            self.gemm(node, label)
        elif t == "MatMul":
            self.matmul(node, label)
        elif t in _UNARY or t == "LRN":
            ops, kind = _UNARY.get(t, (int(_attrs(self.onnx, node).get("size", 5)) + 3, "mac"))
            self.ew(label, node, g.size(node.output[0], label), ops, kind, 1)
        elif t in _BINARY:
            n = g.size(node.output[0], label)
            full = sum(1 for x in node.input if x and not g.is_const(x) and g.size(x, label) == n)
            self.ew(label, node, n, 1, _BINARY[t], max(full, 1))
        elif t in _COPY:
            self.ew(label, node, g.size(node.output[0], label), 0, "add", 1)
        elif t in _POOL:
            self.pool(node, label)
        elif t in _GLOBAL:
            n_in, n_out = g.size(node.input[0], label), g.size(node.output[0], label)
            per = max(1, round(n_in / n_out))
            self.ew(label, node, n_out, per, "max" if t == "GlobalMaxPool" else "add", per)
        else:
            self.not_supported(node, label)

    def not_supported(self, node, label: str) -> None:
        msg = (f"node {label!r}: op type {node.op_type!r} is not supported; supported: "
               f"{', '.join(SUPPORTED_OPS)}")
        if not self.skip:
            raise ValueError(msg + " (or pass --skip-unsupported to cost it as memory traffic only)")
        warnings.warn(msg + "; costed as its input and output memory traffic only", stacklevel=4)
        nbytes = [sum(math.ceil(self.g.size(x, label) * self.act_bits(x) / 8)
                      for x in names if x in self.g.shape)
                  for names in (node.input, node.output)]
        self.ops.append(devices.Memory(f"{label}/UNSUPPORTED {node.op_type}", read_bytes=nbytes[0],
                                       write_bytes=nbytes[1]))

    def conv(self, node, label: str) -> None:
        g, a = self.g, _attrs(self.onnx, node)
        x, w = node.input[0], node.input[1]
        xs, ws, ys = g.dims(x, label), g.dims(w, label), g.dims(node.output[0], label)
        if len(xs) == 3:  # 1-D convolution: a 2-D one on a 1 x L plane
            xs, ws, ys = (xs[0], xs[1], 1, xs[2]), (*ws[:2], 1, ws[2]), (ys[0], ys[1], 1, ys[2])
            strides, dil = [1, *a.get("strides", [1])], [1, *a.get("dilations", [1])]
            p = a.get("pads", [0, 0])
            pads = (0, int(p[0]), 0, int(p[1]))
        elif len(xs) == 4:
            strides, dil = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
            pads = tuple(int(p) for p in a.get("pads", [0, 0, 0, 0]))
        else:
            raise ValueError(f"node {label!r}: Conv on a {len(xs) - 2}-D input is not supported (1-D and 2-D "
                             "are)")
        kh, kw = ws[2], ws[3]
        if dil[0] != dil[1] and kh > 1 and kw > 1:
            raise ValueError(f"node {label!r}: unequal dilations {dil} are not supported")
        dilation = dil[1] if kh == 1 else dil[0]
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            tot = [max((math.ceil(n / s) - 1) * s + (k - 1) * dilation + 1 - n, 0)
                   for n, s, k in ((xs[2], strides[0], kh), (xs[3], strides[1], kw))]
            lo = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in tot]
            pads = (lo[0], lo[1], tot[0] - lo[0], tot[1] - lo[1])
        elif auto == "VALID":
            pads = (0, 0, 0, 0)
        kind, a_bits, b_bits, acc = self.product_kind(x, w)
        op = devices.Conv2d(f"{label}/fwd", batch=xs[0], cin=xs[1], cout=ws[0], h=xs[2], w=xs[3],
                            kh=kh, kw=kw,
                            stride=int(strides[0]), stride_w=int(strides[1]), pads=pads,
                            dilation=int(dilation),
                            groups=int(a.get("group", 1)), a_bits=a_bits, b_bits=b_bits, acc_bits=acc,
                            kind=kind, out_bits=self.out_bits(node), residual_bits=self.residual_bits(node))
        if (op.h_out, op.w_out) != tuple(ys[2:]):
            raise ValueError(f"node {label!r}: output {op.h_out}x{op.w_out} disagrees with shape inference "
                             f"{ys[2:]}")
        self.ops.append(op)

    def gemm(self, node, label: str) -> None:
        g, a = self.g, _attrs(self.onnx, node)
        (m, k), (k2, n) = g.dims(node.input[0], label), g.dims(node.input[1], label)
        if a.get("transA", 0):
            m, k = k, m
        if a.get("transB", 0):
            k2, n = n, k2
        self.product(label, node, m, k, n)

    def matmul(self, node, label: str) -> None:
        g = self.g
        xs, ws = g.dims(node.input[0], label), g.dims(node.input[1], label)
        if len(xs) < 2 or len(ws) < 2:
            raise ValueError(f"node {label!r}: MatMul of a vector is not supported (shapes {xs}, {ws})")
        lead = math.prod(xs[:-1]) if len(ws) == 2 else math.prod(g.dims(node.output[0], label)[:-1])
        self.product(label, node, lead, xs[-1], ws[-1])

    def product(self, label: str, node, m: int, k: int, n: int) -> None:
        kind, a_bits, b_bits, acc = self.product_kind(node.input[0], node.input[1])
        self.ops.append(devices.MatMul(f"{label}/fwd", m=m, k=k, n=n, a_bits=a_bits, b_bits=b_bits,
                                       acc_bits=acc,
                                       kind=kind, out_bits=self.out_bits(node),
                                       residual_bits=self.residual_bits(node)))

    def pool(self, node, label: str) -> None:
        g, a = self.g, _attrs(self.onnx, node)
        k = math.prod(a.get("kernel_shape", [1]))
        n_in, n_out = g.size(node.input[0], label), g.size(node.output[0], label)
        per, kind = (k - 1, "max") if node.op_type == "MaxPool" else (k, "add")
        self.ew(label, node, n_out, max(per, 0), kind, max(1, round(n_in / n_out)))


def workload_from_onnx(model: str | os.PathLike | Any, precision: Any = None, batch: int | None = None, *,
                       skip_unsupported: bool = False, fuse_activations: bool = True,
                       fuse_residual: bool = True) -> devices.Workload:
    """The ``devices.Workload`` of one inference of ``batch`` examples through the ONNX graph ``model``
    (a file path or an ``onnx.ModelProto``) under ``precision`` (an ``hwsim.Precision`` or None =
    float32; QDQ tensors keep their stored integer widths). ``batch`` replaces the first dimension of
    every graph input (None: the graph's own, 1 where it is symbolic; a Reshape that hard-codes the
    exported batch keeps it). See the module docstring for the op rules.

    Raises ImportError (with the install command) without the ``onnx`` package, FileNotFoundError for
    a missing file, ValueError for an unreadable graph or an unsupported op (unless
    ``skip_unsupported``: then a warning and a ``.../UNSUPPORTED <op>`` memory row per such node).
    """
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    onnx = _onnx()
    return _Importer(onnx, _load(onnx, model, batch), precision, skip_unsupported, fuse_activations,
                     fuse_residual).run()
