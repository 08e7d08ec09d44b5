"""FP8 names mean what they mean in ml_dtypes, bit for bit: every one of the 256 codes decodes to
the same value, every value is on the parsed format's grid, and rounding every midpoint (and the
values just beside it) matches the library's cast (issue 15, item 9)."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import fixedpoint as fxp

# (name, ml_dtypes type, overflow policy that matches the library's cast, expected bias, expected max)
NAMED = [
    ("e4m3fnuz", ml_dtypes.float8_e4m3fnuz, "nan", 8, 240.0),
    ("e5m2fnuz", ml_dtypes.float8_e5m2fnuz, "nan", 16, 57344.0),
    ("e4m3b11fnuz", ml_dtypes.float8_e4m3b11fnuz, "nan", 11, 30.0),
    ("e4m3fn", ml_dtypes.float8_e4m3fn, "nan", 7, 448.0),
    ("fp8_e4m3", ml_dtypes.float8_e4m3fn, "nan", 7, 448.0),
    ("e5m2", ml_dtypes.float8_e5m2, "inf", 15, 57344.0),
    ("fp8_e5m2", ml_dtypes.float8_e5m2, "inf", 15, 57344.0),
    ("e4m3", ml_dtypes.float8_e4m3, "inf", 7, 240.0),
    ("e3m4", ml_dtypes.float8_e3m4, "inf", 3, 15.5),
]
IDS = [n for n, *_ in NAMED]
CODES = np.arange(256, dtype=np.uint8)


def decode(fmt: fxp.FloatFormat, code: int) -> float:
    """The value of an 8-bit code by the bit layout of the FloatFormat docstring."""
    sign = -1.0 if code >> 7 else 1.0
    e, m = (code >> fmt.man) & (2**fmt.exp - 1), code & (2**fmt.man - 1)
    top = e == 2**fmt.exp - 1
    if fmt.specials == "ieee" and top:
        return sign * np.inf if m == 0 else np.nan
    if fmt.specials == "fn" and top and m == 2**fmt.man - 1:
        return np.nan
    if fmt.specials == "fnuz" and code == 0x80:
        return np.nan
    if e == 0:
        return sign * 2.0 ** (1 - fmt.bias) * m / 2**fmt.man
    return sign * 2.0 ** (e - fmt.bias) * (1 + m / 2**fmt.man)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    nan = np.isnan(a) & np.isnan(b)
    return bool(np.all(nan | ((a == b) & (np.signbit(a) == np.signbit(b)))))


@pytest.mark.parametrize("name, dtype, overflow, bias, top", NAMED, ids=IDS)
def test_every_code_decodes_like_ml_dtypes(name, dtype, overflow, bias, top):
    fmt = fxp.FloatFormat.parse(name)
    assert fmt.bits == 8 and fmt.bias == bias and fmt.max == top == float(ml_dtypes.finfo(dtype).max)
    ref = CODES.view(dtype).astype(np.float64)
    ours = np.array([decode(fmt, int(c)) for c in CODES])
    mismatched = [int(c) for c, a, b in zip(CODES, ours, ref) if not same_bits(a, b)]
    assert mismatched == [], f"{name}: codes {mismatched[:8]} differ"
    finite = ref[np.isfinite(ref)]
    assert same_bits(fxp.quantize(finite, fmt), finite)  # every value is on the parsed grid
    assert str(fmt) == name if not name.startswith("fp8") else fxp.FloatFormat.parse(str(fmt)) == fmt


@pytest.mark.parametrize("name, dtype, overflow, bias, top", NAMED, ids=IDS)
def test_rounding_every_midpoint_matches_the_library_cast(name, dtype, overflow, bias, top):
    fmt = fxp.FloatFormat.parse(name)
    grid = np.unique(CODES.view(dtype).astype(np.float64))
    grid = grid[np.isfinite(grid)]
    mids = (grid[:-1] + grid[1:]) / 2  # exact in float64 (and float32): 8-bit codes
    x = np.concatenate([mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf), grid,
                        [top * 1.01, -top * 1.01, top * 4]]).astype(np.float32)
    ours = fxp.quantize(x, fmt, "nearest_even", overflow).astype(np.float64)
    ref = x.astype(dtype).astype(np.float64)
    bad = np.flatnonzero(~np.array([same_bits(a, b) for a, b in zip(ours, ref)]))
    assert bad.size == 0, f"{name}: x={x[bad[:5]]} ours={ours[bad[:5]]} ml_dtypes={ref[bad[:5]]}"
