"""`quantize_model`: hwsim's own layers run inside a torch model, on zero-copy views of its tensors.

Each supported leaf module is replaced by a `HwsimModule` that holds the module's parameters (same
names, so ``state_dict`` keys do not change) and the equivalent hwsim layer, whose parameters are
views of the torch parameters (``nn.Linear``'s ``weight`` (out, in) is hwsim's ``W`` (in, out)
transposed, and is stored in hwsim's row-major order: its strides become (1, out), see
`_store_transposed`). Forward and backward are hwsim's layer code (`hwsim.layers`), so every tensor
role of the `hwsim.Precision` is quantized at the same point and with the same bits as in hwsim's
engine; a first ``nn.Linear``, whose input needs no gradient, skips hwsim's input-gradient product
(`Dense._backward_matrix(..., input_grad=False)`). Every plain ``nn.Sequential`` of the model becomes an
`HwsimSequential` (same children, names and ``state_dict``), which runs each run of consecutive wrapped
children as one autograd node: the same hwsim calls in the same order as one node per child, less of
autograd's per-node work (a child with hooks is called on its own, so its hooks run).

Gradient scale: hwsim's layers take the error of the summed loss and return mean-loss parameter
gradients (`hwsim.layers._base`). With ``loss_reduction="mean"`` (PyTorch's default) the gradient
entering a run of hwsim modules (one autograd node) is multiplied by the batch size N, so the
``error`` roles see the per-example errors hwsim's layers see; inside the run the errors pass from
layer to layer as in hwsim's engine, and the input gradient is divided by N where it leaves the run.
These two scalings are exact when N is a power of two. ``loss_reduction="sum"`` passes errors
unchanged and multiplies the parameter gradients by N.

What is guaranteed: the quantization points, formats, rounding, seeds and straight-through masks are
hwsim's own code, so for the same values they give the same bits. The float products of fast mode
run through torch's GEMM (`torch_matmul`; exact mode uses ``fixedpoint.matmul`` as in hwsim), and the
loss and the optimizer are PyTorch's: their float32 sums may differ from hwsim's numpy BLAS in the
last bit (another summation order). So a quantized model equals hwsim's layers bit for bit, step by
step, wherever that float arithmetic is exact — e.g. parameters, inputs and errors on coarse
fixed-point grids (tests/hwsim/test_torch.py) — and agrees to float32 rounding elsewhere.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as _module_api

from .. import layers as hl
from .._model import Sequential, assign_precision
from .._precision import Precision
from .._xp import get_array_module
from ._convert import as_array, as_tensor
from ._roles import as_precision

#: torch module type -> what it becomes; modules of other types are an error naming the type.
SUPPORTED = ("Linear", "Conv2d", "ReLU", "Tanh", "Sigmoid", "Hardtanh(-1, 1)", "Flatten", "MaxPool2d",
             "AvgPool2d", "Dropout", "BatchNorm1d", "BatchNorm2d", "Identity")

#: Attribute set on every parameter bound by quantize_model: (hwsim layer, hwsim name, transposed,
#: every hwsim layer of the model).
_BINDING = "hwsim_binding"


def torch_matmul(a, b):
    """``a @ b`` of two numpy arrays through torch's CPU GEMM on zero-copy views (the products of fast
    mode; exact mode never comes here). The float32 sums may differ from numpy's BLAS in the last bit
    (another summation order), never on values whose products and sums are exact."""
    if not isinstance(a, np.ndarray):  # CuPy arrays: cuBLAS through their own @
        return a @ b
    return torch.mm(torch.from_numpy(a), torch.from_numpy(b)).numpy()


#: The parameter dtypes hwsim.torch runs (hwsim computes in the numpy dtype of the same name).
DTYPES = (torch.float16, torch.float32, torch.float64)


def _numpy_dtype(dtype: torch.dtype, where: str) -> np.dtype:
    """The numpy dtype of the torch ``dtype`` of a module's parameters; TypeError unless in `DTYPES`."""
    if dtype not in DTYPES:
        raise TypeError(f"{where}: hwsim.torch runs float16, float32 or float64 parameters, got {dtype}; "
                        f"convert the model first (e.g. model.float())")
    return np.dtype(str(dtype).split(".")[-1])


