"""Conditional computation: the activation estimator (EstimatedDense, γ), GRU / ConditionalGRU, text data."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import hwsim
from hwsim._corpus_gen import generate_corpus
from hwsim.layers._estimated import masked_rows_product
from tests.hwsim.test_layers import numeric_grad


# ---------------------------------------------------------------------------------------------- estimator
@given(st.integers(1, 20), st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1),
       st.sampled_from([0.0, 0.5, 1.0]))
def test_masked_rows_equal_masked_dense_exactly(n, d, h, seed, density):
    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 9, (n, d)).astype(np.float32)  # small integers: every partial sum is exact
    w = rng.integers(-8, 9, (d, h)).astype(np.float32)
    b = rng.integers(-8, 9, h).astype(np.float32)
    mask = rng.random((n, h)) < density if 0 < density < 1 else np.full((n, h), density > 0)
    got = masked_rows_product(x, w, b, mask)
    want = (x @ w + b) * mask
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_masked_rows_empty_batch():
    out = masked_rows_product(np.zeros((0, 3), np.float32), np.ones((3, 2), np.float32),
                              np.zeros(2, np.float32),
                              np.zeros((0, 2), bool))
    assert out.shape == (0, 2)


@given(st.integers(2, 16), st.integers(2, 16), st.integers(0, 2**31 - 1), st.floats(-1.0, 1.0))
def test_estimator_mask_is_sign_of_low_rank_product(d, h, seed, threshold):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, min(d, h) + 1))
    layer = hwsim.EstimatedDense(d, h, k, threshold=threshold, seed=seed % 1000, dtype=np.float64)
    layer.b = rng.standard_normal(h)
    x = rng.standard_normal((5, d))
    u, s, vt = np.linalg.svd(layer.W)
    w_k = (u[:, :k] * s[:k]) @ vt[:k]  # the best rank-k approximation (Eckart–Young)
    mask = layer.estimate_mask(x)
    np.testing.assert_allclose(layer.est_p @ layer.est_q, w_k, atol=1e-10)
    e = x @ w_k + layer.b - threshold
    clear = np.abs(e) > 1e-9
    np.testing.assert_array_equal(mask[clear], (e > 0)[clear])


def test_estimated_dense_forward_backward_match_masked_dense():
    rng = np.random.default_rng(1)
    layer = hwsim.EstimatedDense(30, 20, 4, seed=3, dtype=np.float64)
    layer.b = rng.standard_normal(20) * 0.1
    x = rng.standard_normal((7, 30))
    y = layer.forward(x, training=True)
    mask = layer.estimate_mask(x)
    np.testing.assert_allclose(y, (x @ layer.W + layer.b) * mask, rtol=1e-12, atol=1e-12)
    assert layer.last_alpha == pytest.approx(mask.mean())
    assert 0 < mask.mean() < 1
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, (dy * mask) @ layer.W.T, rtol=1e-12)
    np.testing.assert_allclose(layer.dW, x.T @ (dy * mask) / 7, rtol=1e-12)


def test_estimator_refresh_once_per_epoch_or_every_n_steps():
    layer = hwsim.EstimatedDense(10, 8, 2, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((4, 10))
    layer.forward(x, training=True)
    p0 = layer.est_p.copy()
    layer.W = layer.W + 1.0  # weights change; the factors stay until the next refresh
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.est_p, p0)
    layer.on_epoch_start(1)
    assert not np.allclose(layer.est_p, p0)
    stepped = hwsim.EstimatedDense(10, 8, 2, every=3, seed=0, dtype=np.float64)
    stepped.forward(x, training=True)  # step 0: refresh
    w1 = stepped.est_p @ stepped.est_q
    stepped.W = stepped.W * 2.0
    stepped.step = 2
    stepped.forward(x, training=True)
    np.testing.assert_array_equal(stepped.est_p @ stepped.est_q, w1)
    stepped.step = 3
    stepped.forward(x, training=True)
    np.testing.assert_allclose(stepped.est_p @ stepped.est_q, 2 * w1, rtol=1e-10)


def test_estimator_factors_travel_in_checkpoints():
    spec = "seq:10,estdense(8,rank=2),relu,dense(3)"
    a, b = hwsim.build_model(spec, (10,), 3, seed=1), hwsim.build_model(spec, (10,), 3, seed=2)
    b.load_state_dict(a.state_dict())  # a never ran: zero factors are not taken as an estimator
    x = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    a.layers[0].W = a.layers[0].W * -1.0  # the factors stay those of the old weights until a refresh
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_estimated_dense_workload_uses_measured_alpha():
    model = hwsim.build_model("seq:16,estdense(12,rank=3),relu,dense(4)", (16,), 4)
    with pytest.warns(UserWarning, match="no measured active fraction"):
        hwsim.workload(model, batch=5)
    model.forward(np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32))
    alpha = model.layers[0].alpha
    ops = {op.name: op for op in hwsim.workload(model, batch=5).ops}
    assert ops["estdense0/fwd_active"].n == math.ceil(alpha * 12)
    assert ops["estdense0/estimate_in"].n == 3 and ops["estdense0/estimate_out"].k == 3


def test_estdense_token_errors():
    with pytest.raises(ValueError, match="rank must be in"):
        hwsim.build_model("seq:16,estdense(12,rank=13),dense(4)", (16,), 4)
    with pytest.raises(ValueError, match="missing rank="):
        hwsim.build_model("seq:16,estdense(12),dense(4)", (16,), 4)


# ---------------------------------------------------------------------------------------------- gain
def test_estimator_gain_hand_values():
    assert round(hwsim.estimator_gain(784, 1000, 50, 0.5), 2) == 1.63
    assert hwsim.estimator_gain(2, 3, 1, 0.0) == pytest.approx(12 / 9)  # 2dh / k(2d+2h-1)
    assert hwsim.estimator_gain(2, 3, 1, 1.0) == pytest.approx(12 / 21)


@given(st.integers(1, 3000), st.integers(1, 3000), st.integers(1, 500), st.floats(0, 1))
def test_estimator_gain_is_flop_ratio(d, h, k, alpha):
    f_nn, f_ae = hwsim.estimator_flops(d, h, k, alpha, n=7)
    assert hwsim.estimator_gain(d, h, k, alpha) == pytest.approx(f_nn / f_ae, rel=1e-12)
    assert hwsim.estimator_gain_nn([(d, h, k, alpha)]) == pytest.approx(f_nn / f_ae, rel=1e-12)


def test_estimator_gain_nn_output_layer_and_errors():
    layers = [(784, 1000, 50, 0.5), (1000, 10, None, 1.0)]
    f = [hwsim.estimator_flops(*layer) for layer in layers]
    assert hwsim.estimator_gain_nn(layers) == pytest.approx((f[0][0] + f[1][0]) / (f[0][1] + f[1][0]))
    with pytest.raises(ValueError, match="alpha must be in"):
        hwsim.estimator_gain(10, 10, 2, 1.5)
    with pytest.raises(ValueError, match="k must be"):
        hwsim.estimator_gain(10, 10, 0, 0.5)


# ---------------------------------------------------------------------------------------------- GRU
def _fd_check(layer, x, *, rtol=1e-5):
    """dx and parameter gradients of S = sum(h * R) over all steps against central differences
    (the layer's parameter gradients are those of S / (N·T))."""
    rng = np.random.default_rng(7)
    r = rng.standard_normal((x.shape[0], x.shape[1], layer.hidden))

    def loss():
        return float((layer.forward(x, training=True) * r).sum())

    layer.forward(x, training=True)
    dx = layer.backward(r)
    grads = {k: v.copy() * (x.shape[0] * x.shape[1]) for k, v in layer.grads().items()}
    for name, p in layer.params().items():
        for _ in range(12):
            idx = tuple(int(rng.integers(n)) for n in p.shape)
            assert grads[name][idx] == pytest.approx(numeric_grad(loss, p, idx), rel=rtol, abs=1e-7), \
                (name, idx)
    for idx in [(0, 0, 0), (1, x.shape[1] - 1, 2), (2, 1, 1)]:
        assert dx[idx] == pytest.approx(numeric_grad(loss, x, idx), rel=rtol, abs=1e-7), ("dx", idx)


def test_gru_gradients_through_time():
    rng = np.random.default_rng(0)
    layer = hwsim.GRU(5, 6, seed=1, dtype=np.float64)
    layer.b = rng.standard_normal(layer.b.shape) * 0.3
    _fd_check(layer, rng.standard_normal((3, 4, 5)))


@pytest.mark.parametrize("gate,skip", [("full", False), ("rank", False), ("block", False), ("block", True)])
def test_conditional_gru_gradients_through_time(gate, skip):
    rng = np.random.default_rng(2)
    layer = hwsim.ConditionalGRU(5, 8, gate=gate, rank=3, blocks=4, s=-0.2, skip=skip, seed=4,
                                 dtype=np.float64)
    layer.b = rng.standard_normal(layer.b.shape) * 0.3
    _fd_check(layer, rng.standard_normal((6, 4, 5)))
    assert 0 < layer.last_sparsity < 1


def test_block_sparse_update_equals_dense_update_with_mask():
    rng = np.random.default_rng(3)
    kw = {"gate": "block", "blocks": 4, "s": -0.5, "seed": 9, "dtype": np.float64}
    sparse, dense = (hwsim.ConditionalGRU(7, 16, skip=True, **kw),
                     hwsim.ConditionalGRU(7, 16, skip=False, **kw))
    x = rng.standard_normal((10, 6, 7))
    ys, yd = sparse.forward(x, training=True), dense.forward(x, training=True)
    np.testing.assert_allclose(ys, yd, rtol=1e-12, atol=1e-13)
    assert 0.2 < sparse.last_sparsity < 1
    # where the gate is zero the state is copied exactly
    h_prev = np.concatenate([np.zeros((10, 1, 16)), ys[:, :-1]], axis=1)
    z_zero = np.array([step[1] == 0 for step in sparse._cache[-1]]).transpose(1, 0, 2)
    np.testing.assert_array_equal(ys[z_zero], h_prev[z_zero])
    dy = rng.standard_normal(ys.shape)
    np.testing.assert_allclose(sparse.backward(dy), dense.backward(dy), rtol=1e-10, atol=1e-12)
    for name in sparse.params():
        np.testing.assert_allclose(sparse.grads()[name], dense.grads()[name], rtol=1e-10, atol=1e-12)


def test_sparsity_grows_as_s_falls():
    x = np.random.default_rng(4).standard_normal((32, 5, 6))
    sp = []
    for s in (0.0, -0.5, -1.0):
        layer = hwsim.ConditionalGRU(6, 16, gate="block", blocks=8, s=s, seed=1, dtype=np.float64)
        layer.forward(x, training=True)
        sp.append(layer.last_sparsity)
    assert sp[0] < sp[1] < sp[2]
    assert 0.35 < sp[0] < 0.65


def test_state_carry_equals_one_long_sequence():
    x = np.random.default_rng(5).standard_normal((3, 8, 4))
    layer = hwsim.GRU(4, 5, seed=0, dtype=np.float64)
    whole = layer.forward(x)
    layer.carry = True
    parts = np.concatenate([layer.forward(x[:, :3]), layer.forward(x[:, 3:])], axis=1)
    np.testing.assert_allclose(parts, whole, rtol=1e-13)
    layer.reset_state()
    np.testing.assert_allclose(layer.forward(x[:, :3]), whole[:, :3], rtol=1e-13)


def test_dense_on_sequences_equals_per_step():
    rng = np.random.default_rng(6)
    layer = hwsim.Dense(4, 3, seed=0, dtype=np.float64)
    x = rng.standard_normal((2, 5, 4))
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y[1, 2], x[1, 2] @ layer.W + layer.b)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, dy @ layer.W.T)
    np.testing.assert_allclose(layer.dW, x.reshape(10, 4).T @ dy.reshape(10, 3) / 10)


