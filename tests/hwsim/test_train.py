"""The training loop: learning, metrics, checkpoint/resume equality, Ctrl-C, divergence."""
from __future__ import annotations

import json
import os
import signal
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from hwsim import Precision, RoleFormat, build_model, evaluate, train
from hwsim.layers import DivergenceError


def blobs(n_train=240, n_test=90, dim=10, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, dim)) * 1.5
    y = rng.integers(0, classes, n_train + n_test)
    X = (centers[y] + rng.standard_normal((len(y), dim))).astype(np.float32) * 0.5
    return SimpleNamespace(X_train=X[:n_train], y_train=y[:n_train], X_test=X[n_train:], y_test=y[n_train:],
                           input_shape=(dim,), num_classes=classes, name="blobs")


DATA = blobs()
Q8 = Precision.from_flags(weight="s8.7", activation="s8.4", update="s16.14:stochastic", seed=3)


def model(seed=0, spec="mlp:10-16-3"):
    return build_model(spec, (10,), 3, seed=seed)


@pytest.mark.parametrize("precision", [Precision(), Q8, Precision.from_flags("fixed16")],
                         ids=["fp32", "8bit", "fixed16"])
def test_training_decreases_the_loss(precision):
    r = train(model(), DATA, precision, epochs=4, batch=16, lr=0.01, progress=False)
    assert r["train_loss"][-1] < 0.6 * r["train_loss"][0]
    assert r["test_accuracy"] > 0.8
    assert len(r["epoch_seconds"]) == 4 and r["precision"] == precision.to_dict()
    if not precision.is_float:
        health = r["quant_health"][-1]["dense0"]
        assert {"weight", "activation", "update"} <= set(health)
        assert 0 <= health["weight"]["saturated"] <= 1


def test_sgd_cosine_and_cnn():
    data = blobs(dim=16)
    data.input_shape = (1, 4, 4)
    data.X_train, data.X_test = data.X_train.reshape(-1, 1, 4, 4), data.X_test.reshape(-1, 1, 4, 4)
    with pytest.raises(ValueError, match="8x8"):
        build_model("cnn:lenet5", (1, 4, 4), 3)
    m = build_model("mlp:16-12-3", (1, 4, 4), 3)
    r = train(m, data, Q8, epochs=3, batch=16, optimizer="sgd", lr=0.05, schedule="cosine", progress=False)
    assert r["lr"][0] == 0.05 and r["lr"][2] < r["lr"][1] < 0.05
    assert r["train_loss"][-1] < r["train_loss"][0]


def weights(m):
    return m.state_dict()


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("precision", [Precision(), Q8], ids=["fp32", "8bit"])
def test_resume_gives_the_same_weights(tmp_path, precision):
    kw = dict(batch=32, lr=0.01, seed=7, progress=False)
    full = model()
    ref = train(full, DATA, precision, epochs=3, **kw)
    part = model()
    train(part, DATA, precision, epochs=1, out=tmp_path, **kw)
    resumed = model(seed=99)  # different initial weights: everything must come from the checkpoint
    r = train(resumed, DATA, precision, epochs=3, out=tmp_path, resume=True, **kw)
    assert_same(weights(full), weights(resumed))
    assert r["train_loss"] == ref["train_loss"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"test_accuracy", "train_loss", "epoch_seconds", "precision"} <= set(metrics)
    assert len(metrics["epoch_seconds"]) == 3


