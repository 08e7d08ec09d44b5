"""Noisy activations: hand values, exact identity in the linear region, expectation = mean of draws,
finite-difference gradients, schedules, seq tokens, workload, precision, reproducibility."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim import Precision, Sequential, train
from hwsim._precision import role_base, step_seed
from hwsim.layers import AnnealConstant, AnnealInverseSqrt, AnnealLinear, Dense, NoisyActivation
from hwsim.layers._noisy import counter_normals

from ._numgrad import numerical_gradient
from ._synthetic import synthetic_dataset

VARIANTS = ("nan", "nah", "nani", "nanil", "nanis")
SQRT_2_PI = math.sqrt(2 / math.pi)


def sig(z):
    return 1 / (1 + math.exp(-z))


def layer_with(variant, p, base="hard_tanh", dtype=np.float64, **kw):
    layer = NoisyActivation(base, variant, shape=(len(p),), dtype=dtype, **kw)
    if layer.p is not None:
        layer.p = np.asarray(p, dtype=dtype)
    return layer


# ---------------------------------------------------------------- hand values
def test_nan_nah_test_time_hand_values():
    x = np.array([[-3.0, 2.5, 0.5, 0.0, -1.0]])
    p = [1.0, 1.0, 0.3, -0.7, 1.0]
    nan = layer_with("nan", p, alpha=0.9, c=1.0)
    # x=-3: h=-1, u=-3, Δ=2 -> -1 + (-0.1)(2) = -1.2; x=2.5: Δ=-1.5 -> 1 + 0.15; linear: x itself.
    np.testing.assert_allclose(nan.forward(x)[0], [-1.2, 1.15, 0.5, 0.0, -1.0], rtol=0, atol=1e-15)
    nah = layer_with("nah", p, alpha=0.9, c=2.0)
    # d = -sgn(x) sgn(1 - α): +1 at x=-3, -1 at x=2.5; σ = c (sigmoid(pΔ) - 0.5)^2, E|ξ| = sqrt(2/π)
    s1 = 2.0 * (sig(2.0) - 0.5) ** 2
    s2 = 2.0 * (sig(-1.5) - 0.5) ** 2
    want = [-1.2 + s1 * SQRT_2_PI, 1.15 - s2 * SQRT_2_PI, 0.5, 0.0, -1.0]
    np.testing.assert_allclose(nah.forward(x)[0], want, rtol=1e-12)


def test_direction_term_with_alpha_above_one_and_sgn0():
    # α > 1: sgn(1 - α) = -1 flips d; α = 1: sgn(0) = +1, d = -sgn(x)
    x = np.array([[2.0, -2.0]])
    for alpha, sign in ((1.0, 1), (1.5, -1)):
        layer = layer_with("nah", [1.0, 1.0], alpha=alpha, c=1.0)
        s = (sig(-1.0) - 0.5) ** 2  # Δ(2) = -1, Δ(-2) = +1: same σ
        h_leak = [1 - (alpha - 1), -1 + (alpha - 1)]  # h + (α - 1) Δ
        want = [h_leak[0] - sign * s * SQRT_2_PI, h_leak[1] + sign * s * SQRT_2_PI]
        np.testing.assert_allclose(layer.forward(x)[0], want, rtol=1e-12)


def test_training_draws_follow_the_seed_rule():
    layer = layer_with("nan", [0.5, -0.25, 1.0], alpha=0.9, c=3.0)
    layer.precision, layer.index, layer.step = Precision(seed=7), 2, 13
    x = np.array([[3.0, -2.0, 0.25], [-1.5, 4.0, 1.0]])
    xi = counter_normals(step_seed(role_base(7, 2, "noise"), 13), 6).reshape(2, 3)
    h = np.clip(x, -1, 1)
    delta = h - x
    p = np.array([0.5, -0.25, 1.0])
    sigma = 3.0 * (1 / (1 + np.exp(-p * delta)) - 0.5) ** 2
    d = np.where(x >= 0, -1.0, 1.0)
    np.testing.assert_allclose(layer.forward(x, training=True), h - 0.1 * delta + d * sigma * xi, rtol=1e-12)
    nanis = layer_with("nanis", [0, 0, 0], sigma=0.4)
    nanis.precision, nanis.index, nanis.step = Precision(seed=7), 2, 13
    want = np.where(np.abs(x) >= 1, np.clip(x + 0.4 * xi, -1, 1), x)
    np.testing.assert_array_equal(nanis.forward(x, training=True), want)


def test_counter_normals_are_standard_normal():
    z = counter_normals(123, 200_000)
    assert np.isfinite(z).all() and abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    np.testing.assert_array_equal(z[:10], counter_normals(123, 10))


# ---------------------------------------------------------------- exact identity in the linear region
@settings(max_examples=30, deadline=None)
@given(xs=st.lists(st.floats(float(np.float32(-0.999)), float(np.float32(0.999)), width=32),
                   min_size=1, max_size=12),
       variant=st.sampled_from(("nan", "nah", "nanil", "nanis")), step=st.integers(0, 10**6),
       alpha=st.floats(0.5, 1.5), c=st.floats(0.0, 50.0))
def test_linear_region_is_exactly_the_identity(xs, variant, step, alpha, c):
    x = np.array([xs], dtype=np.float32)
    kw = {"sigma": c} if variant == "nanis" else {"c": c}
    if variant in ("nan", "nah"):
        kw["alpha"] = alpha
    layer = NoisyActivation("hard_tanh", variant, shape=(len(xs),), seed=step, **kw)
    layer.step = step
    for training in (False, True):
        y = layer.forward(x, training=training)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, x)
    hs = NoisyActivation("hard_sigmoid", variant, shape=(len(xs),), seed=step, **kw)
    np.testing.assert_array_equal(hs.forward(x, training=True), np.clip((x + 1) * np.float32(0.5), 0, 1))


def test_nani_injects_noise_everywhere():
    layer = layer_with("nani", [0.0, 0.0], sigma=0.1)
    x = np.array([[0.2, -0.3]])
    assert not np.array_equal(layer.forward(x, training=True), x)


# ---------------------------------------------------------------- expectation vs mean of draws
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("base", ["hard_tanh", "hard_sigmoid"])
def test_test_time_output_is_the_mean_of_draws(variant, base):
    x = np.array([[-2.5, -1.1, -0.4, 0.95, 1.3, 3.0]])
    p = [0.9, -0.6, 0.3, 1.0, -1.0, 0.5]
    layer = layer_with(variant, p, base=base, alpha=0.9 if variant in ("nan", "nah") else 1.0,
                       c=4.0, sigma=0.6)
    n = 4000
    draws = np.empty((n, x.shape[1]))
    for t in range(n):
        layer.step = t
        draws[t] = layer.forward(x, training=True)[0]
    se = draws.std(axis=0) / math.sqrt(n)
    # 1e-6: tail mass too rare to show in n draws (nanil far into saturation)
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - layer.forward(x)[0]), 5 * se + 1e-6)


# ---------------------------------------------------------------- finite-difference gradients
def _fd_check(layer, x, wgt, params=("p",), eps=1e-6):
    """Backward vs central differences of L = sum(wgt * y) at a fixed step (fixed noise)."""
    layer.step = 5
    y = layer.forward(x, training=True)
    dx = layer.backward(wgt)
    grads = {k: v.copy() for k, v in layer.grads().items()}

    def loss():
        return float((wgt * layer.forward(x, training=True)).sum())

    np.testing.assert_allclose(dx, numerical_gradient(loss, x, eps), rtol=1e-5, atol=1e-7)
    for name in params:
        if name not in grads:
            continue
        # grads are of the mean loss: sum over the batch / N
        num = numerical_gradient(loss, getattr(layer, name), eps)
        np.testing.assert_allclose(grads[name] * x.shape[0], num, rtol=1e-5, atol=1e-7)
    assert y.shape == x.shape


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("base", ["hard_tanh", "hard_sigmoid"])
def test_gradients_match_finite_differences(variant, base):
    rng = np.random.default_rng(hash((variant, base)) % 2**32)
    x = rng.uniform(-4, 4, (6, 5))
    x[np.abs(np.abs(x) - 1) < 0.05] += 0.1  # away from the kinks at ±x_t
    wgt = rng.standard_normal((6, 5))
    layer = layer_with(variant, rng.uniform(-1, 1, 5), base=base,
                       alpha=0.85 if variant in ("nan", "nah") else 1.0, c=5.0, sigma=0.3)
    _fd_check(layer, x, wgt)


def test_p_receives_gradient_only_in_saturation():
    layer = layer_with("nan", [0.5, 0.5], c=2.0)
    layer.forward(np.array([[0.3, 0.2]]), training=True)
    layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(layer.dp, 0)
    layer.forward(np.array([[3.0, -0.2]]), training=True)
    layer.backward(np.ones((1, 2)))
    assert layer.dp[0] != 0 and layer.dp[1] == 0


def test_image_input_has_one_p_per_channel():
    layer = NoisyActivation("hard_tanh", "nah", shape=(3, 4, 4), c=2.0, dtype=np.float64)
    assert layer.p.shape == (3,)
    x = np.random.default_rng(0).uniform(-3, 3, (2, 3, 4, 4))
    _fd_check(layer, x, np.random.default_rng(1).standard_normal(x.shape))


# ---------------------------------------------------------------- schedules
def test_schedules():
    s = AnnealInverseSqrt(30.0, every=200, floor=0.5)
    assert s(0) == 30.0 and s(199) == 30.0 and s(200) == pytest.approx(30 / math.sqrt(2))
    assert s(200 * 8) == pytest.approx(10.0) and s(200 * 10_000) == 0.5
    lin = AnnealLinear(2.0, 0.5, 100)
    assert lin(0) == 2.0 and lin(50) == pytest.approx(1.25) and lin(100) == 0.5 and lin(10**6) == 0.5
    assert AnnealConstant(0.7)(12345) == 0.7
    assert s.to_dict() == {"kind": "isqrt", "start": 30.0, "every": 200, "floor": 0.5}
    for bad in (lambda: AnnealInverseSqrt(-1.0), lambda: AnnealInverseSqrt(1.0, every=0),
                lambda: AnnealLinear(1.0, 0.0, 0), lambda: AnnealConstant(float("nan"))):
        with pytest.raises(ValueError):
            bad()


def test_annealed_scale_follows_the_training_step():
    layer = NoisyActivation("hard_tanh", "nan", shape=(2,), c=AnnealInverseSqrt(30.0, every=10, floor=0.5))
    layer.step = 0
    assert layer.scale_now() == 30.0
    layer.step = 39
    assert layer.scale_now() == pytest.approx(15.0)


def test_annealing_recorded_per_epoch_in_metrics(tmp_path):
    data = synthetic_dataset(6, 120, 96)
    spec = "seq:6,dense(8),noisy(hard_tanh,variant=nan,c=30,anneal=isqrt,every=3,floor=0.5),dense(3)"
    model = hwsim.build_model(spec, (6,), 3, seed=1)
    m = train(model, data, Precision(), epochs=2, batch=32, progress=False, out=tmp_path)
    rec = json.loads((tmp_path / "metrics.json").read_text())["annealing"]
    assert len(rec) == 2 == len(m["annealing"])
    # 3 batches per epoch: the last step of epoch 1 is 2 (t = 0), of epoch 2 is 5 (t = 1)
    assert rec[0]["nan_hard_tanh1"]["scale"] == 30.0 and rec[0]["nan_hard_tanh1"]["step"] == 2
    assert rec[1]["nan_hard_tanh1"]["scale"] == pytest.approx(30 / math.sqrt(2))
    plain = train(hwsim.build_model("seq:6,dense(8),relu,dense(3)", (6,), 3), data, Precision(),
                  epochs=1, batch=32, progress=False)
    assert "annealing" not in plain


# ---------------------------------------------------------------- seq tokens, precision, cost
def test_seq_tokens_and_errors():
    m = hwsim.build_model("seq:4,dense(5),noisy(hard_sigmoid,variant=nanis,sigma=0.2,anneal=linear,steps=10),"
                          "dense(2)", (4,), 2)
    layer = m.layers[1]
    assert isinstance(layer, NoisyActivation) and layer.variant == "nanis"
    assert layer.scale(5) == pytest.approx(0.1)
    assert layer.params() == {}
    bad = {"noisy(relu)": "base must be one of", "noisy(hard_tanh,variant=nax)": "variant must be one of",
           "noisy(hard_tanh,variant=nan,sigma=0.1)": "unexpected argument",
           "noisy(hard_tanh,c=-1)": "c must be in",
           "noisy(hard_tanh,variant=nani,alpha=0.9)": "unexpected argument",
           "noisy(hard_tanh,anneal=linear)": "missing steps="}
    for tok, msg in bad.items():
        with pytest.raises(ValueError, match=msg):
            hwsim.build_model(f"seq:4,dense(5),{tok},dense(2)", (4,), 2)


def test_under_an_8bit_activation_format_and_cost():
    p = Precision.from_flags(weight="s8.6", activation="s8.4", update="s16.14")
    m = hwsim.build_model("seq:6,dense(8),noisy(hard_tanh,variant=nah,alpha=0.9,c=2),dense(3)", (6,), 3)
    m.set_precision(p)
    x = np.random.default_rng(0).uniform(-2, 2, (4, 6)).astype(np.float32)
    y = m.layers[1].forward(m.layers[0].forward(x, training=True), training=True)
    np.testing.assert_array_equal(y * 16, np.round(y * 16))  # on the s8.4 grid
    ops = {op.name: op for op in hwsim.workload(m, p, batch=4, training=True).ops}
    noise = ops["nah_hard_tanh1/noise"]
    assert noise.n == 32 and noise.bits == 8 and noise.ops_per_element > 0
    assert "nah_hard_tanh1/bwd" in ops and "nah_hard_tanh1/update" in ops
    infer = {op.name for op in hwsim.workload(m, p, batch=4).ops}
    assert "nah_hard_tanh1/fwd" in infer and "nah_hard_tanh1/noise" not in infer


# ---------------------------------------------------------------- reproducibility
def test_noise_is_a_function_of_seed_layer_and_step():
    layer = NoisyActivation("hard_tanh", "nan", shape=(50,), c=5.0, seed=3)
    x = np.full((4, 50), 3.0, np.float32)
    layer.precision = Precision(seed=1)
    ref = layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.forward(x, training=True), ref)
    layer.step = 1
    assert not np.array_equal(layer.forward(x, training=True), ref)
    layer.step, layer.precision, layer._bases = 0, Precision(seed=2), {}
    assert not np.array_equal(layer.forward(x, training=True), ref)


def test_resumed_run_matches_uninterrupted(tmp_path):
    data = synthetic_dataset(6, 160, 128)
    spec = "seq:6,dense(8),noisy(hard_tanh,variant=nah,alpha=0.9,c=30,anneal=isqrt,every=3),dense(3)"
    kw = {"batch": 32, "lr": 0.01, "seed": 2, "progress": False}
    p = Precision(seed=3)
    full = hwsim.build_model(spec, (6,), 3, seed=4)
    ref = train(full, data, p, epochs=3, **kw)
    train(hwsim.build_model(spec, (6,), 3, seed=4), data, p, epochs=1, out=tmp_path, **kw)
    resumed = hwsim.build_model(spec, (6,), 3, seed=4)
    r = train(resumed, data, p, epochs=3, out=tmp_path, resume=True, **kw)
    assert r["train_loss"] == ref["train_loss"] and r["annealing"] == ref["annealing"]
    for k, v in full.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v, err_msg=k)


def test_hard_tanh_network_learns_with_noise():
    data = synthetic_dataset(8, 300, 240)
    model = Sequential([Dense(8, 16, seed=0), NoisyActivation("hard_tanh", "nah", shape=(16,), alpha=0.9,
                                                               c=1.0, seed=1), Dense(16, 3, seed=2)], (8,))
    m = train(model, data, Precision(), epochs=5, batch=32, lr=0.01, progress=False)
    assert m["test_accuracy"] > 0.8
