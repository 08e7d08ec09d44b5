"""Fixed: construction, parsing, derived properties, errors."""
from __future__ import annotations

import dataclasses

import pytest

import fixedpoint as fxp


def test_properties_s16_8() -> None:
    fmt = fxp.Fixed(16, 8)
    assert (fmt.word, fmt.frac, fmt.signed) == (16, 8, True)
    assert fmt.step == 2.0**-8
    assert (fmt.raw_min, fmt.raw_max) == (-32768, 32767)
    assert (fmt.min, fmt.max) == (-128.0, 127.99609375)
    assert str(fmt) == "s16.8"


def test_unsigned_and_scale_formats() -> None:
    u = fxp.Fixed(8, 8, signed=False)
    assert (u.raw_min, u.raw_max, u.max, str(u)) == (0, 255, 255 / 256, "u8.8")
    big = fxp.Fixed(4, -3)  # steps of 8
    assert (big.step, big.max, big.min, str(big)) == (8.0, 56.0, -64.0, "s4.-3")
    tiny = fxp.Fixed(4, 64)
    assert tiny.step == 2.0**-64 and tiny.max == 7 * 2.0**-64
    widest = fxp.Fixed(62, 0, signed=False)
    assert widest.raw_max == 2**62 - 1


@pytest.mark.parametrize("text, expected", [
    ("s16.8", fxp.Fixed(16, 8)), ("u8.8", fxp.Fixed(8, 8, False)), ("s4.-3", fxp.Fixed(4, -3)),
    ("Q7.8", fxp.Fixed(16, 8)), ("q0.15", fxp.Fixed(16, 15)), ("UQ8.8", fxp.Fixed(16, 8, False)),
    (" s62.64 ", fxp.Fixed(62, 64)),
])
def test_parse(text: str, expected: fxp.Fixed) -> None:
    assert fxp.Fixed.parse(text) == expected
    assert fxp.Fixed.parse(str(expected)) == expected


def test_frozen_and_hashable() -> None:
    fmt = fxp.Fixed(8, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fmt.word = 9  # type: ignore[misc]
    assert len({fmt, fxp.Fixed(8, 4), fxp.Fixed(8, 4, False)}) == 2


@pytest.mark.parametrize("args, match", [
    ((0, 0), r"word must be in \[1, 62\]"), ((63, 0), r"word must be in \[1, 62\]"),
    ((8, 65), r"frac must be in \[-64, 64\]"), ((8, -65), r"frac must be in \[-64, 64\]"),
])
def test_bad_arguments_name_the_range(args, match) -> None:
    with pytest.raises(ValueError, match=match):
        fxp.Fixed(*args)


@pytest.mark.parametrize("args", [(8.0, 4), (8, "4"), (True, 4), (8, 4, 1)])
def test_bad_argument_types(args) -> None:
    with pytest.raises(TypeError):
        fxp.Fixed(*args)


@pytest.mark.parametrize("text", ["s16", "x16.8", "Q7", "s16.8.1", "", "s0.1", "Q70.8"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        fxp.Fixed.parse(text)