def test_recurrent_layers_follow_the_precision_policy():
    model = hwsim.build_model("seq:27,cgru(16,blocks=4),dense(27)", (27,), 27)
    p = hwsim.Precision.from_flags("fixed8")
    model.set_precision(p)
    x = np.eye(27, dtype=np.float32)[np.random.default_rng(0).integers(0, 27, (4, 6))]
    h = model.layers[0].forward(x, training=True)
    q = p.activation
    np.testing.assert_array_equal(q(h, seed=0, offset=0), h)  # every state on the activation grid
    assert not np.array_equal(q(np.float32(0.3) + h, seed=0, offset=0), np.float32(0.3) + h)


def test_cgru_token_errors_and_costs():
    with pytest.raises(ValueError, match="must divide hidden"):
        hwsim.build_model("seq:27,cgru(30,blocks=4),dense(27)", (27,), 27)
    with pytest.raises(ValueError, match="gate must be one of"):
        hwsim.build_model("seq:27,cgru(32,gate=lowrank),dense(27)", (27,), 27)
    model = hwsim.build_model("seq:27,cgru(32,blocks=4,s=-0.5),dense(27)", (27,), 27)
    model.forward(np.eye(27, dtype=np.float32)[np.random.default_rng(0).integers(0, 27, (8, 5))],
                  training=True)
    names = [op.name for op in hwsim.workload(model, batch=8, training=True).ops]
    assert sum(n.startswith("cgru0/block") for n in names) == 4
    assert sum(n.startswith("cgru0/grad_block") for n in names) == 4


