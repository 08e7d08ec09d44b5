"""The mode enums are the one source of the public names, kernel codes and per-mode facts, and every
dispatcher on a rounding mode has a branch for each `Rounding` member and raises on anything else.

The coverage tests call each dispatcher with every member and compare with the oracles (the numpy
oracles and the exact ``Fraction`` reference of ``fixedpoint.testing``): a member added to the
enum without a branch in some dispatcher makes them fail. The CUDA kernels run the same scalar
functions (``_fixed_scalar.round_scaled``, ``_float_kernels.float_round_scalar``,
``_shift_round.round_shift_scalar``), checked here on the CPU; the simulator tests run them for
every member of ``ROUNDING_MODES`` (test_matmul_cuda_sim.py, test_cupy_branches_sim.py).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from numba import njit

import fixedpoint as fxp
from fixedpoint import (
    OVERFLOW_MODES,
    ROUNDING_MODES,
    _fixed_cuda,
    _fixed_numba,
    _fixed_oracle,
    _fixed_scalar,
    _float_kernels,
    _float_oracle,
    _float_quantize,
    _matmul_cuda,
)
from fixedpoint import _shift_round as sr
from fixedpoint._counter_rng import random_bits, seed_key
from fixedpoint._modes import Overflow, Rounding
from fixedpoint.testing import DETERMINISTIC_MODES, reference_quantize, round_fraction

MODES = list(Rounding)
#: Codes no member has.
UNKNOWN = [len(Rounding), -1]


def test_rounding_names_and_codes_come_from_the_enum():
    assert ROUNDING_MODES == ("nearest_even", "nearest_away", "toward_zero", "floor", "ceil", "stochastic")
    assert [int(m) for m in Rounding] == list(range(len(Rounding)))  # codes index ROUNDING_MODES
    for mode in Rounding:
        assert ROUNDING_MODES[mode] == mode.name.lower()
        assert Rounding.named(mode.name.lower()) is mode
        assert getattr(_fixed_scalar, mode.name) == int(mode)
        assert type(getattr(_fixed_scalar, mode.name)) is int
        assert _float_quantize.ROUNDING_CODES[mode.name.lower()] == int(mode)
    for bad in ("NEAREST_EVEN", "nearest", "", 0, None):
        with pytest.raises(ValueError, match="rounding: unknown mode"):
            Rounding.named(bad)


def test_overflow_names_come_from_the_enum():
    assert OVERFLOW_MODES == ("saturate", "wrap")
    assert _float_quantize.FLOAT_OVERFLOW == ("saturate", "inf", "nan")
    assert {Overflow[n.upper()] for n in OVERFLOW_MODES + _float_quantize.FLOAT_OVERFLOW} == set(Overflow)


#: IEEE 754 (7.4): where an overflow of (x > 0, x < 0) goes under overflow="inf".
IEEE_OVERFLOW = {Rounding.NEAREST_EVEN: ("inf", "inf"), Rounding.NEAREST_AWAY: ("inf", "inf"),
                 Rounding.TOWARD_ZERO: ("max", "max"), Rounding.FLOOR: ("max", "inf"),
                 Rounding.CEIL: ("inf", "max"), Rounding.STOCHASTIC: ("inf", "inf")}


@pytest.mark.parametrize("mode", MODES)
def test_mode_facts(mode):
    assert mode.random == (mode is Rounding.STOCHASTIC)
    assert mode.directed == (mode in (Rounding.TOWARD_ZERO, Rounding.FLOOR, Rounding.CEIL))
    assert (mode.name.lower() in DETERMINISTIC_MODES) == (not mode.random)
    want = IEEE_OVERFLOW[mode]
    assert (mode.max_on_overflow(False), mode.max_on_overflow(True)) == (want[0] == "max", want[1] == "max")


# --------------------------------------------------------------------------- fixed point, scalar rounding
#: Scaled values ``x * 2**frac``: ties, non-ties, both signs, zero, an integer past 2**52.
SCALED = np.array([-3.5, -2.5, -1.5, -1.25, -0.75, -0.5, -2.0**-30, 0.0, 2.0**-30, 0.25, 0.5, 1.5, 2.5,
                   2.75, 7.0, 2.0**60 + 2.0**9])
KPOW = 1 << 4
DRAWS = np.arange(SCALED.size, dtype=np.int64) * 5 % KPOW  # k = 4 bit draws

_round_scaled_jit = njit(_fixed_scalar.round_scaled)


def _stochastic_want(v: float, r: int) -> float:
    """The stochastic rule stated directly: floor(v), plus 1 iff r < floor(frac(v) * 2**k)."""
    low = math.floor(Fraction(v))
    return float(low + (r < math.floor((Fraction(v) - low) * KPOW)))


@pytest.mark.parametrize("mode", MODES)
def test_fixed_round_scaled_covers_every_mode(mode):
    oracle = _fixed_oracle.round_scaled(SCALED, int(mode), DRAWS, KPOW)
    for v, r, got in zip(SCALED.tolist(), DRAWS.tolist(), oracle.tolist()):
        if mode.random:
            want = _stochastic_want(v, r)
        else:
            want = float(round_fraction(Fraction(v), mode.name.lower()))
        assert got == want, (v, r)
        assert _fixed_scalar.round_scaled(v, int(mode), r, KPOW) == want
        assert _round_scaled_jit(v, int(mode), r, KPOW) == want


@pytest.mark.parametrize("code", UNKNOWN)
def test_fixed_round_scaled_raises_on_an_unknown_code(code):
    with pytest.raises(ValueError, match="unknown rounding mode code"):
        _fixed_oracle.round_scaled(SCALED, code, DRAWS, KPOW)
    with pytest.raises(ValueError, match="unknown rounding mode code"):
        _fixed_scalar.round_scaled(0.5, code, 0, KPOW)
    with pytest.raises(ValueError, match="unknown rounding mode code"):
        _round_scaled_jit(0.5, code, 0, KPOW)


# --------------------------------------------------------------------------- fixed point, whole kernels
FMT = fxp.Fixed(8, 2)
X = np.concatenate([SCALED[:-1] / 4, [100.0, -100.0, 31.875, 31.9, -32.0, -32.2, 1e-300, -1e-300]])


def _params(mode: int, wrap: bool = False, k: int = 5) -> _fixed_scalar.Params:
    return _fixed_scalar.Params(*_fixed_scalar.call_head(mode, wrap, FMT), key=np.uint64(seed_key(3)),
                                counter0=np.uint64(8), k=k, kpow=1 << k)


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_fixed_kernels_cover_every_mode(mode, wrap):
    """The numba backend (`_fused_block`, and `_general_block` through ``_quantize_element``) against
    the numpy oracle, and the oracle against the exact reference (deterministic modes)."""
    p = _params(int(mode), wrap)
    want, want_counts, _, _ = _fixed_oracle.quantize_flat(X, p, 3, 7, np.dtype(np.float64), False)
    if not mode.random:
        overflow = "wrap" if wrap else "saturate"
        assert want.tolist() == [reference_quantize(v, FMT, mode.name.lower(), overflow)
                                 for v in X.tolist()]
    fast, c, _, _, _ = _fixed_numba.call_arrays("d", np.dtype(np.float64), p[:_fixed_scalar.N_HEAD], p.k)
    assert fast
    out = np.empty_like(X)
    assert _fixed_numba._fused_block(X, out, 0, int(mode), wrap, c, p.key, p.counter0, np.uint64(64 - p.k))
    assert np.array_equal(out, want)
    got, _, _, _ = _fixed_numba.quantize_flat(X, p, 3, 7, np.dtype(np.float64), False)
    assert np.array_equal(got, want)
    got, counts, _, _ = _fixed_numba.quantize_flat(X, p, 3, 7, np.dtype(np.float64), True)
    assert np.array_equal(got, want)
    assert np.array_equal(counts, want_counts)  # (counted only with statistics)
    xnan = np.append(X, np.nan)  # a NaN sends the block to `_general_block`
    want, _, _, _ = _fixed_oracle.quantize_flat(xnan, p, 3, 7, np.dtype(np.float64), False)
    got, _, _, _ = _fixed_numba.quantize_flat(xnan, p, 3, 7, np.dtype(np.float64), False)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("code", UNKNOWN)
def test_fixed_kernels_raise_on_an_unknown_code(code):
    p = _params(0)._replace(mode=code)
    head = _params(0)[:_fixed_scalar.N_HEAD]
    _, c, _, fp, ip = _fixed_numba.call_arrays("d", np.dtype(np.float64), head, 5)
    with pytest.raises(ValueError, match="unknown rounding mode code"):
        _fixed_numba._fused_block(X, np.empty_like(X), 0, code, False, c, p.key, p.counter0, np.uint64(59))
    ip = ip.copy()
    ip[_fixed_numba.I_MODE] = code
    with pytest.raises(ValueError, match="unknown rounding mode code"):
        _fixed_numba._general_block(X, np.empty_like(X), 0, False, fp, ip, p.key, p.counter0,
                                    np.zeros(_fixed_scalar.N_COUNTS, np.int64))
    with pytest.raises(ValueError, match="not a valid Rounding"):  # checked before the parallel loops
        _fixed_numba.quantize_flat(X, p, 3, 7, np.dtype(np.float64), False)
    with pytest.raises(ValueError, match="unknown rounding mode code"):
        _fixed_oracle.quantize_flat(X, p, 3, 7, np.dtype(np.float64), False)
    with pytest.raises(ValueError, match="not a valid Rounding"):  # a CUDA kernel cannot raise
        _fixed_cuda.quantize_flat(X, p, 3, 7, np.dtype(np.float64), False)


# --------------------------------------------------------------------------- integer rescaling
RAW = np.array([-37, -36, -35, -34, -33, -32, -31, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 31, 33,
                34, 35, 1 << 61, -(1 << 61) - 3], dtype=np.int64)


@pytest.mark.parametrize("shift", [1, 2, 3, 63, 70])
@pytest.mark.parametrize("mode", MODES)
def test_shift_round_covers_every_mode(mode, shift):
    name = mode.name.lower()
    seed, offset, k = 11, 4, 6
    got = sr.shift_round(RAW, shift, name, seed=seed, offset=offset, sr_bits=k)
    key, counter = np.uint64(seed_key(seed)), offset + 1
    scalar = [sr.round_shift_scalar(np.int64(x), np.int64(shift), int(mode), key, np.uint64(counter + i), k)
              for i, x in enumerate(RAW.tolist())]
    assert got.tolist() == scalar
    if mode.random:
        assert all(math.floor(Fraction(x, 2**shift)) <= g <= math.ceil(Fraction(x, 2**shift))
                   for x, g in zip(RAW.tolist(), got.tolist()))
        with pytest.raises(ValueError, match="stochastic rounding has no bias terms"):
            sr.bias_terms(np.int64(min(shift, 62)), int(mode))
        return
    assert got.tolist() == [round_fraction(Fraction(x, 2**shift), name) for x in RAW.tolist()]
    if shift <= 62:
        c, e, g = sr.bias_terms(np.int64(shift), int(mode))
        assert [sr.round_biased(np.int64(x), np.int64(shift), c, e, g) for x in RAW.tolist()] == got.tolist()


@pytest.mark.parametrize("code", UNKNOWN)
def test_integer_rescaling_raises_on_an_unknown_code(code):
    with pytest.raises(ValueError, match="unknown rounding mode code"):
        sr.bias_terms(np.int64(3), code)
    with pytest.raises(ValueError, match="unknown rounding mode code"):
        sr.round_shift_scalar(np.int64(5), np.int64(2), code, np.uint64(0), np.uint64(1), 53)
    with pytest.raises(ValueError, match="rounding must be one of"):  # names are checked first
        sr.shift_round(RAW, 2, "bogus")
    args = (np.uint64(0), np.uint64(0), np.int64(53), np.int64(-8), np.int64(7), False)
    with pytest.raises(ValueError, match="not a valid Rounding"):  # a CUDA kernel cannot raise
        _matmul_cuda.rescale_cuda(RAW, 2, code, *args)
    with pytest.raises(ValueError, match="not a valid Rounding"):
        _matmul_cuda.mac_cuda(RAW.reshape(2, -1), RAW.reshape(-1, 2), 2, code, *args)
    with pytest.raises(ValueError, match="not a valid Rounding"):
        _matmul_cuda.finish_cuda(RAW, 0, -(1 << 40), 1 << 40, 2, code, *args)


# --------------------------------------------------------------------------- float formats
FLOAT = fxp.FP8_E5M2  # ieee specials: has inf, so overflow="inf" applies
XF = np.array([0.1, -0.1, 1.3, -1.7, 1.125, -1.125, 1.375, 3.0, 0.0, -0.0, 1e-6, -1e-6, 2.0**-17,
               -(2.0**-17), 57000.0, -57000.0, 61439.0, -61439.0, 1e6, -1e6, math.inf, -math.inf, math.nan])
BITS = np.arange(XF.size, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)


def _float_args(mode: int, with_policies: bool = True) -> tuple:
    """The scalars of `float_quantize_cpu` after ``with_flags`` (overflow "inf", NaN propagates)."""
    policies = (_float_kernels.policy_values(FLOAT.max, mode, "inf", "propagate") if with_policies
                else (FLOAT.max, FLOAT.max, math.inf, math.nan))
    return (FLOAT.emin, FLOAT.man, FLOAT.max, 0.0, FLOAT.has_neg_zero, mode, *policies, np.uint64(0),
            np.uint64(0), 53)


def _float_grid() -> list[Fraction]:
    """Every finite value of FLOAT, ascending; a value's significand is even iff its index is."""
    ulp = [Fraction(2) ** (e - FLOAT.man) for e in range(FLOAT.emin, 16)]
    pos = [k * ulp[0] for k in range(1 << FLOAT.man)]  # zero and the subnormals
    pos += [((1 << FLOAT.man) + j) * u for u in ulp for j in range(1 << FLOAT.man)]
    pos = [v for v in pos if v <= Fraction(FLOAT.max)]
    return [-v for v in pos[:0:-1]] + pos