def regression_blobs(n_train=240, n_test=90, dim=10, out=2, seed=0):
    """Float targets (a linear map of X plus noise): `train` picks the mse loss."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_train + n_test, dim)).astype(np.float32)
    noise = 0.05 * rng.standard_normal((len(X), out))
    y = (X @ rng.standard_normal((dim, out)) * 0.3 + noise).astype(np.float32)
    return SimpleNamespace(X_train=X[:n_train], y_train=y[:n_train], X_test=X[n_train:], y_test=y[n_train:],
                           input_shape=(dim,), num_classes=out, name="linear")


def test_mse_run_resumes_like_an_uninterrupted_run(tmp_path):
    data = regression_blobs()
    kw = dict(batch=32, lr=0.01, seed=7, progress=False)
    full = build_model("mlp:10-16-2", (10,), 2, seed=0)
    ref = train(full, data, Q8, epochs=3, **kw)
    assert "test_mse" in ref and "train_accuracy" not in ref
    train(build_model("mlp:10-16-2", (10,), 2, seed=0), data, Q8, epochs=1, out=tmp_path, **kw)
    resumed = build_model("mlp:10-16-2", (10,), 2, seed=99)
    r = train(resumed, data, Q8, epochs=3, out=tmp_path, resume=True, **kw)
    assert_same(weights(full), weights(resumed))
    assert r["train_loss"] == ref["train_loss"] and r["test_mse_per_epoch"] == ref["test_mse_per_epoch"]
    assert len(json.loads((tmp_path / "metrics.json").read_text())["test_mse_per_epoch"]) == 3


class InterruptAt:
    """A scheme hook that sends Ctrl-C (SIGINT) to this process at one step."""

    def __init__(self, step):
        self.step = step

    def after_step(self, model, step):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_writes_a_checkpoint_and_resume_matches(tmp_path):
    kw = dict(batch=32, lr=0.01, seed=1, progress=False)
    full = model()
    train(full, DATA, Q8, epochs=2, **kw)
    with pytest.raises(KeyboardInterrupt, match="checkpoint"):
        train(model(), DATA, Q8, epochs=2, out=tmp_path, scheme=InterruptAt(10), **kw)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert (meta["epoch"], meta["batch"], meta["step"]) == (1, 3, 11)  # 8 batches per epoch
    resumed = model()
    train(resumed, DATA, Q8, epochs=2, out=tmp_path, resume=True, **kw)
    assert_same(weights(full), weights(resumed))


def test_mse_run_interrupted_mid_epoch_resumes_like_an_uninterrupted_run(tmp_path):
    data = regression_blobs()
    kw = dict(batch=32, lr=0.01, seed=1, progress=False)
    full = build_model("mlp:10-16-2", (10,), 2, seed=0)
    ref = train(full, data, Q8, epochs=2, **kw)
    with pytest.raises(KeyboardInterrupt, match="checkpoint"):
        train(build_model("mlp:10-16-2", (10,), 2, seed=0), data, Q8, epochs=2, out=tmp_path,
              scheme=InterruptAt(10), **kw)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert (meta["epoch"], meta["batch"], meta["step"]) == (1, 3, 11)  # 8 batches per epoch
    resumed = build_model("mlp:10-16-2", (10,), 2, seed=99)
    r = train(resumed, data, Q8, epochs=2, out=tmp_path, resume=True, **kw)
    assert_same(weights(full), weights(resumed))
    assert r["test_mse_per_epoch"] == ref["test_mse_per_epoch"]


def test_resume_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint.npz"):
        train(model(), DATA, Q8, epochs=1, batch=32, out=tmp_path, resume=True, progress=False)
    train(model(), DATA, Q8, epochs=1, batch=32, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="batch"):
        train(model(), DATA, Q8, epochs=2, batch=16, out=tmp_path, resume=True, progress=False)


class PoisonGradient:
    def on_gradients(self, model, step):
        if step == 2:
            model.layers[2].grads()["W"][0, 0] = np.nan


@pytest.mark.parametrize("precision,role", [(Precision(), "update"), (Q8, "update")])
def test_divergence_names_layer_and_role(precision, role):
    with pytest.raises(DivergenceError, match=f"'dense2', role '{role}'") as info:
        train(model(), DATA, precision, epochs=1, batch=32, progress=False, scheme=PoisonGradient())
    assert info.value.layer == "dense2" and info.value.role == role


def test_divergence_in_activations_is_located():
    m = model()
    m.layers[0].W[:] = 1e38  # the first product overflows to inf, NaN after
    with pytest.raises(DivergenceError, match="'dense0'"):
        train(m, DATA, Precision(), epochs=1, batch=32, progress=False)


def test_evaluate_and_bad_inputs():
    m = model()
    ev = evaluate(m, DATA.X_test, DATA.y_test, Precision())
    assert 0 <= ev["accuracy"] <= 1 and ev["loss"] > 0
    with pytest.raises(ValueError, match="example shape"):
        evaluate(m, np.zeros((2, 5)), np.zeros(2), Precision())
    with pytest.raises(ValueError, match="epochs"):
        train(m, DATA, Precision(), epochs=0, batch=4, progress=False)
    with pytest.raises(ValueError, match="out=RUN_DIR"):
        train(m, DATA, Precision(), epochs=1, batch=4, resume=True, progress=False)


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    train(model(), DATA, Q8, epochs=2, batch=32, progress=True)
    err = capsys.readouterr().err  # captured stderr is not a TTY: one plain line per epoch, no bar
    assert err.count("\n") == 2 and "epoch 1/2: loss" in err and "epoch 2/2: loss" in err and "\r" not in err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    train(model(), DATA, Q8, epochs=1, batch=32, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1: loss" in err and "test acc" in err
    train(model(), DATA, Q8, epochs=1, batch=32, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("spec,shape", [("mlp:16-8-3", (1, 4, 4)), ("cnn:lenet5", (1, 8, 8))])
def test_data_quantized_once_equals_quantizing_every_batch(spec, shape):
    from hwsim._train import _prequantize_inputs

    m = build_model(spec, shape, 3, seed=2)
    m.set_precision(Q8)
    x = np.random.default_rng(0).uniform(-3, 3, (5, *shape)).astype(np.float32)
    ref = m.forward(x)
    (xq,) = _prequantize_inputs(m, x)
    assert not np.array_equal(xq, x)
    np.testing.assert_array_equal(m.forward(xq), ref)
    m.set_precision(Q8.replace(activation=RoleFormat.parse("s8.4:stochastic")))
    assert _prequantize_inputs(m, x)[0] is x  # stochastic input rounding: every batch draws anew
