"""Precision policies: parsing, presets, JSON round trip, seeds, quantizer behaviour."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fxp
from hwsim import PRESETS, ROLES, Precision, RoleFormat, RoleQuantizer
from hwsim._precision import parse_quantizer, register_quantizer, role_base, step_seed


def test_parse_role_format():
    q = RoleFormat.parse("s8.4:stochastic")
    assert q.fmt == fxp.Fixed(8, 4) and q.rounding == "stochastic" and q.overflow == "saturate"
    assert (q.name, q.bits, q.kind) == ("s8.4:stochastic", 8, "fixed")
    assert RoleFormat.parse("s16.8") == RoleFormat(fxp.Fixed(16, 8))
    assert RoleFormat.parse("u8.8:floor:wrap").overflow == "wrap"
    f = RoleFormat.parse("e4m3:nearest_even")
    assert f.kind == "float" and f.bits == 8
    assert isinstance(q, RoleQuantizer)
    for text in ["s8.4:stochastic", "u8.8:floor:wrap", "e5m2", "bf16:toward_zero"]:
        assert RoleFormat.parse(RoleFormat.parse(text).name) == RoleFormat.parse(text)


@pytest.mark.parametrize("text,token", [("s8.x", "s8.x"), ("s8.4:stochastc", "stochastc"),
                                        ("s8.4:nearest_even:clip", "clip"), ("x7", "x7")])
def test_bad_format_names_the_token(text, token):
    with pytest.raises(ValueError, match=repr(token).replace("(", r"\(").replace(".", r"\.")):
        RoleFormat.parse(text)


def test_from_flags_presets_and_overrides():
    p = Precision.from_flags("fp32", weight="s8.6", activation="s8.4:nearest_even",
                             update="s16.14:stochastic", acc="s32.16")
    assert p.weight == RoleFormat.parse("s8.6") and p.update.rounding == "stochastic"
    assert p.error is None and p.grad is None
    assert Precision.from_flags("fp32").is_float
    for name in PRESETS:
        Precision.from_flags(name)
    p16 = Precision.from_flags("fixed16", error="fp32")
    assert p16.error is None and p16.weight.fmt.word == 16
    with pytest.raises(ValueError, match="'fixed9'"):
        Precision.from_flags("fixed9")
    with pytest.raises(ValueError, match="wieght"):
        Precision.from_flags(wieght="s8.4")
    with pytest.raises(ValueError, match="'s8.q'"):
        Precision.from_flags(weight="s8.q")


def test_to_dict_round_trip_through_json():
    for p in [Precision.from_flags(name, seed=5) for name in PRESETS] + [
            Precision.from_flags(weight="e4m3:stochastic", mode="fast", weight_clip=1.0)]:
        d = json.loads(json.dumps(p.to_dict()))
        assert Precision.from_dict(d) == p
        assert set(ROLES) <= set(d)
    with pytest.raises(ValueError, match="bogus"):
        Precision.from_dict({"bogus": 1})


def test_precision_validation():
    with pytest.raises(ValueError, match="mode"):
        Precision(mode="slow")
    with pytest.raises(ValueError, match="exact.*acc"):
        Precision.from_flags(weight="s8.4", activation="s8.4", mode="exact")
    with pytest.raises(TypeError, match="weight"):
        Precision(weight="s8.4")
    with pytest.raises(ValueError, match="weight_clip"):
        Precision(weight_clip=-1.0)


def test_role_format_quantizes_and_masks():
    q = RoleFormat.parse("s4.2")  # range [-2, 1.75], step 0.25
    x = np.array([-3.0, -0.3, 0.1, 0.13, 1.8, 5.0], np.float32)
    np.testing.assert_array_equal(q(x, seed=0, offset=0), [-2, -0.25, 0, 0.25, 1.75, 1.75])
    np.testing.assert_array_equal(q.grad_mask(x), [0, 1, 1, 1, 0, 0])
    assert q.grad_mask(np.array([0.5, -1.0], np.float32)) is None
    assert RoleFormat.parse("s4.2:nearest_even:wrap").grad_mask(x) is None


def test_wide_fixed_format_on_float32():
    """An s32.16 accumulator on float32 data goes through float64 and comes back float32."""
    q = RoleFormat.parse("s32.16")
    x = np.array([1.0 + 2**-20, 3.25, -70000.0], np.float32)
    y = q(x, seed=0, offset=0)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [1.0, 3.25, -32768.0])


def test_stochastic_rounding_follows_the_seed():
    q = RoleFormat.parse("s8.4:stochastic")
    x = np.full(1000, 0.03125, np.float32)  # half a step
    a, b = q(x, seed=1, offset=0), q(x, seed=2, offset=0)
    np.testing.assert_array_equal(a, q(x, seed=1, offset=0))
    assert not np.array_equal(a, b)
    assert 0.4 < (a > 0).mean() < 0.6


def test_seed_rule_distinguishes_layer_role_slot_and_step():
    seeds = {step_seed(role_base(0, layer, role, slot), step)
             for layer in range(3) for role in ROLES for slot in range(2) for step in range(3)}
    assert len(seeds) == 3 * len(ROLES) * 2 * 3
    assert step_seed(role_base(7, 1, "update", 0), 5) == step_seed(role_base(7, 1, "update", 0), 5)


def test_register_quantizer_for_scheme_names():
    class Halves:
        name, bits, kind = "halves", 2, "fixed"

        def __call__(self, x, *, seed, offset, stats=None):
            return np.round(x * 2) / 2

        def grad_mask(self, x):
            return None

        def __eq__(self, other):
            return isinstance(other, Halves)

    register_quantizer("halves", lambda text: Halves())
    p = Precision.from_flags(weight="halves")
    assert p.weight == Halves() and Precision.from_dict(p.to_dict()) == p
    assert parse_quantizer("none") is None


@pytest.mark.parametrize("spec", ["s4.2", "u8.8", "s32.16", "s8.7"])
@given(data=st.data())
@settings(max_examples=30)
def test_grad_mask_is_the_clipped_straight_through_estimator(spec, data):
    """None exactly when every element lies in [min, max] (NaN never does), else the 0/1 mask;
    float32 arrays against bounds float32 cannot hold (s32.16) compare exactly too; float16 arrays
    (which the Numba pass does not take) give the same answers."""
    q = RoleFormat.parse(spec)
    lo, hi = q.fmt.min, q.fmt.max
    dtype = data.draw(st.sampled_from([np.float16, np.float32, np.float64]))
    edges = [lo, hi, np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf), 0.0, np.nan, np.inf, -np.inf]
    elements = st.one_of(st.sampled_from(edges), st.floats(lo - 1, hi + 1, allow_nan=False))
    x = np.array(data.draw(st.lists(elements, min_size=1, max_size=30)), dtype=np.float64).astype(dtype)
    if data.draw(st.booleans()):
        x = x[::2]  # not contiguous
    inside = (x.astype(np.float64) >= lo) & (x.astype(np.float64) <= hi)
    mask = q.grad_mask(x)
    if inside.all():
        assert mask is None
    else:
        assert mask is not None and mask.dtype == x.dtype
        np.testing.assert_array_equal(mask, inside.astype(x.dtype))
