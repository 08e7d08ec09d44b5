"""`hwsim.RoleQuantizer` (and its deprecated alias `Quantizer`); `RoleFormat` checked by fixedpoint."""
from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest

import fixedpoint as fxp
import hwsim
from hwsim import Precision, RoleFormat, RoleQuantizer
from hwsim.cli import main


def test_quantizer_is_a_deprecated_alias_of_role_quantizer():
    with pytest.warns(DeprecationWarning, match="hwsim.Quantizer is deprecated.*hwsim.RoleQuantizer"):
        assert hwsim.Quantizer is RoleQuantizer
    with pytest.warns(DeprecationWarning, match="RoleQuantizer"):
        from hwsim import Quantizer
    assert Quantizer is RoleQuantizer
    with pytest.warns(DeprecationWarning, match="RoleQuantizer"):
        from hwsim._precision import Quantizer as private_alias
    assert private_alias is RoleQuantizer
    assert "RoleQuantizer" in hwsim.__all__ and "Quantizer" not in hwsim.__all__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(RoleFormat.parse("s8.4"), hwsim.RoleQuantizer)
    with pytest.raises(AttributeError, match="no attribute 'Quantiser'"):
        hwsim.Quantiser


def _fixedpoint_error(*args, **kw) -> str:
    with pytest.raises(ValueError) as info:
        fxp.quantize(np.zeros(1), *args, **kw)
    return str(info.value)


def test_role_format_is_checked_by_fixedpoint_at_construction():
    with pytest.raises(ValueError) as info:
        RoleFormat(fxp.FP8_E4M3, overflow="wrap")
    assert str(info.value) == _fixedpoint_error(fxp.FP8_E4M3, overflow="wrap")
    with pytest.raises(ValueError) as info:
        RoleFormat(fxp.FP8_E4M3, overflow="inf")  # e4m3fn has no infinity
    assert str(info.value) == _fixedpoint_error(fxp.FP8_E4M3, overflow="inf")
    with pytest.raises(ValueError) as info:
        RoleFormat(fxp.Fixed(8, 4), rounding="round")
    assert str(info.value) == _fixedpoint_error(fxp.Fixed(8, 4), rounding="round")
    with pytest.raises(ValueError) as info:
        RoleFormat(fxp.Fixed(8, 4), overflow="inf")
    assert str(info.value) == _fixedpoint_error(fxp.Fixed(8, 4), overflow="inf")
    with pytest.raises(TypeError, match="fmt must be a fixedpoint.Fixed or FloatFormat"):
        RoleFormat("s8.4")


def test_parse_names_the_overflow_token_with_fixedpoints_reason():
    with pytest.raises(ValueError) as info:
        RoleFormat.parse("e4m3:nearest_even:wrap")
    msg = str(info.value)
    assert msg.startswith("bad overflow token 'wrap' in 'e4m3:nearest_even:wrap': ") and "\n" not in msg
    assert msg.endswith(_fixedpoint_error(fxp.FloatFormat.parse("e4m3"), overflow="wrap"))


@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic", "toward_zero"])
def test_float_overflow_to_inf_is_accepted_and_quantizes_like_fixedpoint(rounding):
    q = RoleFormat.parse(f"e5m2:{rounding}:inf")
    assert (q.fmt, q.overflow, q.kind, q.bits) == (fxp.FP8_E5M2, "inf", "float", 8)
    assert q.name == f"e5m2:{rounding}:inf" and RoleFormat.parse(q.name) == q
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 40000
    expect = fxp.quantize(x, fxp.FP8_E5M2, rounding, "inf", seed=11, offset=3)
    np.testing.assert_array_equal(q(x, seed=11, offset=3), expect)
    assert np.isinf(expect).any() == (rounding != "toward_zero")  # IEEE: toward zero overflows to max
    assert q.grad_mask(x) is None
    p = Precision.from_flags(weight=f"e5m2:{rounding}:inf")
    assert p.weight == q and Precision.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_cli_accepts_float_overflow_to_inf(capsys):
    rc = main(["cost", "--model", "mlp:64-10", "--device", "h100-sxm", "--json",
               "--weight", "e5m2:nearest_even:inf"])
    out = capsys.readouterr().out
    assert rc == 0 and json.loads(out)["precision"]["weight"] == "e5m2:nearest_even:inf"


@pytest.mark.parametrize("text", ["s8.4:stochastic", "s32.16", "e4m3:stochastic", "e5m2:nearest_even:inf"])
def test_role_format_pickles_and_quantizes_the_same(text):
    q = RoleFormat.parse(text)
    q2 = pickle.loads(pickle.dumps(q))
    x = np.linspace(-9, 9, 301, dtype=np.float32)
    assert q2 == q
    np.testing.assert_array_equal(q2(x, seed=5, offset=0), q(x, seed=5, offset=0))
