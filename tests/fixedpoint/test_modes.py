"""The mode enums are the one source of the public names and kernel codes."""
from fixedpoint import OVERFLOW_MODES, ROUNDING_MODES, _fixed_scalar, _float_quantize
from fixedpoint._modes import Overflow, Rounding


def test_rounding_names_and_codes_come_from_the_enum():
    assert ROUNDING_MODES == ("nearest_even", "nearest_away", "toward_zero", "floor", "ceil", "stochastic")
    for mode in Rounding:
        assert ROUNDING_MODES[mode] == mode.name.lower()
        assert getattr(_fixed_scalar, mode.name) == int(mode)
        assert type(getattr(_fixed_scalar, mode.name)) is int
        assert _float_quantize.ROUNDING_CODES[mode.name.lower()] == int(mode)


def test_overflow_names_come_from_the_enum():
    assert OVERFLOW_MODES == ("saturate", "wrap")
    assert _float_quantize.FLOAT_OVERFLOW == ("saturate", "inf", "nan")
    assert {Overflow[n.upper()] for n in OVERFLOW_MODES + _float_quantize.FLOAT_OVERFLOW} == set(Overflow)