def _pair(v, what: str, path: str) -> int:
    a, b = (v, v) if isinstance(v, int) else tuple(v)
    if a != b:
        raise TypeError(f"{path}: hwsim needs a square {what}, got {v!r}")
    return int(a)


def _layer_for(m: nn.Module, path: str):
    """(hwsim layer, [(hwsim name, torch name, transposed)], [(hwsim buffer, torch buffer)])."""
    t = type(m)
    if t is nn.Linear:
        layer = hl.Dense(m.in_features, m.out_features, dtype=_numpy_dtype(m.weight.dtype, path))
        binds = [("W", "weight", True)] + ([("b", "bias", False)] if m.bias is not None else [])
        if m.bias is None:
            layer.b = np.zeros_like(layer.b)
        return layer, binds, []
    if t is nn.Conv2d:
        if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" \
                or isinstance(m.padding, str) and m.padding != "valid":
            raise TypeError(f"{path}: hwsim's Conv2d needs groups=1, dilation=1 and zero padding given as "
                            f"numbers, got groups={m.groups}, dilation={m.dilation}, padding={m.padding!r}")
        pad = 0 if isinstance(m.padding, str) else _pair(m.padding, "padding", path)
        layer = hl.Conv2d(m.in_channels, m.out_channels, tuple(m.kernel_size),
                          _pair(m.stride, "stride", path),
                          pad, dtype=_numpy_dtype(m.weight.dtype, path))
        binds = [("W", "weight", False)] + ([("b", "bias", False)] if m.bias is not None else [])
        if m.bias is None:
            layer.b = np.zeros_like(layer.b)
        return layer, binds, []
    if t in (nn.ReLU, nn.Tanh, nn.Sigmoid):
        return hl.Activation({nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}[t]), [], []
    if t is nn.Hardtanh and (m.min_val, m.max_val) == (-1.0, 1.0):
        return hl.Activation("hard_tanh"), [], []
    if t is nn.Flatten and (m.start_dim, m.end_dim) == (1, -1):
        return hl.Flatten(), [], []
    if t in (nn.MaxPool2d, nn.AvgPool2d):
        k = _pair(m.kernel_size, "kernel", path)
        stride = k if m.stride is None else _pair(m.stride, "stride", path)
        if _pair(m.padding, "padding", path) != 0 or m.ceil_mode \
                or getattr(m, "dilation", 1) not in (1, (1, 1)):
            raise TypeError(f"{path}: hwsim's pooling needs padding=0, dilation=1, ceil_mode=False")
        return (hl.MaxPool2d if t is nn.MaxPool2d else hl.AvgPool2d)(k, stride), [], []
    if t is nn.Dropout:
        return hl.Dropout(m.p), [], []
    if t in (nn.BatchNorm1d, nn.BatchNorm2d):
        if not (m.affine and m.track_running_stats) or m.momentum is None:
            raise TypeError(f"{path}: hwsim's BatchNorm needs affine=True, track_running_stats=True and a "
                            "momentum")
        _numpy_dtype(m.weight.dtype, path)
        layer = hl.BatchNorm(m.num_features, m.eps, m.momentum)
        return layer, [("gamma", "weight", False), ("beta", "bias", False)], [
            ("running_mean", "running_mean"), ("running_var", "running_var")]
    raise TypeError(f"{path}: {t.__module__}.{t.__name__} is not supported by hwsim.torch; supported: "
                    f"{', '.join(SUPPORTED)}")


