"""Optimizers and schedules: update formulas, update-format quantization, weight clip, state."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import SGD, Adam, CosineLR, Precision, StepLR, build_model
from hwsim._optim import make_optimizer, parse_schedule


def one_layer(seed=0):
    m = build_model("mlp:3-2", (3,), 2, seed=seed).astype(np.float64)
    layer = m.layers[0]
    layer.dW[:] = np.arange(6.0).reshape(3, 2) - 2.5
    layer.db[:] = [0.5, -1.0]
    return m, layer


def test_sgd_momentum_and_weight_decay():
    m, layer = one_layer()
    w0, g = layer.W.copy(), layer.dW.copy()
    opt = SGD(m, lr=0.1, momentum=0.5, weight_decay=0.01)
    opt.step()
    v1 = g + 0.01 * w0
    np.testing.assert_allclose(layer.W, w0 - 0.1 * v1)
    w1 = layer.W.copy()
    opt.step()
    np.testing.assert_allclose(layer.W, w1 - 0.1 * (0.5 * v1 + g + 0.01 * w1))


def test_adam_matches_reference():
    m, layer = one_layer()
    w, g = layer.W.copy(), layer.dW.copy()
    opt = Adam(m, lr=0.01)
    mom, vel = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, 4):
        opt.step()
        mom = 0.9 * mom + 0.1 * g
        vel = 0.999 * vel + 0.001 * g * g
        lr_t = 0.01 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        w = w - lr_t * mom / (np.sqrt(vel) + 1e-8)
        np.testing.assert_allclose(layer.W, w, rtol=1e-7)


def test_update_format_and_stochastic_rounding():
    """A step below half the update LSB: nearest_even never moves, stochastic moves on average."""
    results = {}
    for rounding in ("nearest_even", "stochastic"):
        m, layer = one_layer()
        m.set_precision(Precision.from_flags(update=f"s16.8:{rounding}", seed=1))
        layer.W[:] = 0.5
        layer.dW[:] = 1.0
        layer.db[:] = 0.0
        opt = SGD(m, lr=0.001)  # step 1e-3 << LSB 2**-8 = 3.9e-3
        for t in range(200):
            m.set_step(t)
            opt.step()
            assert np.array_equal(layer.W * 256, np.round(layer.W * 256))  # stored on the grid
        results[rounding] = layer.W.mean()
    assert results["nearest_even"] == 0.5
    assert results["stochastic"] == pytest.approx(0.5 - 0.2, abs=0.03)


def test_adam_moments_are_not_quantized():
    """Gradients far below the update LSB: Adam's normalised step still moves the weights."""
    m, layer = one_layer()
    m.set_precision(Precision.from_flags(update="s16.10:stochastic"))
    layer.dW[:] = 1e-6
    w0 = layer.W.copy()
    opt = Adam(m, lr=1e-2)
    for t in range(5):
        m.set_step(t)
        opt.step()
    assert np.all(layer.W < w0)
    assert opt.state[0]["v"].max() > 0


def test_weight_clip():
    m, layer = one_layer()
    m.set_precision(Precision(weight_clip=0.25))
    layer.dW[:] = -1000.0
    SGD(m, lr=1.0).step()
    assert layer.W.max() == 0.25


def test_optimizer_state_round_trip():
    m, layer = one_layer()
    a = Adam(m, lr=0.01)
    a.step()
    b = Adam(m, lr=0.5)
    b.load_state_dict(a.state_dict())
    assert b.t == 1 and b.lr == 0.01
    np.testing.assert_array_equal(b.state[0]["m"], a.state[0]["m"])


def test_schedules():
    assert StepLR(2, 0.5).lr(1.0, 3, 10) == 0.5
    c = CosineLR()
    assert c.lr(1.0, 0, 10) == 1.0 and c.lr(1.0, 5, 10) == pytest.approx(0.5)
    assert parse_schedule("step:3:0.1").gamma == 0.1
    assert parse_schedule("cosine:0.001").min_lr == 0.001
    assert parse_schedule(None) is None
    with pytest.raises(ValueError, match="'linear'"):
        parse_schedule("linear")


def test_bad_optimizer_arguments():
    m, _ = one_layer()
    with pytest.raises(ValueError, match="'rmsprop'"):
        make_optimizer("rmsprop", m, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        SGD(m, lr=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        SGD(m, lr=0.1, momentum=1.5)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**16), wd=st.sampled_from([0.0, 1e-3]),
       dtype=st.sampled_from([np.float32, np.float64]),
       scale=st.sampled_from([1e-8, 1e-3, 1.0, 1e3]))
def test_fused_adam_kernel_equals_the_array_expression(seed, wd, dtype, scale):
    """numpy parameters take the Numba kernel, Fortran-ordered ones the xp expression: same bits."""
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((5, 7)).astype(dtype)
    grads = [(rng.standard_normal((5, 7)) * scale).astype(dtype) for _ in range(3)]
    out = []
    for order in ("C", "F"):
        m, layer = one_layer()
        layer.W, layer.dW = np.array(w0, order=order), np.zeros_like(w0)
        opt = Adam(m, lr=0.01, weight_decay=wd)
        opt.slots = opt.slots[:1]
        for g in grads:
            layer.dW = np.array(g, order=order)
            opt.step()
        out.append((layer.W, opt.state[0]["m"], opt.state[0]["v"]))
    for a, b in zip(*out):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)



def counting_grads(layer, calls):
    """Make ``layer.grads()`` append the layer index to ``calls``."""
    grads = layer.grads

    def counted():
        calls.append(layer.index)
        return grads()
    layer.grads = counted


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_step_fetches_each_layers_gradients_once(cls):
    """One ``layer.grads()`` per layer with parameters per step; the same weights as the former
    step, which looked the gradients up again for every parameter."""
    m, ref = (build_model("mlp:4-5-3", (4,), 3, seed=1).astype(np.float64) for _ in range(2))
    for model in (m, ref):
        for layer in model.layers:
            for g in layer.grads().values():
                g[:] = np.random.default_rng(layer.index).standard_normal(g.shape)
    calls = []
    for layer in m.layers:
        counting_grads(layer, calls)
    opt, ref_opt = cls(m, lr=0.1), cls(ref, lr=0.1)
    for step in range(2):
        opt.step()
        ref_opt.t += 1
        ref_opt._begin_step()
        for (layer, name), state in zip(ref_opt.slots, ref_opt.state):
            w = getattr(layer, name)
            ref_opt._update(w, layer.grads()[name], state)
            layer.commit(name, w)
        assert calls == [0, 2] * (step + 1)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v, err_msg=k)
