"""Layers: finite-difference gradient checks (float64), float identity of the quantized path,
fast == exact where the docstring says so."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fxp
from hwsim import Precision, RoleFormat, fast_mode_is_exact
from hwsim.layers import (
    ACTIVATIONS,
    Activation,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    MaxPool2d,
    SoftmaxCrossEntropy,
)

F64 = np.float64


def away_from_kinks(rng, shape):
    """Values in ±[0.1, 0.9] ∪ ±[1.1, 2.0]: no activation kink within a finite-difference step."""
    mag = np.where(rng.random(shape) < 0.5, rng.uniform(0.1, 0.9, shape), rng.uniform(1.1, 2.0, shape))
    return mag * rng.choice([-1.0, 1.0], shape)


def numeric_grad(f, a, idx, eps=1e-6):
    old = a[idx]
    a[idx] = old + eps
    fp = f()
    a[idx] = old - eps
    fm = f()
    a[idx] = old
    return (fp - fm) / (2 * eps)


def check_layer_gradients(layer, x, n_checks=12, seed=0, rtol=1e-5, atol=1e-7):
    """dx of S = sum(y * R) and parameter grads of S / N against central differences."""
    rng = np.random.default_rng(seed)
    y = layer.forward(x, training=True)
    r = rng.standard_normal(y.shape)
    dx = layer.backward(r.copy())
    grads = {k: g.copy() for k, g in layer.grads().items()}
    n = x.shape[0]

    def S():
        return float((layer.forward(x, training=True) * r).sum())

    for _ in range(n_checks):
        idx = tuple(int(rng.integers(s)) for s in x.shape)
        assert dx[idx] == pytest.approx(numeric_grad(S, x, idx), rel=rtol, abs=atol), ("dx", idx)
    for name, p in layer.params().items():
        for _ in range(n_checks):
            idx = tuple(int(rng.integers(s)) for s in p.shape)
            num = numeric_grad(S, p, idx) / n
            assert grads[name][idx] == pytest.approx(num, rel=rtol, abs=atol), (name, idx)


def test_dense_gradients():
    rng = np.random.default_rng(1)
    check_layer_gradients(Dense(7, 5, seed=3, dtype=F64), rng.standard_normal((4, 7)))


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, 2)])
def test_conv2d_gradients(stride, padding):
    rng = np.random.default_rng(2)
    layer = Conv2d(2, 3, 3, stride=stride, padding=padding, seed=4, dtype=F64)
    layer.b[:] = rng.standard_normal(3)
    check_layer_gradients(layer, rng.standard_normal((2, 2, 6, 5)))


def test_conv2d_matches_direct_convolution():
    rng = np.random.default_rng(3)
    layer = Conv2d(2, 3, (3, 2), stride=2, padding=1, seed=1, dtype=F64)
    layer.b[:] = rng.standard_normal(3)
    x = rng.standard_normal((2, 2, 7, 6))
    y = layer.forward(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros_like(y)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            patch = xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 2]
            ref[:, :, i, j] = np.einsum("ncij,ocij->no", patch, layer.W) + layer.b
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    assert layer.output_shape((2, 7, 6)) == y.shape[1:]


@pytest.mark.parametrize("cls,k,stride", [(MaxPool2d, 2, None), (MaxPool2d, 3, 2), (AvgPool2d, 2, None),
                                          (AvgPool2d, 3, 1)])
def test_pool_gradients(cls, k, stride):
    rng = np.random.default_rng(4)
    layer = cls(k, stride)
    x = rng.permutation(np.arange(2 * 2 * 7 * 7, dtype=F64)).reshape(2, 2, 7, 7) * 0.1  # no ties
    y = layer.forward(x)
    assert y.shape[1:] == layer.output_shape((2, 7, 7))
    check_layer_gradients(layer, x)


def test_maxpool_values():
    x = np.arange(16, dtype=F64).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(MaxPool2d(2).forward(x)[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(AvgPool2d(2).forward(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])


@pytest.mark.parametrize("kind", sorted(set(ACTIVATIONS) - {"sign"}))
def test_activation_gradients(kind):
    rng = np.random.default_rng(5)
    check_layer_gradients(Activation(kind), away_from_kinks(rng, (3, 8)))


def test_sign_straight_through():
    layer = Activation("sign")
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    np.testing.assert_array_equal(layer.forward(x, training=True), [[-1, -1, 1, 1, 1]])
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), [[0, 1, 1, 1, 0]])


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 3, 3)])
def test_batchnorm_gradients(shape):
    rng = np.random.default_rng(6)
    layer = BatchNorm(4, dtype=F64)
    layer.gamma[:] = rng.uniform(0.5, 1.5, 4)
    layer.beta[:] = rng.standard_normal(4)
    check_layer_gradients(layer, rng.standard_normal(shape) * 2 + 1)


def test_batchnorm_inference_uses_running_statistics():
    rng = np.random.default_rng(7)
    layer = BatchNorm(3, momentum=1.0, dtype=F64)
    x = rng.standard_normal((50, 3)) * 3 + 2
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.running_mean, x.mean(0))
    y = layer.forward(x, training=False)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(0), np.sqrt(49 / 50), rtol=1e-6)


def test_dropout_gradients_and_reproducibility():
    rng = np.random.default_rng(8)
    layer = Dropout(0.3)
    x = rng.standard_normal((5, 40))
    check_layer_gradients(layer, x)
    y1 = layer.forward(x, training=True)
    assert 0.5 < (y1 != 0).mean() < 0.9
    np.testing.assert_array_equal(y1, layer.forward(x, training=True))
    layer.step = 1
    assert not np.array_equal(y1, layer.forward(x, training=True))
    np.testing.assert_array_equal(layer.forward(x, training=False), x)


def test_flatten_gradients():
    rng = np.random.default_rng(9)
    layer = Flatten()
    x = rng.standard_normal((2, 3, 4, 5))
    assert layer.forward(x, training=True).shape == (2, 60)
    check_layer_gradients(layer, x)


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(10)
    z = rng.standard_normal((5, 4)) * 3
    y = rng.integers(0, 4, 5)
    fn = SoftmaxCrossEntropy()
    loss = float(fn.forward(z, y))
    ref = np.mean([np.log(np.exp(z[i]).sum()) - z[i, y[i]] for i in range(5)])
    assert loss == pytest.approx(ref, rel=1e-12)
    g = fn.backward()
    for idx in [(0, 0), (2, 3), (4, 1)]:
        num = numeric_grad(lambda: float(fn.forward(z, y)) * 5, z, idx)  # summed loss
        assert g[idx] == pytest.approx(num, rel=1e-6, abs=1e-8)


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="activation 'relux'"):
        Activation("relux")
    with pytest.raises(ValueError, match="stride"):
        Conv2d(1, 2, 3, stride=0)
    with pytest.raises(ValueError, match="Dropout p"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="input shape"):
        Dense(3, 2).output_shape((4,))


# ---------------------------------------------------------------- the quantized path

FP32_EVERYWHERE = Precision(*[RoleFormat(fxp.FloatFormat(8, 23))] * 6, seed=3)


@pytest.mark.parametrize("precision", [Precision(seed=7), FP32_EVERYWHERE], ids=["roles-None", "roles-fp32"])
def test_quantized_layer_with_float_roles_equals_float_layer(precision):
    """All roles None (or quantizing to float32 itself) gives exactly the float layer."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 9)).astype(np.float32)
    dy = rng.standard_normal((6, 4)).astype(np.float32)
    q, ref = Dense(9, 4, seed=1), Dense(9, 4, seed=1)
    q.precision = precision
    y = q.forward(x, training=True)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x @ ref.W + ref.b)
    dx = q.backward(dy)
    np.testing.assert_array_equal(dx, dy @ ref.W.T)
    np.testing.assert_array_equal(q.dW, (x.T @ dy) * np.float32(1 / 6))
    np.testing.assert_array_equal(q.db, dy.sum(0) * np.float32(1 / 6))


