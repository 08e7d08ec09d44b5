"""`FixedArray`: an exact fixed-point array (int64 raw integers + one `Fixed` format).

Element ``i`` has the value ``raw[i] * 2**-fmt.frac``. Arithmetic is exact: every operation returns
a format wide enough to hold every possible result, so nothing is rounded until
:meth:`FixedArray.cast`. With ``I = word - frac`` the integer bits of a format (sign included) and
``F = max(frac_a, frac_b)``:

======================  ==========================================================================
``a + b``, ``a - b``    frac ``F``; word ``max(I_a, I_b) + F + 1``. Signed if either operand is
                        signed, and always for ``-``. When only one operand is signed, the
                        unsigned one counts one more integer bit (its signed equivalent):
                        ``s8.0 + u8.0`` is ``s10.0``. ``u8.0 - u8.0`` is ``s9.0``.
``-a``                  word + 1, signed.
``a * b``               word ``word_a + word_b``, frac ``frac_a + frac_b``, signed if either is.
``a @ b``               the product format, word + ``ceil(log2 K)`` for the K-term sums.
``a.sum(axis)``         word + ``ceil(log2 n)``, n = the number of elements summed.
======================  ==========================================================================

A result that would need more than 62 bits (or a frac outside [-64, 64]) raises ValueError naming
the operation and the width. Operands broadcast with numpy's rules. A Python/numpy int or float
scalar is converted exactly to the narrowest format holding it (``0.75`` -> ``u2.2``, ``-3`` ->
``s3.0``); one that no format holds (``1e-30``, inf, NaN) raises ValueError. Numpy arrays are not
converted implicitly (TypeError): use :meth:`FixedArray.from_float` with the format you mean.
"""
from __future__ import annotations

import math
from numbers import Rational, Real

import numpy as np

from ._backend import NUMBA_THRESHOLD, _choose_backend
from ._fixed_format import MAX_FRAC, MAX_WORD, MIN_FRAC, Fixed
from ._quantize import from_raw, to_raw
from ._shift_round import kernel_args, rescale, rescale_numba
from ._stats import QuantStats, check_stats
from ._validate import array_module, check_choice, is_cupy_array, resolve_seed

#: Backends of :meth:`FixedArray.cast` for numpy raw integers (CuPy ones always run the CUDA kernel).
CAST_BACKENDS = ("auto", "numpy", "numba")


