"""Structured linear layers: forward == x @ dense_matrix(), finite-difference gradients, parameter
counts, precision roles, seq tokens and workload ops."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim import Precision
from hwsim.layers import ACDC, AFDF, Circulant, Fastfood, Hashed, LowRank, fwht
from hwsim.layers._fwht import fwht_inplace, hadamard
from hwsim.layers._hashed import hash_index_sign

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
    def on_grid(a, f):
        return np.array_equal(a * 2.0**f, np.round(a * 2.0**f))
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


# ---------------------------------------------------------------- every structured layer

FACTORIES = {
    "circulant": lambda n, m, s: Circulant(n, seed=s, dtype=F64),
    "acdc": lambda n, m, s: ACDC(n, depth=3, seed=s, dtype=F64),
    "acdc_perm": lambda n, m, s: ACDC(n, depth=2, permute=True, seed=s, dtype=F64),
    "afdf": lambda n, m, s: AFDF(n, depth=2, seed=s, dtype=F64),
    "fastfood": lambda n, m, s: Fastfood(n, m, seed=s, dtype=F64),
    "fastfood_adaptive": lambda n, m, s: Fastfood(n, m, adaptive=True, seed=s, dtype=F64),
    "lowrank": lambda n, m, s: LowRank(n, m, max(1, min(n, m) // 2), seed=s, dtype=F64),
    "hashed": lambda n, m, s: Hashed(n, m, max(1, n * m // 3), seed=s, dtype=F64),
}


def _perturbed(layer, seed):
    """Move every parameter off its init (bias included) so no term of the gradient vanishes."""
    rng = _rng(seed)
    for p in layer.params().values():
        p += 0.3 * rng.standard_normal(p.shape)
    return layer


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(sorted(FACTORIES)), n=st.integers(2, 24), m=st.integers(1, 40),
       batch=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_forward_is_x_times_dense_matrix(kind, n, m, batch, seed):
    layer = _perturbed(FACTORIES[kind](n, m, seed), seed)
    x = _rng(seed + 1).standard_normal((batch, layer.in_features))
    offset = layer.forward(np.zeros((1, layer.in_features)))  # the bias (ACDC: its DCT-domain biases)
    np.testing.assert_allclose(layer.forward(x), x @ layer.dense_matrix() + offset, rtol=1e-9, atol=1e-9)
    assert layer.dense_matrix().shape == (layer.in_features, layer.out_features)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_float32_forward_matches_the_float64_matrix(kind):
    layer = FACTORIES[kind](32, 48, 3)
    layer64 = _perturbed(layer, 4)
    x = _rng(5).standard_normal((6, layer.in_features))
    ref = x @ layer64.dense_matrix() + layer64.forward(np.zeros((1, layer.in_features)))
    lay32 = FACTORIES[kind](32, 48, 3)
    for name, p in layer64.params().items():
        lay32.set_param(name, p.astype(np.float32))
    for name, p in layer64.buffers().items():
        lay32.set_param(name, p.astype(np.float32))
    y = lay32.forward(x.astype(np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=2e-4, atol=2e-4 * np.abs(ref).max())


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_gradients_of_every_parameter_and_the_input(kind):
    layer = _perturbed(FACTORIES[kind](6, 11, 7), 8)
    check_layer_gradients(layer, _rng(9).standard_normal((3, layer.in_features)), n_checks=8)


def test_acdc_relu_gradients_and_no_dense_matrix():
    layer = _perturbed(ACDC(6, depth=3, relu=True, permute=True, seed=1, dtype=F64), 2)
    check_layer_gradients(layer, _rng(3).standard_normal((4, 6)), n_checks=8)
    with pytest.raises(ValueError, match="relu=true"):
        layer.dense_matrix()
    assert ACDC(6, depth=1, relu=True).dense_matrix().shape == (6, 6)  # one factor: nothing between


def test_parameter_counts():
    assert ACDC(32, depth=16).num_parameters() == 3 * 16 * 32
    assert ACDC(32, depth=16, bias=False).num_parameters() == 2 * 16 * 32
    assert AFDF(32, depth=2).num_parameters() == 4 * 2 * 32 + 32
    ff = Fastfood(784, 1024)
    assert (ff.d, ff.blocks, ff.num_parameters()) == (1024, 1, 1024)
    ffa = Fastfood(784, 2048, adaptive=True)
    assert (ffa.blocks, ffa.num_parameters()) == (2, 3 * 2 * 1024 + 2048)
    assert LowRank(784, 1024, 32).num_parameters() == 32 * (784 + 1024) + 1024
    assert Hashed(784, 1024, 16384).num_parameters() == 16384 + 1024
    for layer in (ACDC(8, 2), AFDF(8), Fastfood(5, 9), LowRank(5, 9, 2), Hashed(5, 9, 7), Circulant(8)):
        biases = [p for n, p in layer.params().items() if n in ("b", "bias")]
        assert biases and not any(b.any() for b in biases)  # a fresh layer's bias is zero


def test_acdc_inits():
    x = _rng().standard_normal((4, 16))
    ident = ACDC(16, depth=8, seed=0, dtype=F64)
    assert np.abs(ident.dense_matrix() - np.eye(16)).max() < 2.0  # near the identity
    small = ACDC(16, depth=8, init="small", seed=0, dtype=F64)
    assert np.abs(small.forward(x)).max() < 1e-12  # the failing init: the product vanishes
    assert abs(ACDC(64, 1, sigma=0.5, seed=1).A.std() - 0.5) < 0.1
    with pytest.raises(ValueError, match="init must be one of"):
        ACDC(4, init="zeros")


def test_lowrank_from_dense_is_the_truncated_svd():
    dense = hwsim.Dense(12, 9, seed=3, dtype=F64)
    dense.b[:] = 1.5
    full = LowRank.from_dense(dense, 9)
    np.testing.assert_allclose(full.dense_matrix(), dense.W, atol=1e-12)
    r3 = LowRank.from_dense(dense, 3)
    s = np.linalg.svd(dense.W, compute_uv=False)
    assert np.linalg.norm(r3.dense_matrix() - dense.W, 2) == pytest.approx(s[3], rel=1e-9)
    assert np.array_equal(r3.b, dense.b)
    with pytest.raises(ValueError, match="rank must be in"):
        LowRank(4, 3, 4)


def test_hashed_hash_is_counter_based_and_spreads():
    h1, xi1 = hash_index_sign(5, 40, 50, 97)
    h2, xi2 = hash_index_sign(5, 40, 50, 97)
    assert np.array_equal(h1, h2) and np.array_equal(xi1, xi2)
    h3, _ = hash_index_sign(6, 40, 50, 97)
    assert (h1 != h3).mean() > 0.9
    # a sub-matrix's hash is the prefix of the counter stream: row i, column j depend on i·cols + j only
    hs, _ = hash_index_sign(5, 10, 50, 97)
    assert np.array_equal(hs, h1[:10])
    counts = np.bincount(h1.ravel(), minlength=97)
    assert counts.min() > 0 and counts.max() < 2.5 * counts.mean() and 0.4 < (xi1 > 0).mean() < 0.6
    layer = Hashed(40, 50, 97, seed=5)
    assert layer.hash_seed == 5 and not layer.buffers()
    with pytest.raises(ValueError, match="budget must be in"):
        Hashed(2, 3, 7)


# ---------------------------------------------------------------- FWHT and exactness

@settings(max_examples=20, deadline=None)
@given(log_d=st.integers(0, 9), rows=st.integers(1, 5),
       dtype=st.sampled_from([np.float32, np.float64, np.int64]),
       seed=st.integers(0, 2**31 - 1))
def test_fwht_equals_the_hadamard_product(log_d, rows, dtype, seed):
    d = 1 << log_d
    a = _rng(seed).integers(-1000, 1000, (rows, d)).astype(dtype)
    expect = a.astype(np.float64) @ hadamard(d)  # small integers: exact in every dtype
    got = fwht(a)
    assert got.dtype == dtype and np.array_equal(got, expect.astype(dtype))
    assert np.array_equal(fwht(fwht(a)).astype(np.float64), d * a.astype(np.float64))  # H H = d I


def test_fwht_errors():
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="dtype"):
        fwht(np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="C-contiguous"):
        fwht_inplace(np.zeros((4, 8)).T)
    with pytest.raises(TypeError):
        fwht([1.0, 2.0])


fixed_small = st.builds(lambda w, f: f"s{w}.{f}", st.integers(3, 8), st.integers(0, 5))


@settings(max_examples=15, deadline=None)
@given(w=fixed_small, a=fixed_small, adaptive=st.booleans(), seed=st.integers(0, 2**16),
       rounding=st.sampled_from(["nearest_even", "stochastic", "toward_zero"]))
def test_fastfood_fast_equals_exact_in_float64(w, a, adaptive, seed, rounding):
    """The documented condition: every intermediate fits float64's 53 bits (acc word + weight word
    and acc word + log2 d)."""
    acc = f"s30.{int(w.split('.')[1]) + int(a.split('.')[1])}:{rounding}"
    p = Precision.from_flags(weight=w, activation=a, acc=acc, seed=seed)
    x = (_rng(seed).standard_normal((3, 13)) * 3)
    outs = []
    for mode in ("fast", "exact"):
        layer = Fastfood(13, 20, adaptive=adaptive, seed=seed, dtype=F64)
        layer.precision = p.replace(mode=mode)
        outs.append(layer.forward(x))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_fastfood_exact_intermediates_are_on_the_acc_grid_and_checked():
    p = Precision.from_flags(weight="s8.6", activation="s8.4", acc="s20.8", mode="exact")
    layer = Fastfood(5, 8, seed=1)
    layer.precision = p
    y = layer.forward(_rng().standard_normal((2, 5)).astype(np.float32))
    assert np.array_equal(y * 16, np.round(y * 16))
    wide = Precision.from_flags(weight="s8.6", activation="s8.4", acc="s60.10", mode="exact")
    big = Fastfood(16, 16, seed=1)
    big.precision = wide
    with pytest.raises(ValueError, match="62"):
        big.forward(np.ones((1, 16), np.float32))


def test_lowrank_fast_equals_exact_where_documented():
    p = Precision.from_flags(weight="s6.4", activation="s6.3", acc="s24.7")
    assert hwsim.fast_mode_is_exact(p, 10, np.float32)
    x = _rng().standard_normal((3, 10)).astype(np.float32)
    outs = []
    for mode in ("fast", "exact"):
        layer = LowRank(10, 7, 3, seed=2)
        layer.precision = p.replace(mode=mode)
        outs.append(layer.forward(x))
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_roles_put_outputs_and_gradients_on_their_grids(kind):
    layer = {"circulant": lambda: Circulant(8), "acdc": lambda: ACDC(8, 2),
             "acdc_perm": lambda: ACDC(8, 2, permute=True),
             "afdf": lambda: AFDF(8), "fastfood": lambda: Fastfood(8, 8), "fastfood_adaptive":
             lambda: Fastfood(8, 8, adaptive=True), "lowrank": lambda: LowRank(8, 8, 2),
             "hashed": lambda: Hashed(8, 8, 20)}[kind]()
    layer.precision = Precision.from_flags(weight="s8.6", activation="s8.4", error="s8.5", grad="s16.12")
    y = layer.forward(_rng().standard_normal((4, 8)).astype(np.float32), training=True)
    def on_grid(v, f):
        return np.array_equal(v * 2.0**f, np.round(v * 2.0**f))
    assert on_grid(y, 4) and np.abs(y).max() <= 8
    layer.backward(_rng(1).standard_normal((4, 8)).astype(np.float32))
    assert all(on_grid(g, 12) for g in layer.grads().values())


# ---------------------------------------------------------------- seq specs, training, workload

@pytest.mark.parametrize("spec, n_in, types", [
    ("seq:784,fastfood(1024),relu,dense(10)", 784, ["Fastfood", "Activation", "Dense"]),
    ("seq:32,acdc(depth=16)", 32, ["ACDC"]),
    ("seq:784,hashed(1024,budget=16384),relu,dense(10)", 784, ["Hashed", "Activation", "Dense"]),
    ("seq:64,afdf(depth=2,init=small),lowrank(10,rank=3)", 64, ["AFDF", "LowRank"]),
    ("seq:16,acdc(depth=4,relu=true,permute=true,bias=false,sigma=0.05),circulant,dense(10)", 16,
     ["ACDC", "Circulant", "Dense"]),
])
def test_seq_specs_build(spec, n_in, types):
    m = hwsim.build_model(spec, (n_in,), None)
    assert [type(la).__name__ for la in m.layers] == types
    assert m.forward(np.zeros((2, n_in), np.float32)).shape == (2, m.output_shape[0])


def test_seq_spec_keywords_reach_the_layers():
    _, (a, f, h, lr) = hwsim._seq_spec.parse_seq(
        "seq:16,acdc(depth=3,relu=true,permute=true,init=small,sigma=0.01),fastfood(40,adaptive=true),"
        "hashed(12,budget=50,bias=false),lowrank(4,rank=2)")
    assert (a.depth, a.relu, a.perm.shape, a.init) == (3, True, (2, 16), "small") and abs(a.A.std()) < 0.05
    assert f.adaptive and f.out_features == 40 and (h.budget, h.has_bias) == (50, False) and lr.rank == 2


@pytest.mark.parametrize("spec, needle", [
    ("seq:32,acdc(depth=0)", "depth must be in [1, 100]"),
    ("seq:32,acdc(depth=2,init=zeros)", "init must be one of identity, small"),
    ("seq:32,acdc(2)", "unexpected argument(s) 2"),
    ("seq:32,afdf(depth=2,relu=true)", "unexpected argument(s) relu="),
    ("seq:8,hashed(4,budget=40)", "budget must be in [1, 32]"),
    ("seq:8,hashed(4)", "missing budget="),
    ("seq:8,lowrank(4,rank=5)", "rank must be in [1, 4]"),
    ("seq:8,fastfood", "missing out"),
    ("seq:1x4x4,fastfood(8)", "needs a flat input"),
    ("seq:8,fastfood(8,adaptive=yes)", "adaptive must be true or false"),
    ("seq:8,fastfod(8)", "valid layers: acdc(depth=K"),
])
def test_seq_spec_errors(spec, needle):
    with pytest.raises(ValueError) as err:
        hwsim.build_model(spec, (int(spec[4:].split(",")[0].split("x")[0]) if "x" not in spec.split(",")[0]
                                 else 16,), None)
    assert needle in str(err.value)


def test_models_round_trip_through_state_dict():
    spec = "seq:16,acdc(depth=2,permute=true),fastfood(20),hashed(12,budget=30),lowrank(6,rank=2),circulant"
    a = hwsim.build_model(spec, (16,), None, seed=1)
    for _, _, p in a.parameters():
        p += 0.1
    b = hwsim.build_model(spec, (16,), None, seed=1)  # permutations and hashes come from the seed
    b.load_state_dict(a.state_dict())
    x = _rng().standard_normal((3, 16)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_mse_regression_trains_a_structured_layer(tmp_path):
    rng = _rng(0)
    X = rng.standard_normal((600, 8)).astype(np.float32)
    W = rng.uniform(0, 1, (8, 8))
    path = tmp_path / "lin.npz"
    np.savez(path, X=X, y=X @ W + 0.01 * rng.standard_normal((600, 8)))
    data = hwsim.load_data(f"npz:{path}", split=500)
    assert data.task == "regression" and data.num_classes == 8 and data.y_train.dtype == np.float32
    model = hwsim.build_model("seq:8,acdc(depth=8)", data.input_shape, data.num_classes)
    before = hwsim.evaluate(model, data.X_test, data.y_test)["mse"]
    metrics = hwsim.train(model, data, Precision(), epochs=15, batch=50, lr=3e-2, progress=False)
    assert "test_accuracy" not in metrics and len(metrics["test_mse_per_epoch"]) == 15
    assert metrics["test_mse"] < 0.15 * before
    with pytest.raises(ValueError, match="needs integer class labels"):
        hwsim.train(model, data, Precision(), epochs=1, batch=50, loss="xent", progress=False)


def _ops(spec, n_in, training=False, batch=4):
    return hwsim.workload(hwsim.build_model(spec, (n_in,), None), batch=batch, training=training).ops


def test_workload_op_kinds_and_counts():
    acdc = _ops("seq:32,acdc(depth=3)", 32)
    dct = [op for op in acdc if op.family == "transform"]
    assert (len(dct) == 6 and {op.kind for op in dct} == {"dct"}
            and all(op.count == 4 and op.n == 32 for op in dct))
    assert sum(op.family == "elementwise" for op in acdc) == 6
    afdf = _ops("seq:32,afdf(depth=2)", 32)
    assert [op.kind for op in afdf if op.family == "transform"] == ["fft"] * 4
    ff = _ops("seq:784,fastfood(2048)", 784)
    fw = [op for op in ff if op.family == "transform"]
    assert [op.kind for op in fw] == ["fwht", "fwht"] and all((op.n, op.count) == (1024, 8) for op in fw)
    assert not any(op.family == "matmul" for op in ff)
    lr = [op for op in _ops("seq:784,lowrank(256,rank=16)", 784) if op.family == "matmul"]
    assert [(op.k, op.n) for op in lr] == [(784, 16), (16, 256)]
    hs = _ops("seq:784,hashed(1024,budget=16384)", 784)
    mm = next(op for op in hs if op.family == "matmul")
    assert (mm.k, mm.n, mm.weight_elements) == (784, 1024, 16384)
    dense_w = next(t for t in hwsim.workload(hwsim.build_model("seq:784,dense(1024)", (784,),
                                                               None)).ops).traffic()[1]
    assert mm.traffic()[1].nbytes == 16384 * 4 < dense_w.nbytes
    assert any(op.name.endswith("/hash") and op.ops == 784 * 1024 * 10 for op in hs)
    train = _ops("seq:32,acdc(depth=3),relu,fastfood(32,adaptive=true),lowrank(10,rank=2)", 32, training=True)
    names = [op.name for op in train]
    assert sum("bwd_dct" in n or "bwd_idct" in n for n in names) == 6
    assert sum("bwd_fwht" in n for n in names) == 2 and sum("/update" in n for n in names) == 3


def test_cli_trains_regression_and_costs_structured_models(tmp_path, capsys):
    from hwsim.cli import main
    rng = _rng(1)
    X = rng.standard_normal((120, 8)).astype(np.float32)
    np.savez(tmp_path / "r.npz", X=X, y=X[:, 0] - 2 * X[:, 1])
    out = tmp_path / "run"
    assert main(["train", "--model", "seq:8,lowrank(8,rank=2),relu,dense(1)", "--data",
                 f"npz:{tmp_path / 'r.npz'}",
                 "--split", "100", "--epochs", "2", "--loss", "mse", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "test_mse" in metrics and "test_accuracy" not in metrics
    bad = tmp_path / "bad"
    assert main(["train", "--model", "seq:8,dense(1)", "--data", f"npz:{tmp_path / 'r.npz'}",
                 "--loss", "xent",
                 "--out", str(bad), "--quiet"]) != 0
    assert not bad.exists() and "needs integer class labels" in capsys.readouterr().err
    assert main(["cost", "--model", "seq:784,fastfood(1024),relu,circulant,dense(10)", "--device",
                 "optical4f",
                 "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["devices"]["optical4f"]["layers"]
    assert [la["name"] for la in layers] == ["fastfood0", "relu1", "circulant2", "dense3"]
    assert layers[2]["bound"] == "io"  # the circulant runs optically, the rest on the host
