"""The Numba window kernels of convolution and pooling give numpy's bits (infinities, signed zeros, NaNs)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.layers import _window_kernels as kernels
from hwsim.layers._conv import windows

SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.5, np.inf, -np.inf, np.nan]


def _reference_rows(x, kh, kw, stride):
    win = windows(x, kh, kw, stride)
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(win.shape[0] * win.shape[2] * win.shape[3], -1)


def _reference_scatter(dx, dwin, stride):
    ho, wo, kh, kw = dwin.shape[2:]
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * (ho - 1) + 1, stride)
            cols = slice(j, j + stride * (wo - 1) + 1, stride)
            dx[:, :, rows, cols] += dwin[..., i, j]


@st.composite
def _case(draw):
    """(x (N, C, H, W), kernel, stride, Ho, Wo): values with repeats, NaN, infinities and signed zeros."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    k, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(k, 9)), draw(st.integers(k, 9))
    values = st.one_of(st.sampled_from(SPECIAL), st.floats(-4, 4, width=32))
    x = np.array(draw(st.lists(values, min_size=n * c * h * w, max_size=n * c * h * w)), dtype)
    x = x.reshape(n, c, h, w)
    if draw(st.booleans()):  # another memory layout
        x = np.asfortranarray(x)
    return x, k, stride, (h - k) // stride + 1, (w - k) // stride + 1


def _same(a, b):
    """Equal shapes and dtypes, NaN at the same places, the same bits elsewhere (signed zeros included;
    a NaN's sign and payload are not compared: which operand's NaN an addition keeps is unspecified)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    nan = np.isnan(a)
    return np.array_equal(nan, np.isnan(b)) and np.ascontiguousarray(a[~nan]).tobytes() == \
        np.ascontiguousarray(b[~nan]).tobytes()


@settings(max_examples=60, deadline=None)
@given(case=_case(), kw=st.integers(1, 3))
def test_rows_equal_the_strided_reshape(case, kw):
    x, kh, stride, ho, _ = case
    kw = min(kw, x.shape[3])
    wo = (x.shape[3] - kw) // stride + 1
    assert _same(kernels.windows_to_cols(x, kh, kw, stride, ho, wo), _reference_rows(x, kh, kw, stride))


@settings(max_examples=60, deadline=None)
@given(case=_case(), data=st.data())
def test_scatter_equals_the_slice_additions(case, data):
    x, k, stride, ho, wo = case
    n, c = x.shape[:2]
    dwin = np.array(data.draw(st.lists(st.one_of(st.sampled_from(SPECIAL), st.floats(-4, 4, width=32)),
                                       min_size=n * c * ho * wo * k * k, max_size=n * c * ho * wo * k * k)),
                    x.dtype).reshape(n, ho, wo, c, k, k).transpose(0, 3, 1, 2, 4, 5)  # conv's strided view
    got, want = np.zeros_like(x, order="C"), np.zeros_like(x, order="C")
    kernels.scatter_windows_into(got, dwin, stride)
    _reference_scatter(want, dwin, stride)
    assert _same(got, want)


@settings(max_examples=60, deadline=None)
@given(case=_case(), data=st.data())
def test_max_pool_equals_argmax_and_one_hot_scatter(case, data):
    x, k, stride, ho, wo = case
    y, arg = kernels.max_windows(x, k, stride, ho, wo)
    flat = windows(x, k, k, stride).reshape(*x.shape[:2], ho, wo, -1)
    want_arg = flat.argmax(axis=-1)
    assert np.array_equal(arg, want_arg)
    assert _same(y, np.take_along_axis(flat, want_arg[..., None], axis=-1)[..., 0])
    dy = np.array(data.draw(st.lists(st.one_of(st.sampled_from(SPECIAL), st.floats(-4, 4, width=32)),
                                     min_size=y.size, max_size=y.size)), x.dtype).reshape(y.shape)
    got, want = np.zeros(x.shape, x.dtype), np.zeros(x.shape, x.dtype)
    kernels.scatter_max_windows(got, dy, arg, k, stride)
    _reference_scatter(want, ((np.arange(k * k) == arg[..., None]) * dy[..., None]).reshape(*dy.shape, k, k),
                       stride)
    assert _same(got, want)


@pytest.mark.parametrize("make", [
    lambda: [hwsim.layers.Conv2d(2, 3, 3, stride=2, padding=1)],
    lambda: [hwsim.layers.Conv2d(2, 3, (2, 3)), hwsim.layers.MaxPool2d(2)],
    lambda: [hwsim.layers.Conv2d(2, 2, 1), hwsim.layers.AvgPool2d(2, 1)],
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_give_the_numpy_code_bits(monkeypatch, make, dtype):
    """Conv2d, MaxPool2d and AvgPool2d forward and backward, stochastic roles included, with and
    without the kernels (`takes` forced False: the numpy code)."""
    policy = hwsim.Precision.from_flags("fixed8", activation="s8.4:stochastic", error="s8.5:stochastic")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 7, 8)).astype(dtype)

    def run():
        layers = make()
        for i, layer in enumerate(layers):
            layer.index, layer.step, layer.precision = i, 5, policy
            for name, value in layer.params().items():
                layer.set_param(name, value.astype(dtype))
        y = x
        for layer in layers:
            y = layer.forward(y, training=True)
        g = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
        out = [y]
        for layer in reversed(layers):
            g = layer.backward(g)
            out += [g] + [v for v in layer.grads().values()]
        return out

    fast = run()
    monkeypatch.setattr(kernels, "takes", lambda *arrays: False)
    slow = run()
    assert len(fast) == len(slow) and all(_same(a, b) for a, b in zip(fast, slow, strict=True))