class FixedArray:
    """An array of fixed-point numbers: ``raw`` (int64 ndarray) scaled by ``2**-fmt.frac``.

    ``FixedArray(raw, fmt)`` checks that every raw value lies in ``[fmt.raw_min, fmt.raw_max]``.
    Indexing, slicing, :meth:`reshape` and :attr:`T` return FixedArrays sharing memory with this one
    wherever numpy returns a view. ``raw`` may be a CuPy array: the FixedArray then lives on the GPU
    and every operation (arithmetic, ``@``, :meth:`cast`, ``matmul``) runs there with the same bits.
    """

    __slots__ = ("raw", "fmt")
    #: Numpy defers to our reflected operators, which refuse implicit conversion of arrays.
    __array_ufunc__ = None

    def __init__(self, raw, fmt: Fixed):
        if not isinstance(fmt, Fixed):
            raise TypeError(f"fmt must be a fixedpoint.Fixed, got {type(fmt).__name__}")
        xp = array_module(raw)
        arr = xp.asarray(raw)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"raw must be an integer array, got dtype {arr.dtype}")
        bad = (arr < fmt.raw_min) | (arr > fmt.raw_max)
        if bool(bad.any()):
            first = tuple(int(i) for i in xp.argwhere(bad)[0])
            raise ValueError(
                f"raw has {int(bad.sum())} values outside {fmt}'s range "
                f"[{fmt.raw_min}, {fmt.raw_max}], first at index {first}: {arr[first]}")
        self.raw = arr.astype(np.int64, copy=False)
        self.fmt = fmt

    @classmethod
    def _wrap(cls, raw: np.ndarray, fmt: Fixed) -> FixedArray:
        """A FixedArray around int64 ``raw`` known to be in range (no check, no copy)."""
        out = cls.__new__(cls)
        out.raw = raw
        out.fmt = fmt
        return out

    @classmethod
    def from_float(cls, x, fmt: Fixed, rounding: str = "nearest_even", overflow: str = "saturate",
                   **options) -> FixedArray:
        """Quantize real values ``x`` to ``fmt`` (:func:`fixedpoint.to_raw`; same options)."""
        raw = to_raw(x, fmt, rounding, overflow, **options)
        return cls._wrap(raw if is_cupy_array(raw) else np.asarray(raw), fmt)

    def to_float(self, dtype=np.float64) -> np.ndarray:
        """The values as floats (:func:`fixedpoint.from_raw`)."""
        return from_raw(self.raw, self.fmt, dtype=dtype)

    # ------------------------------------------------------------------ numpy-like structure
    @property
    def shape(self) -> tuple[int, ...]:
        return self.raw.shape

    @property
    def ndim(self) -> int:
        return self.raw.ndim

    @property
    def size(self) -> int:
        return self.raw.size

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index) -> FixedArray:
        return FixedArray._wrap(array_module(self.raw).asarray(self.raw[index]), self.fmt)

    def reshape(self, *shape) -> FixedArray:
        return FixedArray._wrap(self.raw.reshape(*shape), self.fmt)

    def transpose(self, *axes) -> FixedArray:
        return FixedArray._wrap(self.raw.transpose(*axes), self.fmt)

    @property
    def T(self) -> FixedArray:
        return self.transpose()

    def copy(self) -> FixedArray:
        return FixedArray._wrap(self.raw.copy(), self.fmt)

    def __repr__(self) -> str:
        raw = self.raw.get() if is_cupy_array(self.raw) else self.raw
        if self.fmt.word <= 53:  # float64 holds every value: show the values
            text = np.array2string(from_raw(raw, self.fmt), separator=", ", prefix="FixedArray(")
            return f"FixedArray({text}, fmt={self.fmt})"
        text = np.array2string(raw, separator=", ", prefix="FixedArray(raw=")
        return f"FixedArray(raw={text}, fmt={self.fmt})"

    # ------------------------------------------------------------------ exact arithmetic
    def __add__(self, other) -> FixedArray:
        return _add_sub(self, _operand(other, "+"), "add")

    def __radd__(self, other) -> FixedArray:
        return _add_sub(_operand(other, "+"), self, "add")

    def __sub__(self, other) -> FixedArray:
        return _add_sub(self, _operand(other, "-"), "subtract")

    def __rsub__(self, other) -> FixedArray:
        return _add_sub(_operand(other, "-"), self, "subtract")

    def __mul__(self, other) -> FixedArray:
        return _mul(self, _operand(other, "*"))

    def __rmul__(self, other) -> FixedArray:
        return _mul(_operand(other, "*"), self)

    def __neg__(self) -> FixedArray:
        fmt = _result_format("negate", self.fmt.word + 1, self.fmt.frac, True)
        return FixedArray._wrap(-self.raw, fmt)

    def __pos__(self) -> FixedArray:
        return self

    def __matmul__(self, other) -> FixedArray:
        from ._matmul import exact_matmul
        if not isinstance(other, FixedArray):
            raise TypeError(f"FixedArray @ {type(other).__name__}: both operands must be "
                            "FixedArrays")
        return exact_matmul(self, other)

    def sum(self, axis=None) -> FixedArray:
        """Exact sum over ``axis`` (None: all elements); the word grows by ``ceil(log2 n)``."""
        raw = self.raw.sum(axis=axis)
        axes = range(self.ndim) if axis is None else np.atleast_1d(axis).tolist()
        n = math.prod(self.shape[ax] for ax in axes)
        fmt = _result_format("sum", self.fmt.word + _growth_bits(n), self.fmt.frac, self.fmt.signed)
        return FixedArray._wrap(array_module(raw).asarray(raw, dtype=np.int64), fmt)

    # ------------------------------------------------------------------ the lossy step
    def cast(self, fmt: Fixed, rounding: str = "nearest_even", overflow: str = "saturate",
             seed: int | None = None, *, offset: int = 0, sr_bits: int | None = None,
             backend: str = "auto", stats: QuantStats | None = None) -> FixedArray:
        """Round to ``fmt`` (see :mod:`fixedpoint._shift_round` for the modes), then fit its word.

        Rounding acts on the exact value; ``overflow`` (``saturate`` / ``wrap``) acts after it.
        ``rounding="stochastic"`` draws for element ``i`` (flat C order) from counter ``offset + i``
        of ``seed`` (None: a fresh seed from the OS, recorded in ``stats.seed``). ``backend``:
        ``numpy``, ``numba`` or ``auto`` (Numba from ``fixedpoint._backend.NUMBA_THRESHOLD``
        elements); the bits are the same; CuPy raw integers run a CUDA kernel. ``stats`` (a
        :class:`QuantStats`) counts overflowed and flushed-to-zero elements and the errors; a cast
        with ``stats`` runs the numpy backend (on a copy in host memory for CuPy raw integers).
        """
        if not isinstance(fmt, Fixed):
            raise TypeError(f"fmt must be a fixedpoint.Fixed, got {type(fmt).__name__}")
        check_choice(backend, "backend", CAST_BACKENDS)
        check_stats(stats)
        if rounding == "stochastic":
            seed = resolve_seed(seed)
        shift = self.fmt.frac - fmt.frac
        on_gpu = is_cupy_array(self.raw)
        if on_gpu and stats is None:
            from ._matmul_cuda import rescale_cuda

            args = kernel_args(rounding, overflow, seed, offset, sr_bits, fmt)
            return FixedArray._wrap(rescale_cuda(self.raw, shift, *args), fmt)
        if on_gpu:
            import cupy

            raw = rescale(self.raw.get(), shift, fmt, rounding, overflow, seed=seed, offset=offset,
                          sr_bits=sr_bits, stats=stats)
            return FixedArray._wrap(cupy.asarray(raw), fmt)
        if stats is None and _choose_backend(backend, self.raw, NUMBA_THRESHOLD) == "numba":
            raw = rescale_numba(self.raw, shift, fmt, rounding, overflow, seed=seed,
                                offset=offset, sr_bits=sr_bits)
        else:
            raw = rescale(self.raw, shift, fmt, rounding, overflow, seed=seed, offset=offset,
                          sr_bits=sr_bits, stats=stats)
        return FixedArray._wrap(raw, fmt)