# ---------------------------------------------------------------------------------------------- text data
def test_embedded_corpus_is_the_generator_output():
    d = hwsim.load_text()
    assert d.vocab == 27 and d.alphabet == " abcdefghijklmnopqrstuvwxyz"
    text = generate_corpus()
    assert len(d.train) + len(d.valid) == len(text) < 200_000
    decoded = "".join(d.alphabet[i] for i in np.concatenate([d.train, d.valid]))
    assert decoded == text


def test_text_file_loader_and_errors(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("héllo wörld " * 20, encoding="utf-8")
    d = hwsim.load_text(f"text:{p}")
    assert d.alphabet == "".join(sorted(set("héllo wörld ")))
    with pytest.raises(FileNotFoundError, match="text data file not found: .*missing.txt"):
        hwsim.load_text(f"text:{tmp_path / 'missing.txt'}")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc \xff\xfe def" * 10)
    with pytest.raises(ValueError, match=r"not UTF-8 text \(byte 0xff at offset 4"):
        hwsim.load_text(f"text:{bad}")
    short = tmp_path / "short.txt"
    short.write_text("abab")
    with pytest.raises(ValueError, match="too short"):
        hwsim.load_text(f"text:{short}")
    with pytest.raises(ValueError, match="expected 'text' or 'text:PATH'"):
        hwsim.load_text("txt:foo")


def test_train_text_learns_and_reports_bpc():
    d = hwsim.load_text()
    model = hwsim.build_model("seq:27,cgru(32,blocks=4,s=-0.25),dense(27)", (27,), 27, seed=0)
    m = hwsim.train_text(model, d, hwsim.Precision(), epochs=1, batch=32, bptt=20, lr=1e-2, max_updates=40,
                         progress=False)
    freq = np.bincount(d.train, minlength=27) / len(d.train)
    unigram_bits = -(freq[freq > 0] * np.log2(freq[freq > 0])).sum()  # ≈ 4.0: a model must beat it
    assert m["valid_bpc_final"] < unigram_bits - 0.2
    assert 0 < m["gate_sparsity"][0]["cgru0"] < 1
    with pytest.raises(ValueError, match=r"needs \(27,\) -> \(27,\)"):
        hwsim.train_text(hwsim.build_model("seq:26,gru(8),dense(26)", (26,), 26), d, hwsim.Precision(),
                         epochs=1)


def test_cli_trains_a_text_model(tmp_path, capsys):
    from hwsim.cli import main

    rc = main(["train", "--data", "text", "--model", "seq:27,cgru(16,blocks=4,s=-0.25),dense(27)",
               "--epochs", "1",
               "--batch", "512", "--bptt", "10", "--out", str(tmp_path / "run"), "--quiet"])
    assert rc == 0
    assert "valid bpc" in capsys.readouterr().out
    assert (tmp_path / "run" / "metrics.json").is_file() and (tmp_path / "run" / "checkpoint.npz").is_file()
    again = ["train", "--data", "text", "--model", "seq:27,gru(4),dense(27)", "--epochs", "1",
             "--batch", "512",
             "--bptt", "10", "--out", str(tmp_path / "run"), "--quiet"]
    assert main(again) == 2 and "--overwrite" in capsys.readouterr().err  # an existing run is not reused
    assert main([*again, "--overwrite"]) == 0
    assert "gru(4)" in (tmp_path / "run" / "run.json").read_text()
    rc = main(["train", "--data", f"text:{tmp_path / 'nope.txt'}", "--out", str(tmp_path / "r2")])
    assert rc == 2 and "text data file not found" in capsys.readouterr().err
    rc = main(["train", "--data", "text", "--split", "100", "--out", str(tmp_path / "r3")])
    assert rc == 2 and "--split" in capsys.readouterr().err


def test_train_refreshes_the_estimator_every_epoch():
    from tests.hwsim._synthetic import synthetic_dataset

    data = synthetic_dataset(12, 200, 150)
    model = hwsim.build_model("seq:12,estdense(16,rank=2),relu,dense(3)", (12,), 3)
    seen = []
    layer = model.layers[0]
    refresh = layer.on_epoch_start
    layer.on_epoch_start = lambda epoch: (seen.append(epoch), refresh(epoch))
    hwsim.train(model, data, hwsim.Precision(), epochs=3, batch=32, progress=False)
    assert seen == [0, 1, 2]
    assert 0 < layer.alpha < 1