def _output_shape(module: "HwsimModule", shape: tuple, dtype: torch.dtype) -> tuple:
    """The output shape of ``module`` for an input of ``shape`` (batch axis first) and ``dtype``;
    ValueError (shape) or TypeError (dtype) naming the module's path and what it accepts. Results
    are cached per module, so a training loop pays a dictionary look-up."""
    own = module.param_dtype()
    key = (shape, dtype, own, module.training)
    known = module.checked_shapes.get(key)
    if known is not None:
        return known
    layer, where = module.layer, f"hwsim.torch: {module.path} ({module.source_type})"
    if own is not None:
        _numpy_dtype(own, where)  # TypeError for parameters of a dtype hwsim does not run
        if dtype != own:
            raise TypeError(f"{where} needs input of its parameters' dtype {own}, got {dtype}")
    if not dtype.is_floating_point:
        raise TypeError(f"{where} needs a floating-point input, got {dtype}")
    if type(layer) is hl.Dense:  # torch's Linear: (N, *, in_features)
        if len(shape) < 2 or shape[-1] != layer.in_features:
            raise ValueError(f"{where} needs input shape (N, ..., {layer.in_features}) with a batch axis "
                             f"first, got {shape}")
        out = (*shape[:-1], layer.out_features)
    else:
        form = _BATCHNORM_INPUT.get(module.source_type)
        if form is not None and len(shape) != form[0]:
            raise ValueError(f"{where} needs a {form[0]}-D input {form[1]} ({form[2]}), got input shape "
                             f"{shape}")
        if form is not None and module.training and shape[0] * math.prod(shape[2:]) < 2:
            raise ValueError(f"{where} needs more than 1 value per channel when training (as torch's), got "
                             f"input shape {shape}")
        if len(shape) < 2 and not isinstance(layer, (hl.Activation, hl.Dropout)):
            raise ValueError(f"{where} needs a batch axis first, got input shape {shape}")
        try:
            out = shape[:1] + tuple(layer.output_shape(shape[1:]))
        except ValueError as err:
            raise ValueError(f"{where}: {err} (shapes without the batch axis)") from None
    if len(module.checked_shapes) >= 64:
        module.checked_shapes.clear()
    module.checked_shapes[key] = out
    return out


#: The input each torch batch normalisation runs on in hwsim.torch, and why (hwsim's BatchNorm layer
#: takes both forms, so the torch module's own rule is checked here).
_BATCHNORM_INPUT = {"BatchNorm1d": (2, "(N, C)", "hwsim's BatchNorm has no (N, C, L) form"),
                    "BatchNorm2d": (4, "(N, C, H, W)", "as torch's BatchNorm2d")}


def _check_run(run, x: torch.Tensor) -> None:
    """Raise, before any module of ``run`` runs, if one of them cannot take what reaches it."""
    shape = tuple(x.shape)
    for m in run:
        shape = _output_shape(m, shape, x.dtype)


def _contiguous(a):
    """``a`` (numpy or CuPy) C-contiguous, copied only when it is not (as ``Tensor.contiguous``)."""
    return a if a.flags.c_contiguous else get_array_module(a).ascontiguousarray(a)


def _forward_step(module: "HwsimModule", xa):
    """``module``'s hwsim layer forward on the C-contiguous array ``xa`` (a copy when the result is a
    view of the input: flatten, eval dropout; an output never aliases the input of the step that made
    it), C-contiguous."""
    y = module.layer.forward(xa, training=module.training)
    share = getattr(get_array_module(y), "may_share_memory", None)
    if y is xa or (share is not None and share(y, xa)):
        y = y.copy()
    return _contiguous(y)


def _backward_step(module: "HwsimModule", call: int, training: bool, e, input_grad: bool) -> tuple:
    """``module``'s hwsim layer backward of the forward numbered ``call`` on the C-contiguous array
    ``e``, the error of the summed loss (hwsim's convention): (that of its input, C-contiguous, or
    None; [gradients of the module's parameters, as tensors, of the loss torch sees]). ``input_grad``
    False: the input needs no gradient (a first ``nn.Linear`` then skips hwsim's ``e W^T``
    product)."""
    if not training:
        raise RuntimeError(f"hwsim.torch: backward through {module.layer.name!r} run in eval mode; "
                           f"call model.train() before a training forward")
    if call != module.calls:
        raise RuntimeError(f"hwsim.torch: {module.layer.name!r} keeps the state of its last forward "
                           f"only; call backward before the next training forward")
    layer, dx = module.layer, None
    if not input_grad and type(layer) is hl.Dense and e.ndim == 2:
        layer._backward_matrix(e, e.shape[0], input_grad=False)  # a first layer: no e W^T
    else:
        dx = _contiguous(layer.backward(e))
    grads, n, out = layer.grads(), e.shape[0], []
    for hname, _, transposed in module.binds:
        d = grads[hname].T if transposed else grads[hname]
        out.append(as_tensor(d * d.dtype.type(n) if module.loss_reduction == "sum" else d))
    return dx, out


