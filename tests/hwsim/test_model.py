"""Models: specs, shapes, state dicts, whole-model gradients, precision propagation."""
from __future__ import annotations

import numpy as np
import pytest

from hwsim import Dense, Precision, Sequential, build_model
from hwsim.layers import Activation, DivergenceError, SoftmaxCrossEntropy


def test_mlp_spec():
    m = build_model("mlp:784-256-256-10", (784,), 10)
    assert [layer.name for layer in m.layers] == ["dense0", "relu1", "dense2", "relu3", "dense4"]
    assert m.layers[0].W.shape == (784, 256) and m.layers[0].W.dtype == np.float32
    assert m.output_shape == (10,) and m.num_parameters() == 784 * 256 + 256 + 256 * 256 + 256 + 2570
    img = build_model("mlp:64-32-10:hard_tanh", (1, 8, 8), 10)
    assert img.layers[0].name == "flatten0" and img.layers[2].kind == "hard_tanh"
    assert img.predict(np.zeros((3, 1, 8, 8), np.float32)).shape == (3,)


@pytest.mark.parametrize("shape", [(1, 28, 28), (28, 28), (784,), (1, 8, 8), (64,)])
def test_lenet5_adapts_to_input_size(shape):
    m = build_model("cnn:lenet5", shape, 10)
    assert m.output_shape == (10,)
    x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    y = m.forward(x, training=True)
    assert y.shape == (2, 10)
    assert m.backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize("spec,token", [("mlp:784-25x-10", "25x"), ("mlp:100-10", "100"),
                                        ("mlp:784-10-9", "9"), ("cnn:lenet7", "lenet7"),
                                        ("rnn:3", "rnn"), ("mlp:784-10:relu6", "relu6")])
def test_bad_spec_names_the_token(spec, token):
    with pytest.raises(ValueError, match=f"'{token}'"):
        build_model(spec, (784,), 10)


def test_same_seed_same_weights():
    a, b = build_model("mlp:20-8-3", (20,), 3, seed=4), build_model("mlp:20-8-3", (20,), 3, seed=4)
    c = build_model("mlp:20-8-3", (20,), 3, seed=5)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.array_equal(sa["0.W"], sc["0.W"])


def test_state_dict_round_trip_and_errors():
    a, b = build_model("mlp:20-8-3", (20,), 3, seed=1), build_model("mlp:20-8-3", (20,), 3, seed=2)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).random((4, 20), dtype=np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    with pytest.raises(ValueError, match="missing"):
        b.load_state_dict({"0.W": a.layers[0].W})


def test_model_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    m = build_model("mlp:6-5-4-3:tanh", (6,), 3, seed=2).astype(np.float64)
    x, y = rng.standard_normal((5, 6)), rng.integers(0, 3, 5)
    fn = SoftmaxCrossEntropy()
    fn.forward(m.forward(x, training=True), y)
    m.backward(fn.backward())
    W, dW = m.layers[0].W, m.layers[0].dW.copy()
    for idx in [(0, 0), (3, 2), (5, 4)]:
        old = W[idx]
        W[idx] = old + 1e-6
        lp = float(fn.forward(m.forward(x), y))
        W[idx] = old - 1e-6
        lm = float(fn.forward(m.forward(x), y))
        W[idx] = old
        assert dW[idx] == pytest.approx((lp - lm) / 2e-6, rel=1e-5, abs=1e-9)


def test_set_precision_quantizes_each_input_once():
    m = build_model("mlp:8-6-6-3", (8,), 3)
    m.set_precision(Precision.from_flags(activation="s8.4"))
    assert [layer.quantize_input for layer in m.layers] == [True, False, False, False, False]
    override = Precision.from_flags(activation="s16.8")
    m.layers[2].precision_override = override
    m.set_precision(Precision.from_flags(activation="s8.4"))
    assert m.layers[2].precision is override
    assert [layer.quantize_input for layer in m.layers] == [True, False, True, True, False]


def test_sequential_checks_shapes():
    with pytest.raises(ValueError, match="input shape"):
        Sequential([Dense(4, 3), Activation("relu"), Dense(4, 2)], (4,))


def test_divergence_names_layer_and_role():
    m = build_model("mlp:4-3-2", (4,), 2)
    m.set_precision(Precision.from_flags(activation="s8.4"))
    m.layers[2].W[0, 0] = np.nan
    m.set_flags(check_finite=True)
    with pytest.raises(DivergenceError, match="'dense2'.*'weight'"):
        m.forward(np.ones((2, 4), np.float32))
    m.set_flags(check_finite=False)
    m.set_precision(Precision.from_flags(weight="s8.4"))
    with pytest.raises(DivergenceError, match="'dense2'.*'weight'"):  # NaN into a fixed quantizer
        m.forward(np.ones((2, 4), np.float32))