def _float_grid_round(x: float, mode: Rounding, got: float) -> float:
    """``x`` rounded onto FLOAT's grid by the rule of ``mode`` (stochastic: ``got`` if it is one
    of the two neighbours), worked out on the list of every value."""
    grid = _float_grid()
    q = Fraction(x)
    i = max(j for j, v in enumerate(grid) if v <= q)
    lo, hi = grid[i], grid[i] if grid[i] == q else grid[i + 1]
    if lo == hi:
        return float(lo)
    toward_zero, away = (lo, hi) if q > 0 else (hi, lo)
    if mode is Rounding.FLOOR:
        return float(lo)
    if mode is Rounding.CEIL:
        return float(hi)
    if mode is Rounding.TOWARD_ZERO:
        return float(toward_zero)
    if mode is Rounding.STOCHASTIC:
        return got if Fraction(got) in (lo, hi) else math.nan
    if q - lo != hi - q:
        return float(lo if q - lo < hi - q else hi)
    if mode is Rounding.NEAREST_AWAY:
        return float(away)
    assert mode is Rounding.NEAREST_EVEN
    return float(lo if (i + len(grid)) % 2 == 0 else hi)


@pytest.mark.parametrize("mode", MODES)
def test_float_dispatchers_cover_every_mode(mode):
    name = mode.name.lower()
    want, overflowed, flushed = _float_oracle.reference_float_quantize(XF, FLOAT, name, "inf", bits=BITS)
    ieee = IEEE_OVERFLOW[mode]
    for sign, i in ((0, 18), (1, 19)):  # +-1e6 overflow
        assert overflowed[i] and abs(want[i]) == (FLOAT.max if ieee[sign] == "max" else math.inf)
    away = _float_oracle._away_on_overflow(mode, np.array([False, True]))
    assert away.tolist() == [ieee[0] == "inf", ieee[1] == "inf"]
    over_pos, over_neg, inf_pos, _ = _float_kernels.policy_values(FLOAT.max, int(mode), "inf", "propagate")
    assert (over_pos, over_neg) == tuple(FLOAT.max if w == "max" else math.inf for w in ieee)
    assert inf_pos == math.inf
    assert np.isnan(want[-1])
    for x, y in zip(XF.tolist(), want.tolist()):
        if abs(x) <= FLOAT.max:
            assert y == _float_grid_round(x, mode, y), x
    args = _float_args(int(mode))
    for x, r, w in zip(XF.tolist(), BITS.tolist(), want.tolist()):
        for scalar in (_float_kernels.float_round_scalar, _float_kernels._round_cpu):
            y, _ = scalar(x, *args[:10], np.uint64(r), 53)
            assert y == w or (math.isnan(y) and math.isnan(w)), (scalar, x)
    out = np.empty_like(XF)
    flags = np.empty(XF.size, np.int8)
    key = np.uint64(seed_key(5))
    _float_kernels.float_quantize_cpu(XF, out, flags, True, *args[:10], key, np.uint64(2), 53)
    want, overflowed, flushed = _float_oracle.reference_float_quantize(XF, FLOAT, name, "inf",
                                                                      bits=random_bits(5, 2, XF.size))
    assert np.array_equal(out, want, equal_nan=True)
    assert np.array_equal(flags, np.where(overflowed, 1, np.where(flushed, 2, 0)))