class _RunFunction(torch.autograd.Function):
    """A run of consecutive `HwsimModule` s (one, or a run of an `HwsimSequential`'s children) as one
    autograd node.

    Forward: each module in turn binds its parameters, counts its training call, runs its hwsim step
    and writes back its buffers. Backward runs the modules' steps last to first and stops after the
    first module whose input needs no gradient (autograd would never reach the modules before it).
    Between its modules the arrays pass as they are (C-contiguous), and the errors stay those of the
    summed loss, as in hwsim's engine: a ``"mean"`` gradient is multiplied by the batch size N where
    it enters the run and divided by N where it leaves. So a run makes the hwsim calls of one node per
    module in the same order and raises the same errors; its bits are those of one node per module
    when N is a power of two and no gradient divided by N is subnormal (one node per module rescales
    at every module), and otherwise those of hwsim's engine.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, modules: tuple, *params: torch.Tensor) -> torch.Tensor:
        calls, xa = [], as_array(x.contiguous())
        for m in modules:
            m._bind()
            if m.training:
                m.calls += 1
            calls.append(m.calls)
            xa = _forward_step(m, xa)
            m._write_buffers()
        ctx.modules, ctx.calls = modules, calls
        ctx.training = [m.training for m in modules]
        return as_tensor(xa)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        needs, modules = ctx.needs_input_grad, ctx.modules
        starts = [2]  # index in needs of each module's first parameter (after x and modules)
        for m in modules:
            starts.append(starts[-1] + len(m.binds))
        grads: list = [None] * (starts[-1] - 2)
        g = as_array(dy.contiguous())
        n = g.dtype.type(g.shape[0]) if g.ndim else g.dtype.type(1)
        mean = modules[-1].loss_reduction == "mean"
        if mean:
            g = g * n
        for i in reversed(range(len(modules))):
            input_grad = needs[0] or any(needs[2:starts[i]])
            g, out = _backward_step(modules[i], ctx.calls[i], ctx.training[i], g, input_grad)
            grads[starts[i] - 2:starts[i + 1] - 2] = out
            if not input_grad:
                g = None
                break
        if g is None:
            return (None, None, *grads)
        return (as_tensor(g / n if mean else g), None, *grads)


def _run_forward(run: list, x: torch.Tensor) -> torch.Tensor:
    """``x`` through the `HwsimModule` s of ``run`` as one autograd node (`_RunFunction`), once every
    module accepts what reaches it (`_check_run`: a bad input changes nothing)."""
    _check_run(run, x)
    return _RunFunction.apply(x, tuple(run), *(getattr(m, t) for m in run for _, t, _ in m.binds))


def _store_transposed(p: nn.Parameter) -> None:
    """Store ``p`` (an (out, in) weight) in hwsim's (in, out) row-major order: ``p`` keeps its shape,
    values and identity, its strides become (1, out) (a transposed view, as ``w.t().contiguous().t()``).
    Then hwsim's ``W = p.T`` is C-contiguous: the weight roles, the ``update`` role's stochastic draws
    (whose element order is hwsim's) and the gradient ``dW.T`` (whose strides now match ``p``'s, so
    autograd keeps it without a copy) need no transposing copy."""
    if not p.t().is_contiguous():
        with torch.no_grad():
            p.data = p.detach().t().contiguous().t()


class HwsimModule(nn.Module):
    """A torch module running the hwsim layer ``layer`` on the parameters of ``source`` (see module doc).

    Its parameters and buffers are those of ``source`` under the same names; ``calls`` counts the
    training forwards (a backward must follow its own forward); ``path`` is the module's name in the
    model (for error messages); ``checked_shapes`` caches `_output_shape`; ``model_layers`` lists
    every hwsim layer of the model (set by `quantize_model`; with the layer, it is what each bound
    parameter carries for `LowPrecisionOptimizer`, re-attached when the module is copied or unpickled,
    which drop a parameter's attributes).
    """

    def __init__(self, source: nn.Module, layer: Any, binds: list, buffers: list, loss_reduction: str,
                 path: str = ""):
        super().__init__()
        self.layer, self.binds, self.buffer_binds = layer, binds, buffers
        self.loss_reduction, self.calls, self.path = loss_reduction, 0, path or type(source).__name__
        self.source_type = type(source).__name__
        self.checked_shapes: dict = {}
        for _, tname, transposed in binds:
            p = getattr(source, tname)
            if transposed:
                _store_transposed(p)
            self.register_parameter(tname, p)
        for _, tname in buffers:
            self.register_buffer(tname, getattr(source, tname))
        self.train(source.training)
        self._bind()

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "model_layers" in state:
            self._attach_bindings()

    def _attach_bindings(self) -> None:
        """Mark each parameter with (hwsim layer, hwsim name, transposed, the model's hwsim layers)."""
        for hname, tname, transposed in self.binds:
            setattr(self._parameters[tname], _BINDING, (self.layer, hname, transposed, self.model_layers))

    def param_dtype(self) -> torch.dtype | None:
        """The dtype of the module's parameters (which its input must have), None without parameters."""
        return self._parameters[self.binds[0][1]].dtype if self.binds else None

    def _bind(self) -> None:
        """Point the hwsim layer's parameters and buffers at views of the current torch tensors."""
        for hname, tname, transposed in self.binds:
            view = as_array(getattr(self, tname))
            setattr(self.layer, hname, view.T if transposed else view)
        for hname, tname in self.buffer_binds:
            setattr(self.layer, hname, as_array(getattr(self, tname)))

    def _write_buffers(self) -> None:
        """Copy the buffers hwsim's forward replaced (BatchNorm's running statistics) into the torch ones."""
        for hname, tname in self.buffer_binds:
            new = getattr(self.layer, hname)
            view = as_array(getattr(self, tname))
            if new is not view:
                view[...] = new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_forward([self], x)

    def extra_repr(self) -> str:
        return f"{self.source_type} as hwsim {type(self.layer).__name__} {self.layer.name!r}"


def _hooked(m: nn.Module) -> bool:
    """True when calling ``m`` runs hooks (its own, or torch's global module hooks)."""
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
                or _module_api._global_forward_hooks or _module_api._global_forward_pre_hooks
                or _module_api._global_backward_hooks or _module_api._global_backward_pre_hooks)


class HwsimSequential(nn.Sequential):
    """An ``nn.Sequential`` that runs each run of consecutive `HwsimModule` children as one
    autograd node (`_RunFunction`: the same hwsim calls and errors as one node per child, less of
    autograd's per-node work). `quantize_model` gives every plain ``nn.Sequential`` of the
    model this class; children, their names, ``state_dict`` keys and indexing do not change. A child
    with hooks (or torch's global module hooks) is called on its own, so its hooks run."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        run: list = []
        for m in self:
            if isinstance(m, HwsimModule) and not _hooked(m):
                run.append(m)
                continue
            if run:
                x, run = _run_forward(run, x), []
            x = m(x)
        return _run_forward(run, x) if run else x


def _leaves(model: nn.Module, prefix: str = ""):
    """(parent, attribute name, module, path) of every leaf module, in registration order."""
    for name, child in model.named_children():
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, HwsimModule) or not any(True for _ in child.children()):
            yield model, name, child, path
        else:
            yield from _leaves(child, path)


def quantize_model(model: nn.Module, precision: Any = "fp32", *, seed: int | None = None,
                   loss_reduction: str = "mean", **roles: str) -> nn.Module:
    """Run ``model``'s layers through hwsim at ``precision``; returns ``model`` (changed in place).

    ``precision``: a `hwsim.Precision`, a preset (``"fp32"``, ``"fixed16"``, ``"fixed8"``,
    ``"fixed4"``) refined by CLI role strings (``weight="s8.7"``, ``activation="s8.4"``,
    ``update="s16.14:stochastic"``, ``mode="exact"`` via a Precision), or a scheme name (``"bnn"``,
    ``"binaryconnect"``: its policy). ``seed`` sets the policy seed. Leaf modules are numbered in
    registration order (the layer index of hwsim's seed rule), which must be the order the model
    runs them in (true for ``nn.Sequential``); functional calls (``F.relu``) are not quantized.
    A model quantized before gets the new policy. Unsupported module types raise TypeError naming
    the type and its path.
    """
    if loss_reduction not in ("mean", "sum"):
        raise ValueError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")
    if not any(True for _ in model.children()):
        name = type(model).__name__
        raise TypeError(f"model: quantize_model replaces the layers inside a model, and a bare {name} has "
                        f"none; wrap it: quantize_model(nn.Sequential(model), ...)")
    mode = roles.pop("mode", None)
    policy = as_precision(precision, seed, roles)
    if mode is not None:
        policy = Precision.from_dict({**policy.to_dict(), "mode": mode})
    layers = []
    for parent, name, child, path in list(_leaves(model)):
        if isinstance(child, HwsimModule):
            child.loss_reduction = loss_reduction
            layers.append(child.layer)
            continue
        if type(child) is nn.Identity:
            continue
        layer, binds, buffers = _layer_for(child, path)
        layer.matmul = torch_matmul
        wrapper = HwsimModule(child, layer, binds, buffers, loss_reduction, path)
        setattr(parent, name, wrapper)
        layers.append(layer)
    if not layers:
        raise TypeError(f"{type(model).__name__} has no module hwsim.torch can run; supported: "
                        f"{', '.join(SUPPORTED)}")
    for i, layer in enumerate(layers):
        layer.index = i
        layer.name = f"{layer.name.rstrip('0123456789')}{i}"
    assign_precision(layers, policy)
    for m in model.modules():
        if type(m) is nn.Sequential:
            m.__class__ = HwsimSequential
        if isinstance(m, HwsimModule):
            m.model_layers = layers
            m._attach_bindings()
    model.hwsim_precision = policy
    return model


def hwsim_layers(model: nn.Module) -> list:
    """The hwsim layers of a model from `quantize_model`, in index order."""
    found = [m.layer for m in model.modules() if isinstance(m, HwsimModule)]
    if not found:
        raise ValueError("the model has no hwsim layers: call hwsim.torch.quantize_model(model, ...) first")
    return sorted(found, key=lambda layer: layer.index)


def bound_parameter(p: torch.Tensor):
    """(hwsim layer, hwsim parameter name, transposed, all the model's hwsim layers) of a parameter
    bound by `quantize_model`, or None."""
    return getattr(p, _BINDING, None)


def to_hwsim(model: nn.Module, input_shape: tuple, precision: Any = None) -> Sequential:
    """An hwsim ``Sequential`` of the model's layers (batch axis excluded from ``input_shape``).

    A model from `quantize_model` shares its layers (and so its parameters) with the result and keeps
    its policy unless ``precision`` is given; any other model is converted into new hwsim layers with
    copies of its parameters."""
    if any(isinstance(m, HwsimModule) for m in model.modules()):
        layers = hwsim_layers(model)
        policy = (getattr(model, "hwsim_precision", None) if precision is None
                  else as_precision(precision, None, {}))
        for m in model.modules():
            if isinstance(m, HwsimModule):
                m._bind()
    else:
        layers = []
        for _, _, child, path in _leaves(model):
            if type(child) is nn.Identity:
                continue
            layer, binds, buffers = _layer_for(child, path)
            for hname, tname, transposed in binds:
                v = as_array(getattr(child, tname)).copy()
                setattr(layer, hname, np.ascontiguousarray(v.T) if transposed else v)
            for hname, tname in buffers:
                setattr(layer, hname, as_array(getattr(child, tname)).copy())
            layers.append(layer)
        policy = None if precision is None else as_precision(precision, None, {})
    net = Sequential(layers, input_shape)
    net.set_precision(policy if policy is not None else Precision())
    return net


def workload(model: nn.Module, example_input: torch.Tensor, precision: Any = None, *, training: bool = False,
             optimizer: str = "adam"):
    """The ``devices.Workload`` of one inference (or training step) of ``example_input``'s batch through
    ``model`` (`to_hwsim`, then ``hwsim.workload``), to cost with ``devices.estimate`` on any profile."""
    from .._workload import workload as hwsim_workload

    net = to_hwsim(model, tuple(example_input.shape[1:]), precision)
    return hwsim_workload(net, None, batch=int(example_input.shape[0]), training=training,
                          optimizer=optimizer)
