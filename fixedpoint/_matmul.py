"""Exact fixed-point matrix products and `matmul` with an explicit accumulator format.

``matmul(a, b, acc, out, ...)`` emulates a MAC array bit for bit:

1. Every product ``a[m, k] * b[k, n]`` is exact (format ``word_a + word_b``, ``frac_a + frac_b``).
2. It is aligned to ``acc.frac``: when ``acc.frac < frac_a + frac_b`` *each product is rounded on
   its own* with ``rounding`` (as a hardware MAC with a narrower accumulator does; the stochastic
   draw of product ``(m, n, k)`` uses counter ``offset + (m * N + n) * K + k``); when it is larger,
   zero bits are appended.
3. Accumulation in ``acc``: ``acc_overflow="wrap"`` keeps the exact sum modulo ``2**acc.word``
   (two's complement; order-free); ``"saturate"`` adds in index order k = 0..K-1 and clamps to the
   acc range after every addition, as a saturating MAC unit does.
4. The accumulator is cast to ``out`` with ``rounding`` / ``overflow`` (stochastic draws: counter
   ``offset + M * N * K + m * N + n``).

How it is computed (all paths give the same bits):

* wrap, no product rounding: the integer product ``sum_k a*b`` modulo ``2**64`` from float64 BLAS.
  A float64 matmul is exact when every partial sum stays below ``2**53``, which
  ``max|a| * max|b| * K <= 2**53`` guarantees; otherwise K is cut into chunks and the operands into
  limbs of a few bits (``a = sum_i a_i 2**(i*la)``) so that each partial BLAS product is exact, and
  the partial results are recombined with int64 shifts modulo ``2**64``.
* saturate, when no partial sum can leave the acc range (``max|a| * max|b| * K``, aligned, within
  it): the same as the exact sum, so the BLAS path.
* otherwise (product rounding, or saturation possible): a parallel Numba loop over the rows.

CuPy operands (FixedArrays whose ``raw`` is a CuPy array) take the same paths on the GPU: the
limb products through cuBLAS float64 GEMMs (``cupy.matmul``), the MAC loop and the epilogue as
CUDA kernels (``_matmul_cuda``) running the same scalar functions; the bits are identical.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._fixed_array import FixedArray, _growth_bits, _raw_pair, _result_format, product_format
from ._fixed_format import Fixed
from ._fixed_scalar import STOCHASTIC
from ._shift_round import (
    _scalar_bits,
    bias_terms,
    fit_word_scalar,
    kernel_args,
    rescale,
    rescale_scalar,
    round_biased,
)
from ._stats import QuantStats, check_stats
from ._validate import (
    OVERFLOW_MODES,
    array_module,
    check_choice,
    check_overflow,
    check_rounding,
    is_cupy_array,
    resolve_seed,
)

#: float64 holds every integer of magnitude <= 2**53.
EXACT_BITS = 53
#: Longest K chunk of a split BLAS product (2**12 terms leaves 41 bits for the limb products).
MAX_CHUNK_BITS = 12
#: Aligned products are clamped to this window (saturate) or taken modulo 2**63 (wrap) inside the
#: MAC kernel; both leave every 62-bit accumulator result unchanged and keep int64 sums exact.
_P_LO, _P_HI = -(1 << 62), (1 << 62) - 1
#: Rows of ``a`` per block of the MAC loop (each row of ``b`` is read once per block).
ROWS = 8


# --------------------------------------------------------------------------- exact integer product
def _max_abs(x) -> int:
    """The largest magnitude in int64 ``x`` (0 when empty), without a temporary array."""
    return max(int(x.max()), -int(x.min()), 0) if x.size else 0


def _limbs(x: np.ndarray, n: int, bits: int) -> list[np.ndarray]:
    """Float64 limbs with ``x = sum_i limb_i * 2**(i*bits)``: low ones in [0, 2**bits), top signed."""
    mask = np.int64((1 << bits) - 1)
    out = [((x >> np.int64(i * bits)) & mask).astype(np.float64) for i in range(n - 1)]
    out.append((x >> np.int64((n - 1) * bits)).astype(np.float64))
    return out


def _split_plan(ma: int, mb: int, budget: int) -> tuple[int, int, int, int]:
    """``(na, la, nb, lb)``: fewest limb products with ``la + lb <= budget``."""
    best = None
    for na in range(1, ma + 1):
        la = -(-ma // na)
        lb = budget - la
        if lb < 1:
            continue
        nb = -(-mb // lb)
        if best is None or na * nb < best[0] * best[2]:
            best = (na, la, nb, -(-mb // nb))
    return best


def dot_mod64(a: np.ndarray, b: np.ndarray, mod_bits: int = 64, fmts: tuple | None = None
              ) -> np.ndarray:
    """An int64 matrix congruent to ``a @ b`` (int64 matrices) modulo ``2**mod_bits``, via BLAS.

    With ``mod_bits = 64`` it is the exact product whenever that fits in int64. A smaller
    ``mod_bits`` (the bits the caller keeps) lets limb products that only reach higher bits be
    skipped. ``fmts`` (the operands' Fixed formats) bound the magnitudes without reading the data.
    """
    return _dot(a, b, mod_bits, fmts).astype(np.int64, copy=False)


def _dot(a: np.ndarray, b: np.ndarray, mod_bits: int, fmts: tuple | None) -> np.ndarray:
    """:func:`dot_mod64`, left as float64 (exact integers) when one BLAS product suffices."""
    K = a.shape[1]
    kbits = _growth_bits(K)
    if fmts is not None and sum(f.word - f.signed for f in fmts) + kbits <= EXACT_BITS:
        ma = mb = 0  # the formats alone prove one float64 product exact
    else:
        ma, mb = _max_abs(a).bit_length(), _max_abs(b).bit_length()
    if ma + mb + kbits <= EXACT_BITS:
        return a.astype(np.float64) @ b.astype(np.float64)
    chunk_bits = min(kbits, MAX_CHUNK_BITS)
    na, la, nb, lb = _split_plan(ma, mb, EXACT_BITS - chunk_bits)
    total = array_module(a).zeros((a.shape[0], b.shape[1]), dtype=np.uint64)
    step = 1 << chunk_bits
    for k0 in range(0, K, step):
        a_limbs = _limbs(a[:, k0:k0 + step], na, la)
        b_limbs = _limbs(b[k0:k0 + step], nb, lb)
        for i, al in enumerate(a_limbs):
            for j, bl in enumerate(b_limbs):
                shift = i * la + j * lb
                if shift < mod_bits:
                    part = (al @ bl).astype(np.int64).astype(np.uint64)
                    total += part << np.uint64(shift)
    return total.astype(np.int64)


# --------------------------------------------------------------------------- the MAC loop
@njit(cache=True, inline="always")
def _accumulate_one(total, p, lo, hi, wrap):
    """``total + p``: modulo 2**64 (wrap; reduced to the acc word at the end) or clamped."""
    if wrap:
        return np.int64(np.uint64(total) + np.uint64(p))
    return min(max(total + p, lo), hi)


@njit(parallel=True, cache=True)
def _mac_kernel(a, b, shift, mode, key, offset, k, lo, hi, wrap, out):
    """Per-product alignment (rounding) and saturating or wrapping accumulation.

    Blocks of ``ROWS`` rows of ``a`` run in parallel; inside, the loops run k, m, n so that each row
    of ``b`` is read once per block and the n loop is contiguous. Each (m, n) still sums k in
    order. The common cases get loops simple enough to vectorize; a general loop does the rest.
    """
    M, K = a.shape
    N = b.shape[1]
    deterministic = 0 < shift <= 62 and mode != STOCHASTIC
    c, e, g = bias_terms(shift, mode) if deterministic else (np.int64(0), np.int64(0), np.int64(0))
    for block in prange((M + ROWS - 1) // ROWS):
        m0 = block * ROWS
        m1 = min(m0 + ROWS, M)
        rows = np.zeros((m1 - m0, N), dtype=np.int64)
        for kk in range(K):
            for m in range(m0, m1):
                av = a[m, kk]
                row = rows[m - m0]
                if shift == 0:
                    for n in range(N):
                        row[n] = _accumulate_one(row[n], av * b[kk, n], lo, hi, wrap)
                elif deterministic:
                    for n in range(N):
                        p = round_biased(av * b[kk, n], shift, c, e, g)
                        row[n] = _accumulate_one(row[n], p, lo, hi, wrap)
                elif 0 < shift <= k:  # stochastic: counters advance by K along n
                    base = offset + np.uint64(m * N * K + kk + 1)
                    for n in range(N):
                        p = av * b[kk, n]
                        r = np.int64(_scalar_bits(key, base + np.uint64(n * K)) >> np.uint64(64 - k))
                        t = (p & ((np.int64(1) << shift) - 1)) << (k - shift)
                        row[n] = _accumulate_one(row[n], (p >> shift) + (r < t), lo, hi, wrap)
                else:
                    for n in range(N):
                        counter = offset + np.uint64((m * N + n) * K + kk + 1)
                        p = rescale_scalar(av * b[kk, n], shift, mode, key, counter, k, _P_LO,
                                           _P_HI, wrap)
                        row[n] = _accumulate_one(row[n], p, lo, hi, wrap)
        for m in range(m0, m1):
            for n in range(N):
                out[m, n] = fit_word_scalar(rows[m - m0, n], lo, hi, wrap)


def _mac(a, b, shift, acc, rounding, acc_overflow, seed, offset, sr_bits) -> np.ndarray:
    mode, key, off, k, lo, hi, wrap = kernel_args(rounding, acc_overflow, seed, offset, sr_bits,
                                                  acc)
    if is_cupy_array(a):
        from ._matmul_cuda import mac_cuda

        return mac_cuda(a, b, shift, mode, key, off, k, lo, hi, wrap)
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.int64)
    _mac_kernel(np.ascontiguousarray(a), np.ascontiguousarray(b), np.int64(shift), mode, key, off,
                k, lo, hi, wrap, out)
    return out


def _cannot_saturate(a: np.ndarray, b: np.ndarray, left: int, acc: Fixed) -> bool:
    """True when every partial sum of the aligned products lies in the accumulator range."""
    bound = (_max_abs(a) * _max_abs(b) * a.shape[1]) << left
    if acc.signed:
        return bound <= acc.raw_max
    return bound <= acc.raw_max and all(int(x.min()) >= 0 for x in (a, b) if x.size)


def _accumulate(a: np.ndarray, fa: Fixed, b: np.ndarray, fb: Fixed, acc: Fixed, rounding: str,
                acc_overflow: str, seed: int, offset: int, sr_bits: int | None
                ) -> tuple[np.ndarray, int]:
    """Steps 1-3 of the module doc for 2-D raw operands: ``(sums, left)``, where the accumulator
    values are ``sums * 2**left`` wrapped into ``acc`` (the MAC loop returns them with left 0)."""
    magnitude_bits = (fa.word - fa.signed) + (fb.word - fb.signed)
    if magnitude_bits > 62:
        raise ValueError(f"matmul: products of {fa} and {fb} reach 2**{magnitude_bits}; "
                         "the exact products must stay within 2**62 (int64)")
    shift = fa.frac + fb.frac - acc.frac
    if shift <= 0 and (acc_overflow == "wrap" or _cannot_saturate(a, b, -shift, acc)):
        return _dot(a, b, acc.word + shift, (fa, fb)), -shift  # acc keeps bits < word - left
    return _mac(a, b, shift, acc, rounding, acc_overflow, seed, offset, sr_bits), 0


@njit(cache=True)
def _finish_kernel(sums, left, acc_lo, acc_hi, shift, mode, key, offset, k, lo, hi, wrap, out):
    """``out = rescale(wrap_acc(sums << left), shift)`` in one pass (the matmul epilogue).

    Serial on purpose: O(M*N) work after an O(M*N*K) product, and a parallel region costs more
    than it saves when the cores are busy with BLAS threads. The common case vectorizes.
    """
    if left == 0 and 0 < shift <= 62 and mode != STOCHASTIC:
        c, e, g = bias_terms(shift, mode)
        for i in range(sums.size):
            acc = fit_word_scalar(np.int64(sums[i]), acc_lo, acc_hi, True)
            out[i] = fit_word_scalar(round_biased(acc, shift, c, e, g), lo, hi, wrap)
        return
    for i in range(sums.size):
        acc = rescale_scalar(np.int64(sums[i]), -left, mode, key, offset, k, acc_lo, acc_hi, True)
        out[i] = rescale_scalar(acc, shift, mode, key, offset + np.uint64(i + 1), k, lo, hi, wrap)


def _finish(sums: np.ndarray, left: int, acc: Fixed, out: Fixed, rounding: str, overflow: str,
            seed: int, offset: int, sr_bits: int | None) -> np.ndarray:
    """Raw ``out`` values: the accumulator ``sums * 2**left`` (wrapped into acc) cast to ``out``.

    ``sums``: int64, or float64 holding exact integers (straight from BLAS, converted in the pass).
    """
    mode, key, off, k, lo, hi, wrap = kernel_args(rounding, overflow, seed, offset, sr_bits, out)
    if is_cupy_array(sums):
        from ._matmul_cuda import finish_cuda

        return finish_cuda(sums, left, acc.raw_min, acc.raw_max, acc.frac - out.frac, mode, key,
                           off, k, lo, hi, wrap)
    result = np.empty(sums.shape, dtype=np.int64)
    _finish_kernel(sums.reshape(-1), np.int64(left), np.int64(acc.raw_min), np.int64(acc.raw_max),
                   np.int64(acc.frac - out.frac), mode, key, off, k, lo, hi, wrap,
                   result.reshape(-1))
    return result


# --------------------------------------------------------------------------- public functions
def _as_2d(a: FixedArray, b: FixedArray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """2-D raw operands and the numpy-style result shape of ``a @ b`` (1-D and 2-D operands)."""
    if not 1 <= a.ndim <= 2 or not 1 <= b.ndim <= 2:
        raise ValueError(f"matmul takes 1-D or 2-D operands, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape}")
    rows = a.shape[0] if a.ndim == 2 else 1
    cols = b.shape[1] if b.ndim == 2 else 1
    shape = a.shape[:-1] + b.shape[1:]
    _, ra, rb = _raw_pair(a, b)  # one array module (CuPy if either is on the GPU)
    return ra.reshape(rows, b.shape[0]), rb.reshape(b.shape[0], cols), shape


def exact_matmul(a: FixedArray, b: FixedArray) -> FixedArray:
    """``a @ b`` exactly: the product format with ``ceil(log2 K)`` more word bits."""
    ra, rb, shape = _as_2d(a, b)
    pf = product_format(a.fmt, b.fmt, "matmul")
    fmt = _result_format("matmul", pf.word + _growth_bits(ra.shape[1]), pf.frac, pf.signed)
    return FixedArray._wrap(dot_mod64(ra, rb, fmts=(a.fmt, b.fmt)).reshape(shape), fmt)


def _operand(x, fmt: Fixed | None, name: str) -> FixedArray:
    if isinstance(x, FixedArray):
        if fmt is not None and fmt != x.fmt:
            raise ValueError(f"{name} is a FixedArray in {x.fmt}; {name}_fmt={fmt} contradicts it")
        return x
    if fmt is None:
        raise TypeError(f"{name} is not a FixedArray: pass {name}_fmt=Fixed(...) to quantize it")
    return FixedArray.from_float(x, fmt)


def matmul(a, b, acc: Fixed = Fixed(40, 16), out: Fixed = Fixed(16, 8),
           rounding: str = "nearest_even", overflow: str = "saturate", acc_overflow: str = "wrap",
           seed: int | None = None, *, a_fmt: Fixed | None = None, b_fmt: Fixed | None = None,
           offset: int = 0, sr_bits: int | None = None,
           stats: QuantStats | None = None) -> FixedArray:
    """A MAC-array matrix product ``a @ b`` with accumulator format ``acc``, result in ``out``.

    ``a``, ``b``: FixedArrays, or float arrays with their formats ``a_fmt`` / ``b_fmt`` (quantized
    with ``FixedArray.from_float(x, fmt)``: nearest_even, saturate). 1-D or 2-D, numpy shape rules;
    K = 0 gives zeros. Products are exact, aligned to ``acc.frac`` (rounded one by one with
    ``rounding`` when ``acc.frac < frac_a + frac_b``), accumulated with ``acc_overflow``
    (``wrap``: exact sum modulo ``2**acc.word``; ``saturate``: sequential, clamped after every
    addition), then cast to ``out`` with ``rounding`` and ``overflow``. Stochastic rounding draws
    from ``seed`` (None: a fresh one): counter ``offset + (m*N + n)*K + k`` for product (m, n, k),
    ``offset + M*N*K + m*N + n`` for the output cast. ``stats`` (a :class:`QuantStats`) records
    the output cast (acc -> out: overflowed and flushed elements, errors) and the stochastic seed.
    Returns a FixedArray in ``out``.
    """
    fa, fb = _operand(a, a_fmt, "a"), _operand(b, b_fmt, "b")
    for name, fmt in (("acc", acc), ("out", out)):
        if not isinstance(fmt, Fixed):
            raise TypeError(f"{name} must be a fixedpoint.Fixed, got {type(fmt).__name__}")
    rounding = check_rounding(rounding)
    check_overflow(overflow)
    check_choice(acc_overflow, "acc_overflow", OVERFLOW_MODES)
    check_stats(stats)
    seed = resolve_seed(seed) if rounding == "stochastic" else 0
    ra, rb, shape = _as_2d(fa, fb)
    sums, left = _accumulate(ra, fa.fmt, rb, fb.fmt, acc, rounding, acc_overflow, seed, offset,
                             sr_bits)
    out_offset = offset + sums.size * ra.shape[1]
    if stats is None:
        out_raw = _finish(sums, left, acc, out, rounding, overflow, seed, out_offset, sr_bits)
    else:  # the same epilogue through the numpy oracle (in host memory), which fills the stats
        on_gpu = is_cupy_array(sums)
        acc_raw = rescale(sums.get() if on_gpu else sums, -left, acc, overflow="wrap")
        out_raw = rescale(acc_raw, acc.frac - out.frac, out, rounding, overflow, seed=seed,
                          offset=out_offset, sr_bits=sr_bits, stats=stats)
        out_raw = array_module(sums).asarray(out_raw)
    return FixedArray._wrap(out_raw.reshape(shape), out)
