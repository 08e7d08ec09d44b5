"""Dropout masks: the quantizers' seed rule (precision seed, layer index, step), cached per layer,
replayed exactly by a resumed run."""
from __future__ import annotations

import numpy as np

from fixedpoint.rng import uniforms
from hwsim import Precision, Sequential, train
from hwsim._precision import role_base, step_seed
from hwsim.layers import Activation, Dense, Dropout

from ._synthetic import synthetic_dataset


def kept(layer, shape=(6, 50)):
    """The 0/1 mask a training forward pass of ``layer`` draws at its current step."""
    return layer.forward(np.ones(shape), training=True) != 0


def test_mask_follows_the_seed_rule():
    layer = Dropout(0.4)
    layer.precision, layer.index, layer.step = Precision(seed=5), 3, 11
    seed = step_seed(role_base(5, 3, "dropout"), 11)
    np.testing.assert_array_equal(kept(layer), (uniforms(seed, 0, 300) >= 0.4).reshape(6, 50))


def test_mask_is_a_function_of_seed_layer_and_step():
    layer = Dropout(0.5)
    layer.precision = Precision(seed=1)
    ref = kept(layer)
    np.testing.assert_array_equal(kept(layer), ref)  # same step: same mask
    for change in ({"step": 1}, {"index": 1}, {"precision": Precision(seed=2)}):
        other = Dropout(0.5)
        other.precision = Precision(seed=1)
        for k, v in change.items():
            setattr(other, k, v)
        assert not np.array_equal(kept(other), ref), change
    layer.precision = Precision(seed=2)  # the cached base follows the seed in force
    np.testing.assert_array_equal(kept(layer), kept(other))


def dropout_net(seed=0):
    return Sequential([Dense(8, 16, seed=seed), Activation("relu"), Dropout(0.3),
                       Dense(16, 3, seed=seed + 1)],
                      (8,))


def test_resumed_run_draws_the_same_masks(tmp_path):
    data = synthetic_dataset(8, 200, 160)
    p = Precision.from_flags(weight="s8.7", activation="s8.4", update="s16.14:stochastic", seed=4)
    kw = dict(batch=32, lr=0.01, seed=2, progress=False)
    full = dropout_net()
    ref = train(full, data, p, epochs=3, **kw)
    train(dropout_net(), data, p, epochs=1, out=tmp_path, **kw)
    resumed = dropout_net(seed=9)
    r = train(resumed, data, p, epochs=3, out=tmp_path, resume=True, **kw)
    assert r["train_loss"] == ref["train_loss"]
    for k, v in full.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v, err_msg=k)
    no_dropout = Sequential([layer for layer in dropout_net().layers if not isinstance(layer, Dropout)], (8,))
    assert train(no_dropout, data, p, epochs=3, **kw)["train_loss"] != ref["train_loss"]
