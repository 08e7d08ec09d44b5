"""Workload operations: frozen dataclasses that count their own operations and bytes.

Units: ``ops`` are arithmetic operations (a multiply-accumulate counts as 2, as in FLOP/s peaks);
bytes are bytes moved at a memory level. ``*_bits`` are the stored bit widths of operands (1..64).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

#: number kinds of a multiply: integer, floating point, XNOR-popcount (1-bit), power-of-two weights
MATMUL_KINDS = ("auto", "int", "float", "binary", "shift")
#: structure of a MatMul's weight matrix (circulant / Fourier-diagonal products run on a 4f system)
STRUCTURES = ("dense", "circulant", "fourier_diagonal")
TRANSFORM_KINDS = ("fft", "dct", "fwht", "acdc")
ELEMENTWISE_KINDS = ("auto", "int", "float")
ELEMENTWISE_OPS = ("add", "mul", "mac", "max")


#: Largest count (dimension, element count, byte count) an op accepts: 2**53, so that every count and
#: every product of counts the cost model forms is a finite float64.
MAX_COUNT = 2**53


def _check_int(owner: str, name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__}")
    if value < low or value > (MAX_COUNT if high is None else high):
        upper = "..2**53 (counts must stay finite in float64)" if high is None else f"..{high}"
        shown = f"{value:.3g}" if abs(value) > MAX_COUNT else str(value)
        raise ValueError(f"{owner}: {name} must be in {low}{upper}, got {shown}")


def _check_choice(owner: str, name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{owner}: {name} must be one of {allowed}, got {value!r}")


def _check_name(owner: str, name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{owner}: name must be a non-empty str, got {name!r}")


def _check_level(owner: str, name: str, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{owner}: {name} must be a memory level name or None, got {value!r}")


def _check_sparsity(owner: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: sparsity must be a fraction in [0, 1), got {value!r}")


def resolve_kind(kind: str, *bits: int) -> str:
    """``auto`` means float when every operand is 16, 32 or 64 bits wide, else int."""
    if kind != "auto":
        return kind
    return "float" if all(b in (16, 32, 64) for b in bits) else "int"


def float_class(bits: int) -> str:
    """Peak-throughput class of a floating-point operand of ``bits`` bits (19-bit = tf32)."""
    if bits > 32:
        return "fp64"
    if bits > 19:
        return "fp32"
    if bits > 16:
        return "tf32"
    if bits > 8:
        return "fp16"
    return "fp8"


def int_class(bits: int) -> str:
    """Peak-throughput class of an integer operand of ``bits`` bits."""
    for width in (4, 8, 16, 32):
        if bits <= width:
            return f"int{width}"
    return "int64"


@dataclass(frozen=True)
class Traffic:
    """Bytes an op moves at one memory level (``None`` = placed by working-set size);
    ``written`` of them are stores (the rest loads), for profiles with separate read / write bandwidths."""

    level: str | None
    nbytes: float
    written: float = 0.0


@dataclass(frozen=True, kw_only=True)
class _Product:
    """Number format, sparsity and placement shared by MatMul and Conv2d (keyword-only fields)."""

    a_bits: int = 32
    b_bits: int = 32
    acc_bits: int = 32
    kind: str = "auto"
    out_bits: int | None = None
    sparsity: float = 0.0
    a_signed: bool = True
    b_signed: bool = True
    level: str | None = None
    weights_level: str | None = None
    residual_bits: int = 0

    def _check_product(self, who: str) -> None:
        for bits in ("a_bits", "b_bits", "acc_bits"):
            _check_int(who, bits, getattr(self, bits), 1, 64)
        if self.out_bits is not None:
            _check_int(who, "out_bits", self.out_bits, 1, 64)
        _check_int(who, "residual_bits", self.residual_bits, 0, 64)
        _check_choice(who, "kind", self.kind, MATMUL_KINDS)
        if self.kind == "binary" and (self.a_bits, self.b_bits) != (1, 1):
            raise ValueError(f"{who}: kind='binary' needs a_bits = b_bits = 1, "
                             f"got {self.a_bits}, {self.b_bits}")
        _check_sparsity(who, self.sparsity)
        _check_level(who, "level", self.level)
        _check_level(who, "weights_level", self.weights_level)

    def _traffic(self, inputs: int, outputs: int, weights: int) -> tuple[Traffic, ...]:
        """Activations in (a_bits) and out (out_bits, default acc_bits) at ``level``, plus a fused
        residual's skip tensor (one read of ``outputs`` values at residual_bits); weights at
        ``weights_level``."""
        out = self.acc_bits if self.out_bits is None else self.out_bits
        act = (inputs * self.a_bits + outputs * (out + self.residual_bits)) / 8
        return (Traffic(self.level, act, outputs * out / 8),
                Traffic(self.weights_level, weights * self.b_bits / 8))

    @property
    def number_kind(self) -> str:
        return resolve_kind(self.kind, self.a_bits, self.b_bits)

    @property
    def op_class(self) -> str:
        kind = self.number_kind
        if kind == "binary":
            return "binary"
        if kind == "float":
            return float_class(max(self.a_bits, self.b_bits))
        return int_class(self.a_bits if kind == "shift" else max(self.a_bits, self.b_bits))


@dataclass(frozen=True)
class MatMul(_Product):
    """``C[m,n] = A[m,k] @ B[k,n]``; ``A`` are activations (``a_bits``), ``B`` weights (``b_bits``).

    kind: ``auto`` (float when a_bits and b_bits are 16/32/64, else int) | ``int`` | ``float`` |
    ``binary`` (XNOR-popcount, a_bits = b_bits = 1) | ``shift``
    (power-of-two weights: each multiply is a shift, costed as an add of a_bits).
    ``sparsity`` is the fraction of zero weights; it reduces ops only on profiles that declare
    ``exploits_sparsity = true``. ``residual_bits`` > 0: a residual add fused into the epilogue
    (as TensorRT, OpenVINO and X-CUBE-AI run ``y = conv(x) + skip``): the kernel also reads a skip
    tensor of the output's shape at that width (one extra read, no separate pass; its adds run in the
    epilogue and are not counted in ``ops``). ``structure`` = circulant / fourier_diagonal needs k == n and
    lets a 4f optical system run the product. ``level`` places A and C, ``weights_level`` B.
    ``stored_weights``: the number of distinct weight values read (None: all of B's; fewer for
    shared/hashed weights, whose B is rebuilt on chip from them) — sets the weight traffic.
    """

    name: str
    m: int
    k: int
    n: int
    structure: str = "dense"
    stored_weights: int | None = None

    family = "matmul"

    def __post_init__(self) -> None:
        who = f"MatMul {self.name!r}"
        _check_name("MatMul", self.name)
        for dim in ("m", "k", "n"):
            _check_int(who, dim, getattr(self, dim), 1)
        self._check_product(who)
        _check_choice(who, "structure", self.structure, STRUCTURES)
        if self.structure != "dense" and self.k != self.n:
            raise ValueError(f"{who}: structure={self.structure!r} needs k == n, got k={self.k}, n={self.n}")
        if self.stored_weights is not None:
            _check_int(who, "stored_weights", self.stored_weights, 1, self.k * self.n)

    @property
    def macs(self) -> int:
        """Multiply-accumulates. Dense: ``m·k·n``. Circulant / Fourier-diagonal (``k == n``): what
        electronic hardware runs instead of the n×n product, per row a real FFT, the spectral
        product and an inverse real FFT: ``5·n·log2 n + 6·(n/2 + 1)`` operations (two real FFTs of
        2.5·n·log2 n, n/2 + 1 complex multiplies of 6), counted as half as many MACs. The optical
        model uses the geometry instead."""
        if self.structure == "dense":
            return self.m * self.k * self.n
        return math.ceil(self.m * (5 * self.n * math.log2(self.n) + 6 * (self.n // 2 + 1)) / 2)

    @property
    def ops(self) -> int:
        return 2 * self.macs

    @property
    def weight_elements(self) -> int:
        if self.stored_weights is not None:
            return self.stored_weights
        return self.n if self.structure != "dense" else self.k * self.n

    @property
    def gemm_dims(self) -> tuple[int, int, int]:
        """(m, k, n) of the matrix product (the size index of matmul efficiency curves is their min)."""
        return self.m, self.k, self.n

    def traffic(self) -> tuple[Traffic, ...]:
        return self._traffic(self.m * self.k, self.m * self.n, self.weight_elements)


@dataclass(frozen=True)
class Conv2d(_Product):
    """2-D convolution, NCHW, ``(h, w)`` input plane, zero padding ``pad`` (default: "same" for odd kernels).

    The cost-model op ``devices.Conv2d``: sizes and bit widths, no weights. Not ``hwsim.Conv2d``, the
    trainable layer; ``hwsim.workload`` turns one of those into this op.

    ``groups`` splits the channels into groups convolved separately (``cin`` and ``cout`` divisible
    by it); ``groups == cin`` with ``cout`` a multiple of ``cin`` is a depthwise convolution (family
    ``conv``, efficiency and overhead key ``depthwise``: a profile can give it its own, lower rate);
    a :attr:`fastconv` one has key ``fastconv`` (a profile can give it the rate of an FFT / Winograd
    algorithm, counted in direct-convolution ops).
    ``stride`` applies to both axes unless ``stride_w`` is given; ``dilation`` to both axes;
    ``pads = (top, left, bottom, right)`` (ONNX order: begins then ends) overrides ``pad``.

    Ops = 2 · batch · cout · h_out · w_out · (cin / groups) · kh · kw. Bits and kinds as in :class:`MatMul`.
    """

    name: str
    batch: int
    cin: int
    cout: int
    h: int
    w: int
    kh: int
    kw: int
    stride: int = 1
    pad: int | None = None
    groups: int = 1
    dilation: int = 1
    stride_w: int | None = None
    pads: tuple[int, int, int, int] | None = None

    family = "conv"

    def __post_init__(self) -> None:
        who = f"Conv2d {self.name!r}"
        _check_name("Conv2d", self.name)
        for dim in ("batch", "cin", "cout", "h", "w", "kh", "kw", "stride", "groups", "dilation"):
            _check_int(who, dim, getattr(self, dim), 1)
        if self.stride_w is not None:
            _check_int(who, "stride_w", self.stride_w, 1)
        if self.pad is not None:
            _check_int(who, "pad", self.pad, 0)
        if self.pads is not None:
            if not isinstance(self.pads, tuple) or len(self.pads) != 4:
                raise ValueError(f"{who}: pads must be a tuple (top, left, bottom, right), got {self.pads!r}")
            for p in self.pads:
                _check_int(who, "pads[i]", p, 0)
        if self.cin % self.groups or self.cout % self.groups:
            raise ValueError(f"{who}: cin ({self.cin}) and cout ({self.cout}) must be divisible by "
                             f"groups ({self.groups})")
        self._check_product(who)
        if self.h_out < 1 or self.w_out < 1:
            raise ValueError(f"{who}: kernel {self.kh}x{self.kw} larger than padded input {self.h}x{self.w}")

    @property
    def padding(self) -> tuple[int, int]:
        """(rows, columns) of zero padding on the top / left side."""
        if self.pads is not None:
            return self.pads[0], self.pads[1]
        if self.pad is not None:
            return self.pad, self.pad
        return (self.kh - 1) // 2, (self.kw - 1) // 2

    def _padded(self) -> tuple[int, int]:
        """Total padding (rows, columns), both sides."""
        if self.pads is not None:
            return self.pads[0] + self.pads[2], self.pads[1] + self.pads[3]
        return 2 * self.padding[0], 2 * self.padding[1]

    @property
    def h_out(self) -> int:
        return (self.h + self._padded()[0] - self.dilation * (self.kh - 1) - 1) // self.stride + 1

    @property
    def w_out(self) -> int:
        sw = self.stride if self.stride_w is None else self.stride_w
        return (self.w + self._padded()[1] - self.dilation * (self.kw - 1) - 1) // sw + 1

    @property
    def depthwise(self) -> bool:
        """One input channel per group (groups == cin > 1)."""
        return self.groups > 1 and self.groups == self.cin

    @property
    def fastconv(self) -> bool:
        """A dense (groups == 1) convolution with stride 1 on both axes, no dilation and a kernel larger
        than 1x1: the shapes that reduced-arithmetic convolution algorithms accept (cuDNN's forward FFT
        and FFT_TILING need filter stride 1; its Winograd, from cuDNN 5, 3x3 at stride 1), which do
        fewer multiplications than the direct product counted in ``ops``. Efficiency / overhead key
        ``fastconv`` (falling back to ``conv``)."""
        return (self.groups == 1 and self.stride == 1 and self.stride_w in (None, 1) and self.dilation == 1
                and self.kh * self.kw > 1)

    @property
    def macs(self) -> int:
        return (self.batch * self.cout * self.h_out * self.w_out
                * (self.cin // self.groups) * self.kh * self.kw)

    @property
    def ops(self) -> int:
        return 2 * self.macs

    @property
    def weight_elements(self) -> int:
        return self.cout * (self.cin // self.groups) * self.kh * self.kw

    @property
    def gemm_dims(self) -> tuple[int, int, int]:
        """(m, k, n) of one group's im2col product: (batch·h_out·w_out, cin/groups·kh·kw, cout/groups)."""
        return (self.batch * self.h_out * self.w_out, self.cin // self.groups * self.kh * self.kw,
                self.cout // self.groups)

    def traffic(self) -> tuple[Traffic, ...]:
        return self._traffic(self.batch * self.cin * self.h * self.w,
                             self.batch * self.cout * self.h_out * self.w_out, self.weight_elements)


@dataclass(frozen=True)
class Elementwise:
    """``n`` elements, each read from ``inputs`` arrays and written to ``outputs`` arrays.

    ``ops_per_element`` operations of type ``op``: add, mul, mac, or max (a compare-and-select:
    ReLU, max pooling; its energy is an add's, its rate may differ: efficiency curves qualified
    ``@<op>``, e.g. ``elementwise_fp32@max``, measured by calibrate).
    kind ``auto`` = float for 16/32/64 bits, int otherwise.
    """

    name: str
    n: int
    bits: int = 32
    ops_per_element: int = 1
    inputs: int = 1
    outputs: int = 1
    op: str = "add"
    kind: str = "auto"
    level: str | None = None

    family = "elementwise"

    def __post_init__(self) -> None:
        who = f"Elementwise {self.name!r}"
        _check_name("Elementwise", self.name)
        _check_int(who, "n", self.n, 1)
        _check_int(who, "bits", self.bits, 1, 64)
        _check_int(who, "ops_per_element", self.ops_per_element, 0)
        _check_int(who, "inputs", self.inputs, 0)
        _check_int(who, "outputs", self.outputs, 0)
        _check_choice(who, "op", self.op, ELEMENTWISE_OPS)
        _check_choice(who, "kind", self.kind, ELEMENTWISE_KINDS)
        _check_level(who, "level", self.level)

    @property
    def number_kind(self) -> str:
        return resolve_kind(self.kind, self.bits)

    @property
    def ops(self) -> int:
        return self.n * self.ops_per_element

    @property
    def op_class(self) -> str:
        return float_class(self.bits) if self.number_kind == "float" else int_class(self.bits)

    def traffic(self) -> tuple[Traffic, ...]:
        return (Traffic(self.level, self.n * (self.inputs + self.outputs) * self.bits / 8,
                        self.n * self.outputs * self.bits / 8),)


@dataclass(frozen=True)
class Transform:
    """``count`` fast transforms of ``n`` points; ``bits`` per real component.

    Ops (the usual radix-2 counts): fft 5·n·log2 n on complex data; dct 2.5·n·log2 n (real,
    via a half-size complex FFT); fwht n·log2 n additions; acdc (the ACDC layer
    A·IDCT·D·DCT·x fused in one kernel) 4·n + 5·n·log2 n. Bytes: read n values and write n
    values (complex values for fft count two components).
    """

    name: str
    kind: str
    n: int
    count: int = 1
    bits: int = 32
    level: str | None = None

    family = "transform"

    def __post_init__(self) -> None:
        who = f"Transform {self.name!r}"
        _check_name("Transform", self.name)
        _check_choice(who, "kind", self.kind, TRANSFORM_KINDS)
        _check_int(who, "n", self.n, 2)
        _check_int(who, "count", self.count, 1)
        _check_int(who, "bits", self.bits, 1, 64)
        _check_level(who, "level", self.level)

    @property
    def ops(self) -> float:
        lg = math.log2(self.n)
        per = {"fft": 5 * lg, "dct": 2.5 * lg, "fwht": lg, "acdc": 4 + 5 * lg}[self.kind]
        return self.count * self.n * per

    @property
    def op_class(self) -> str:
        if self.kind == "fwht" and self.bits not in (16, 32, 64):
            return int_class(self.bits)
        return float_class(self.bits)

    def traffic(self) -> tuple[Traffic, ...]:
        comps = 2 if self.kind == "fft" else 1
        half = self.count * self.n * comps * self.bits / 8
        return (Traffic(self.level, 2 * half, half),)


@dataclass(frozen=True)
class Memory:
    """Traffic not tied to one op (e.g. loading weights from flash or DRAM)."""

    name: str
    level: str | None = None
    read_bytes: int = 0
    write_bytes: int = 0

    family = "memory"
    ops = 0
    op_class = "-"

    def __post_init__(self) -> None:
        who = f"Memory {self.name!r}"
        _check_name("Memory", self.name)
        _check_int(who, "read_bytes", self.read_bytes, 0)
        _check_int(who, "write_bytes", self.write_bytes, 0)
        _check_level(who, "level", self.level)

    def traffic(self) -> tuple[Traffic, ...]:
        return (Traffic(self.level, self.read_bytes + self.write_bytes, self.write_bytes),)


Op = MatMul | Conv2d | Elementwise | Transform | Memory
OP_TYPES = (MatMul, Conv2d, Elementwise, Transform, Memory)


@dataclass(frozen=True)
class Workload:
    """An ordered list of ops, executed one after another. Op names must be unique."""

    ops: tuple[Op, ...] = field(default_factory=tuple)

    def __init__(self, ops=()) -> None:  # noqa: D107 - accepts any iterable of ops
        ops = tuple(ops)
        for i, op in enumerate(ops):
            if not isinstance(op, OP_TYPES):
                raise TypeError(f"Workload: ops[{i}] must be a devices op, got {type(op).__name__}")
        dup = sorted(name for name, n in Counter(op.name for op in ops).items() if n > 1)
        if dup:
            raise ValueError(f"Workload: op names must be unique, repeated: {dup}")
        object.__setattr__(self, "ops", ops)

    def __iter__(self):
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)