@pytest.mark.parametrize("code", UNKNOWN)
def test_float_dispatchers_raise_on_an_unknown_code(code):
    with pytest.raises(ValueError, match="rounding: unknown mode"):
        _float_oracle.reference_float_quantize(XF, FLOAT, "bogus")
    with pytest.raises(ValueError, match="not a valid Rounding"):
        _float_kernels.policy_values(FLOAT.max, code, "inf", "propagate")
    args = _float_args(code, with_policies=False)
    for scalar in (_float_kernels.float_round_scalar, _float_kernels._round_cpu):
        with pytest.raises(ValueError, match="unknown rounding mode code"):
            scalar(1.3, *args[:10], np.uint64(0), 53)
    out, flags = np.empty_like(XF), np.empty(0, np.int8)
    with pytest.raises(ValueError, match="unknown rounding mode code"):
        _float_kernels.float_quantize_cpu(XF, out, flags, False, *args)
    with pytest.raises(ValueError, match="not a valid Rounding"):  # a CUDA kernel cannot raise
        _float_kernels.launch_cuda(XF, out, flags, False, *args)


# --------------------------------------------------------------------------- fixedpoint.testing
@pytest.mark.parametrize("mode", MODES)
def test_round_fraction_covers_every_deterministic_mode(mode):
    values = [Fraction(v) for v in SCALED[:-1].tolist()]
    if mode.random:  # no random source: refused
        with pytest.raises(ValueError, match="rounding must be one of"):
            round_fraction(values[0], mode.name.lower())
        return
    want = _fixed_oracle.round_scaled(SCALED[:-1], int(mode), DRAWS[:-1], KPOW)
    assert [round_fraction(q, mode.name.lower()) for q in values] == want.tolist()


def test_round_fraction_raises_on_an_unknown_mode():
    with pytest.raises(ValueError, match="rounding must be one of"):
        round_fraction(Fraction(1, 2), "bogus")
