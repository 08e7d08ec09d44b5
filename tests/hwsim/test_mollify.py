"""Mollified blocks: the limits p = 1 (identity) and p = 0 (base block), Algorithm 2 by hand,
finite-difference gradients, the loss-driven schedule, training hook, seq token and cost."""
from __future__ import annotations

import math

import numpy as np
import pytest

import hwsim
from hwsim import Precision, train
from hwsim._precision import role_base, step_seed
from hwsim.layers import Activation, Dense, MollifiedDense
from hwsim.layers._mollify import MOLLIFIED_ACTS, mollifier_update
from hwsim.layers._noisy import counter_normals

from ._numgrad import numerical_gradient
from ._synthetic import synthetic_dataset


def block(n_in=6, n_out=6, p=0.5, dtype=np.float64, **kw):
    layer = MollifiedDense(n_in, n_out, p=p, seed=3, dtype=dtype, **kw)
    layer.b = np.random.default_rng(0).uniform(-1, 1, n_out).astype(dtype)
    return layer


@pytest.mark.parametrize("act", sorted(MOLLIFIED_ACTS))
def test_p0_is_the_base_block_exactly(act):
    layer = block(p=0.0, act=act, dtype=np.float32)
    dense = Dense(6, 6, seed=3)
    dense.b = layer.b
    x = np.random.default_rng(1).uniform(-3, 3, (5, 6)).astype(np.float32)
    shift = np.float32(MOLLIFIED_ACTS[act][0])
    want = Activation(act).forward(dense.forward(x)) - shift
    for training in (False, True):
        np.testing.assert_array_equal(layer.forward(x, training=training), want)


@pytest.mark.parametrize("n_out", [4, 6, 9])
def test_p1_is_the_identity_exactly(n_out):
    layer = block(6, n_out, p=1.0, dtype=np.float32)
    x = np.random.default_rng(2).uniform(-3, 3, (5, 6)).astype(np.float32)
    skip = np.zeros((5, n_out), np.float32)
    skip[:, :min(6, n_out)] = x[:, :min(6, n_out)]
    for training in (False, True):
        np.testing.assert_array_equal(layer.forward(x, training=training), skip)
    res = block(6, n_out, p=0.0, dtype=np.float32, residual=True)
    base = block(6, n_out, p=0.0, dtype=np.float32)
    np.testing.assert_array_equal(res.forward(x), base.forward(x) + skip)


def test_algorithm2_by_hand_in_training():
    layer = block(3, 3, p=0.6, c=20.0)
    layer.precision, layer.index, layer.step = Precision(seed=4), 1, 7
    x = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -0.2]])
    z = x @ layer.W + layer.b
    f = 1 / (1 + np.exp(-z)) - 0.5
    u = 0.25 * z
    sigma = (1 / (1 + np.exp(-layer.a * (u - f))) - 0.5) ** 2
    xi = np.abs(counter_normals(step_seed(role_base(4, 1, "noise", 0), 7), 6)).reshape(2, 3)
    from hwsim._precision import stream_uniforms
    pi = (stream_uniforms(step_seed(role_base(4, 1, "noise", 1), 7), 6).reshape(2, 3) < 0.6)
    s = 0.6 * 20.0 * sigma * xi
    psi = np.sign(u + (u == 0)) * np.minimum(np.abs(u), np.abs(f + np.sign(u + (u == 0)) * np.abs(s)))
    want = np.where(pi, x, psi)
    np.testing.assert_allclose(layer.forward(x, training=True), want, rtol=1e-12, atol=1e-15)
    assert 0 < pi.sum() < 6


def test_large_noise_tends_to_the_linearisation():
    layer = block(6, 6, p=1.0, c=1e9)
    layer.p_level[0] = 1.0 - 1e-12  # psi with huge s, mixing weight ~ 0 at test time
    layer.p_level[0] = 0.999999
    x = np.random.default_rng(3).uniform(-2, 2, (4, 6))
    z = x @ layer.W + layer.b
    y = layer.forward(x)
    np.testing.assert_allclose(y, 0.999999 * x + 1e-6 * 0.25 * z, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "hard_tanh"])
