"""Structured linear layers: forward == x @ dense_matrix(), finite-difference gradients, parameter
counts, precision roles, seq tokens and workload ops."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim import Precision
from hwsim.layers import Circulant

from .test_layers import check_layer_gradients

F64 = np.float64


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- Circulant

@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 40), batch=st.integers(1, 5), seed=st.integers(0, 2**31 - 1),
       sign=st.booleans())
def test_circulant_forward_is_its_dense_matrix(n, batch, seed, sign):
    layer = Circulant(n, sign=sign, seed=seed, dtype=F64)
    layer.b[:] = _rng(seed).standard_normal(n)
    x = _rng(seed + 1).standard_normal((batch, n))
    m = layer.dense_matrix()
    np.testing.assert_allclose(layer.forward(x), x @ m + layer.b, rtol=1e-10, atol=1e-10)
    # the matrix is D̃₁ times a circulant with first column r (scipy's convention: C[i, j] = r[i - j])
    ref = np.diag(layer.sign) @ scipy.linalg.circulant(layer.kernel()).T
    np.testing.assert_allclose(m, ref, atol=1e-12)


def test_circulant_float32_forward_matches_float64_matrix():
    layer = Circulant(64, seed=3)
    x = _rng(3).standard_normal((8, 64)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x.astype(F64) @ layer.dense_matrix(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", [2, 7, 16])
def test_circulant_gradients(n):
    layer = Circulant(n, seed=5, dtype=F64)
    layer.b[:] = _rng(1).standard_normal(n)
    check_layer_gradients(layer, _rng(2).standard_normal((3, n)))


def test_circulant_parameters_and_inert_bins():
    layer = Circulant(16, seed=0)
    assert layer.num_parameters() == 2 * (16 // 2 + 1) + 16
    assert Circulant(16, bias=False).num_parameters() == 18
    assert layer.spec_im[0] == 0 and layer.spec_im[-1] == 0 and not layer.b.any()
    layer.forward(_rng().standard_normal((4, 16)).astype(np.float32), training=True)
    layer.backward(_rng(1).standard_normal((4, 16)).astype(np.float32))
    assert layer.dspec_im[0] == 0 and layer.dspec_im[-1] == 0
    assert set(np.unique(layer.sign)) <= {-1.0, 1.0}
    assert np.all(Circulant(8, sign=False).sign == 1)


def test_circulant_init_preserves_variance():
    layer = Circulant(1024, seed=0, dtype=F64)
    x = _rng().standard_normal((256, 1024))
    assert 0.8 < layer.forward(x).var() < 1.2


def test_circulant_roles_put_values_on_grids():
    layer = Circulant(8, seed=1)
    layer.precision = Precision.from_flags(weight="s8.6", activation="s8.4", error="s8.5", grad="s16.12")
    y = layer.forward(_rng().standard_normal((4, 8)).astype(np.float32), training=True)
    on_grid = lambda a, f: np.array_equal(a * 2.0**f, np.round(a * 2.0**f))
    assert on_grid(y, 4)
    layer.backward(_rng(1).standard_normal((4, 8)).astype(np.float32))
    assert on_grid(layer.dspec_re, 12) and on_grid(layer.dspec_im, 12) and on_grid(layer.db, 12)


def test_circulant_convolve_hook_is_used():
    """An optics model overrides `convolve`; forward goes through it."""
    class Doubled(Circulant):
        def convolve(self, u, spectrum):
            return 2 * super().convolve(u, spectrum)
    x = _rng().standard_normal((2, 8))
    a, b = Circulant(8, seed=2, dtype=F64), Doubled(8, seed=2, dtype=F64)
    np.testing.assert_allclose(b.forward(x), 2 * a.forward(x))


def test_circulant_seq_token_and_workload():
    m = hwsim.build_model("seq:16,circulant,relu,circulant(bias=false,sign=false),dense(10)", (16,), 10)
    assert [type(la).__name__ for la in m.layers] == ["Circulant", "Activation", "Circulant", "Dense"]
    assert not m.layers[2].has_bias
    ops = hwsim.workload(m, batch=4).ops
    circ = [op for op in ops if getattr(op, "structure", "dense") == "circulant"]
    assert len(circ) == 2 and all((op.m, op.k, op.n) == (4, 16, 16) for op in circ)
    assert [op.name for op in ops if op.name.endswith("/sign")] == ["circulant0/sign"]
    with pytest.raises(ValueError, match="needs a flat input"):
        hwsim.build_model("seq:1x4x4,circulant", (1, 4, 4), None)
    with pytest.raises(ValueError, match="sign must be true or false"):
        hwsim.build_model("seq:16,circulant(sign=2)", (16,), None)


def test_circulant_costs_ffts_electronically_and_runs_optically():
    import devices
    m = hwsim.build_model("seq:4096,circulant", (4096,), None)
    wl = hwsim.workload(m, batch=8)
    circ = next(op for op in wl if op.name.endswith("/circ"))
    assert circ.macs == 8 * (5 * 4096 * 12 + 6 * 2049) // 2  # two real FFTs + spectral product, not n²
    rows = devices.estimate(wl, "optical4f").rows
    assert [r.part for r in rows if r.name.endswith("/circ")] == ["optical"]