def test_quantization_points_put_values_on_the_grid():
    rng = np.random.default_rng(12)
    p = Precision.from_flags(weight="s8.6", activation="s8.4", error="s8.5", grad="s16.12",
                             acc="s16.10")
    layer = Dense(5, 3, seed=2)
    layer.precision = p
    y = layer.forward(rng.standard_normal((4, 5)).astype(np.float32), training=True)
    def on_grid(a, f):
        return np.array_equal(a * 2.0**f, np.round(a * 2.0**f))
    assert on_grid(y, 4) and np.abs(y).max() <= 8
    layer.backward(rng.standard_normal((4, 3)).astype(np.float32))
    assert on_grid(layer.dW, 12) and on_grid(layer.db, 12)


def test_saturated_outputs_get_no_gradient():
    """Straight-through estimator with clipping: no gradient through a saturated logit."""
    layer = Dense(1, 2, seed=0)
    layer.W[:] = [[100.0, 0.5]]
    layer.precision = Precision.from_flags(activation="s8.4")  # range [-8, 7.9375]
    layer.forward(np.ones((1, 1), np.float32), training=True)
    layer.backward(np.ones((1, 2), np.float32))
    assert layer.dW[0, 0] == 0 and layer.dW[0, 1] == 1


fixed_fmt = st.builds(lambda w, f: f"s{w}.{f}", st.integers(2, 8), st.integers(0, 6))


@settings(max_examples=25)
@given(w=fixed_fmt, a=fixed_fmt, k=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_fast_equals_exact_where_documented(w, a, k, seed):
    wf, af = fxp.Fixed.parse(w), fxp.Fixed.parse(a)
    acc = f"s{min(62, wf.word + af.word + 8)}.{wf.frac + af.frac}"
    fast = Precision.from_flags(weight=w, activation=a, acc=acc)
    assert fast_mode_is_exact(fast, k, np.float32)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((3, k)) * 4).astype(np.float32)
    b = rng.standard_normal(5)
    outs = []
    for mode in ("fast", "exact"):
        layer = Dense(k, 5, seed=seed)
        layer.b[:] = b
        layer.precision = fast.replace(mode=mode)
        outs.append(layer.forward(x))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_fast_equals_exact_in_float64_beyond_float32():
    """Sums of ~30 bits: not exact in float32 (the predicate says so) but exact in float64."""
    p = Precision.from_flags(weight="s12.8", activation="s24.8", acc="s48.16")
    assert not fast_mode_is_exact(p, 16, np.float32) and fast_mode_is_exact(p, 16, np.float64)
    rng = np.random.default_rng(13)
    x = rng.uniform(-100, 100, (8, 16))
    w = rng.uniform(-7, 7, (16, 4))
    outs = []
    for mode in ("fast", "exact"):
        layer = Dense(16, 4, seed=1, dtype=F64)
        layer.W[:] = w
        layer.precision = p.replace(mode=mode)
        outs.append(layer.forward(x))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.abs(outs[0]).max() > 2**10  # the sums really need more than float32's 24 bits


def test_conv2d_fast_equals_exact():
    p = Precision.from_flags(weight="s6.4", activation="s6.3", acc="s24.7")
    assert fast_mode_is_exact(p, 2 * 3 * 3, np.float32)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    outs = []
    for mode in ("fast", "exact"):
        layer = Conv2d(2, 3, 3, padding=1, seed=5)
        layer.precision = p.replace(mode=mode)
        outs.append(layer.forward(x))
    np.testing.assert_array_equal(outs[0], outs[1])
