"""XNOR-popcount arithmetic equals the float emulation of binary layers bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwsim._bitpack import pack_signs, xnor_popcount_matmul


def _signs(a: np.ndarray) -> np.ndarray:
    return np.where(a >= 0, 1.0, -1.0).astype(np.float32)


@settings(max_examples=40)
@given(m=st.integers(1, 5), n=st.integers(1, 5), k=st.integers(1, 200), data=st.data())
def test_xnor_popcount_equals_float_matmul(m: int, n: int, k: int, data) -> None:
    elems = st.floats(-2, 2, width=32).map(np.float32)
    a = data.draw(arrays(np.float32, (m, k), elements=elems))
    b = data.draw(arrays(np.float32, (k, n), elements=elems))
    ref = _signs(a) @ _signs(b)
    for backend in ("numpy", "numba"):
        got = xnor_popcount_matmul(pack_signs(a), pack_signs(b.T), k, backend=backend)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, ref)


def test_word_boundaries_and_zero_sign() -> None:
    for k in (63, 64, 65, 128, 129):
        a = np.zeros((2, k), np.float32)          # sign(0) = +1
        a[1, ::3] = -0.0                          # -0.0 >= 0 too: +1
        b = np.full((3, k), -1.0, np.float32)
        b[1] = 1.0
        for backend in ("numpy", "numba"):
            got = xnor_popcount_matmul(pack_signs(a), pack_signs(b), k, backend=backend)
            np.testing.assert_array_equal(got, _signs(a) @ _signs(b).T)
        assert got[0, 0] == -k and got[0, 1] == k


def test_pack_layout_little_endian_bits() -> None:
    x = -np.ones(70, np.float32)
    x[[0, 3, 64]] = 1
    words = pack_signs(x)
    assert words.shape == (2,) and words.dtype == np.uint64
    assert int(words[0]) == 0b1001 and int(words[1]) == 1


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="NaN"):
        pack_signs(np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="k=10"):
        xnor_popcount_matmul(pack_signs(np.ones((1, 100))), pack_signs(np.ones((1, 100))), 10)
    with pytest.raises(TypeError):
        xnor_popcount_matmul(np.ones((1, 2)), np.ones((1, 2)), 100)
    with pytest.raises(ValueError, match="backend"):
        xnor_popcount_matmul(pack_signs(np.ones((1, 8))), pack_signs(np.ones((1, 8))), 8, backend="cuda")


# ---------------------------------------------------------------- whole trained BNN
def _trained_bnn(seed: int):
    import hwsim
    from hwsim.schemes import get_scheme

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(192, 70)).astype(np.float32)
    y = (X[:, :3] @ rng.normal(size=(3, 4))).argmax(axis=1)

    class Data:
        X_train, y_train, X_test, y_test = X[:160], y[:160], X[160:], y[160:]
        input_shape, num_classes, name = (70,), 4, "synthetic"

    scheme = get_scheme("bnn")
    model = scheme.build_model("mlp:70-130-65-4", (70,), 4, seed=seed)
    hwsim.train(model, Data, scheme.precision(seed), epochs=2, batch=32, lr=1e-2, progress=False)
    return model, X


@pytest.mark.parametrize("seed", [0, 1])
def test_packed_bnn_equals_float_emulation(seed: int) -> None:
    from hwsim.schemes import PackedBNN

    model, X = _trained_bnn(seed)
    bn = model.layers[4]
    bn.gamma[:5] *= -1                    # negative and zero scales: decreasing / constant thresholds
    bn.gamma[5] = 0.0
    packed = PackedBNN(model)
    np.testing.assert_array_equal(packed.forward(X), model.forward(X))
    # the hidden layers' integer sums equal the float emulation's weighted sums
    h = X
    for layer in model.layers[:3]:
        h = layer.forward(h)
    dense = model.layers[3]
    s_float = dense.forward(h)
    s_int = xnor_popcount_matmul(pack_signs(h), pack_signs(np.where(dense.W >= 0, 1, -1).T), h.shape[1]) \
        + np.where(dense.b >= 0, 1, -1)
    np.testing.assert_array_equal(s_int, s_float)


def test_packed_bnn_rejects_other_models() -> None:
    import hwsim
    from hwsim.schemes import PackedBNN, get_scheme

    with pytest.raises(ValueError, match="sign activations"):
        PackedBNN(hwsim.build_model("mlp:8-4-2", (8,), 2))
    model = get_scheme("bnn").build_model("mlp:8-4-2", (8,), 2)
    model.layers[0].precision_override = hwsim.Precision(
        weight=get_scheme("binaryconnect", stochastic=True).precision().weight)
    model.set_precision(model.precision)
    with pytest.raises(ValueError, match="deterministic binary"):
        PackedBNN(model)