def _growth_bits(n: int) -> int:
    """Extra word bits for a sum of ``n`` terms: ``ceil(log2 n)`` (0 for n <= 1)."""
    return (n - 1).bit_length() if n > 1 else 0


def _result_format(op: str, word: int, frac: int, signed: bool) -> Fixed:
    if word > MAX_WORD:
        raise ValueError(f"{op}: the exact result needs a {word}-bit word, more than the "
                         f"{MAX_WORD}-bit limit; cast the operands to narrower formats first")
    if not MIN_FRAC <= frac <= MAX_FRAC:
        raise ValueError(f"{op}: the exact result needs frac={frac}, "
                         f"outside [{MIN_FRAC}, {MAX_FRAC}]")
    return Fixed(word, frac, signed)


def _operand(x, op: str) -> FixedArray:
    """``x`` as a FixedArray: FixedArrays pass, scalars convert exactly, arrays are refused."""
    if isinstance(x, FixedArray):
        return x
    if isinstance(x, Real) and np.ndim(x) == 0:
        return exact_scalar(x)
    raise TypeError(f"FixedArray {op} {type(x).__name__}: convert arrays explicitly with "
                    "FixedArray.from_float(x, fmt)")


def exact_scalar(x) -> FixedArray:
    """A 0-d FixedArray holding the real scalar ``x`` exactly, in the narrowest format."""
    if isinstance(x, Rational):
        num, den = int(x.numerator), int(x.denominator)
    else:
        if not math.isfinite(float(x)):
            raise ValueError(f"cannot use {x} in exact fixed-point arithmetic")
        num, den = float(x).as_integer_ratio()
    if den & (den - 1):
        raise ValueError(f"scalar {x!r} is not a binary fraction: no fixed-point format holds it")
    if num == 0:
        return FixedArray._wrap(np.asarray(0, dtype=np.int64), Fixed(1, 0, False))
    zeros = (num & -num).bit_length() - 1  # drop trailing zero bits: the narrowest raw
    num, frac = num >> zeros, den.bit_length() - 1 - zeros
    word = num.bit_length() if num > 0 else (-num - 1).bit_length() + 1
    if word > MAX_WORD or not MIN_FRAC <= frac <= MAX_FRAC:
        raise ValueError(f"scalar {x!r} has no exact fixed-point format: it needs word={word} "
                         f"(<= {MAX_WORD}) and frac={frac} (in [{MIN_FRAC}, {MAX_FRAC}])")
    return FixedArray._wrap(np.asarray(num, dtype=np.int64), Fixed(word, frac, num < 0))


def _add_sub(a: FixedArray, b: FixedArray, op: str) -> FixedArray:
    fa, fb = a.fmt, b.fmt
    frac = max(fa.frac, fb.frac)
    int_a, int_b = fa.word - fa.frac, fb.word - fb.frac
    if fa.signed != fb.signed:  # the unsigned operand needs one more integer bit as a signed number
        int_a += not fa.signed
        int_b += not fb.signed
    signed = fa.signed or fb.signed or op == "subtract"
    fmt = _result_format(op, max(int_a, int_b) + frac + 1, frac, signed)
    xp, ra, rb = _raw_pair(a, b)
    ra = ra << np.int64(frac - fa.frac)
    rb = rb << np.int64(frac - fb.frac)
    return FixedArray._wrap(xp.asarray(ra + rb if op == "add" else ra - rb), fmt)


def _raw_pair(a: FixedArray, b: FixedArray) -> tuple:
    """``(xp, a.raw, b.raw)`` in one array module: CuPy when either is a CuPy array (a numpy
    operand, e.g. an exact scalar, is copied to the GPU)."""
    if is_cupy_array(a.raw) or is_cupy_array(b.raw):
        import cupy

        return cupy, cupy.asarray(a.raw), cupy.asarray(b.raw)
    return np, a.raw, b.raw


def product_format(fa: Fixed, fb: Fixed, op: str = "multiply") -> Fixed:
    """The exact format of ``a * b``: word ``word_a + word_b``, frac ``frac_a + frac_b``."""
    return _result_format(op, fa.word + fb.word, fa.frac + fb.frac, fa.signed or fb.signed)


def _mul(a: FixedArray, b: FixedArray) -> FixedArray:
    fmt = product_format(a.fmt, b.fmt)
    xp, ra, rb = _raw_pair(a, b)
    return FixedArray._wrap(xp.asarray(ra * rb), fmt)