@pytest.mark.parametrize("residual", [False, True])
def test_gradients_match_finite_differences(act, residual):
    rng = np.random.default_rng(5)
    layer = block(5, 5, p=0.5, c=8.0, act=act, residual=residual)
    layer.step = 3
    x = rng.uniform(-2, 2, (4, 5))
    wgt = rng.standard_normal((4, 5))
    layer.forward(x, training=True)
    dx = layer.backward(wgt)
    dW = layer.dW.copy()

    def loss():
        return float((wgt * layer.forward(x, training=True)).sum())

    for arr, grad, scale in ((x, dx, 1.0), (layer.W, dW, x.shape[0])):
        np.testing.assert_allclose(grad * scale, numerical_gradient(loss, arr), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- the schedule
def test_schedule_formula_and_stop():
    layers = [block(p=1.0, k=100.0, delta=0.3, beta=0.5) for _ in range(3)]
    mollifier_update(layers, 0.8, 1)
    assert all(la.loss_avg[0] == 0.8 for la in layers)
    mollifier_update(layers, 0.4, 2)
    v = 0.5 * 0.8 + 0.5 * 0.4
    want = [1 - math.exp(-100 * v * ll / (2 * 3)) for ll in (1, 2, 3)]
    assert [la.p for la in layers] == pytest.approx(want)
    assert layers[0].p < layers[1].p < layers[2].p  # lower layers anneal faster
    mollifier_update(layers, 0.01, 10**6)  # Σp <= δ: annealing stops, every p = 0
    assert [la.p for la in layers] == [0.0, 0.0, 0.0]
    mollifier_update(layers, 5.0, 10**6 + 1)  # stays stopped
    assert [la.p for la in layers] == [0.0, 0.0, 0.0]
    assert (layers[0].p_level == 0).all()


def test_schedule_limits_in_the_loss():
    layers = [block(p=1.0, k=10.0) for _ in range(2)]
    mollifier_update(layers, 1e9, 5)
    assert [la.p for la in layers] == [1.0, 1.0]
    layers = [block(p=1.0, k=10.0, beta=0.0) for _ in range(2)]
    mollifier_update(layers, 1e-12, 5)
    assert [la.p for la in layers] == [0.0, 0.0]  # Σp below the default δ = 0.05 L


def test_schedule_needs_equal_constants():
    with pytest.raises(ValueError, match="same k, delta, beta"):
        mollifier_update([block(k=1.0), block(k=2.0)], 1.0, 1)


def test_training_anneals_records_and_resumes(tmp_path):
    data = synthetic_dataset(6, 160, 128)
    spec = "seq:6,dense(8),mollified(8,k=20),mollified(8,k=20),dense(3)"
    kw = {"batch": 32, "lr": 0.01, "seed": 2, "progress": False}
    full = hwsim.build_model(spec, (6,), 3, seed=4)
    ref = train(full, data, Precision(seed=1), epochs=3, **kw)
    ann = ref["annealing"]
    assert len(ann) == 3 and set(ann[0]) == {"mollified1", "mollified2"}
    assert 0 < ann[0]["mollified1"]["p"] < ann[0]["mollified2"]["p"] < 1
    assert ann[2]["mollified2"]["p"] < ann[0]["mollified2"]["p"]
    train(hwsim.build_model(spec, (6,), 3, seed=4), data, Precision(seed=1), epochs=1, out=tmp_path, **kw)
    resumed = hwsim.build_model(spec, (6,), 3, seed=4)
    r = train(resumed, data, Precision(seed=1), epochs=3, out=tmp_path, resume=True, **kw)
    assert r["train_loss"] == ref["train_loss"] and r["annealing"] == ann
    for k, v in full.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v, err_msg=k)


def test_seq_token_errors_and_cost():
    m = hwsim.build_model("seq:6,mollified(6,act=tanh,c=5,p=0,anneal=false,residual=true),dense(2)", (6,), 2)
    layer = m.layers[0]
    assert (layer.act, layer.c, layer.p, layer.anneal, layer.residual) == ("tanh", 5.0, 0.0, False, True)
    for tok, msg in {"mollified(6,act=softsign)": "act must be one of", "mollified(6,p=2)": "p must be in",
                     "mollified(6,q=1)": "unexpected argument"}.items():
        with pytest.raises(ValueError, match=msg):
            hwsim.build_model(f"seq:6,{tok},dense(2)", (6,), 2)
    with pytest.raises(ValueError, match="flatten"):
        hwsim.build_model("seq:1x4x4,mollified(6),dense(2)", (1, 4, 4), 2)
    p = Precision.from_flags("fixed8")
    names = {op.name: op for op in hwsim.workload(m, p, batch=3, training=True).ops}
    assert {"mollified0/fwd", "mollified0/noise", "mollified0/mollify", "mollified0/bwd", "mollified0/grad",
            "mollified0/update"} <= set(names)
    assert names["mollified0/noise"].bits == p.activation.bits and names["mollified0/fwd"].k == 6
