"""Training schemes: each trains on a tiny task, its quantized values lie in its set, names/params
validate."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import hwsim
from hwsim import Dataset, Precision
from hwsim._precision import parse_quantizer
from hwsim.schemes import (
    BinaryQuantizer,
    Pow2Quantizer,
    QuantizedBackprop,
    TernaryQuantizer,
    get_scheme,
    parse_scheme,
    scheme_names,
)
from tests.hwsim._synthetic import synthetic_dataset


@pytest.fixture(scope="module")
def data() -> Dataset:
    return synthetic_dataset(12, 320, 256)


def _train(name: str, data: Dataset, **params):
    scheme = get_scheme(name, **params)
    model = scheme.build_model("mlp:12-16-3", (12,), 3, seed=1)
    m = hwsim.train(model, data, scheme.precision(seed=2), epochs=4, batch=32, lr=1e-2, progress=False)
    return scheme, model, m


def _weight_values(model) -> list[np.ndarray]:
    return [layer.precision.weight(layer.W, seed=3, offset=0)
            for layer in model.layers if isinstance(layer, hwsim.Dense)]


@pytest.mark.parametrize("name", scheme_names())
def test_every_scheme_trains(name: str, data: Dataset) -> None:
    scheme, model, m = _train(name, data)
    assert m["train_loss"][-1] < m["train_loss"][0], m["train_loss"]
    assert m["precision"] == scheme.precision(seed=2).to_dict()
    assert scheme.name in get_scheme(name).to_dict()["scheme"]
    module_doc = __import__(type(scheme).__module__, fromlist=["_"]).__doc__
    assert name == "fp32" or re.search(r"(19|20)\d\d", module_doc), "the paper is cited in the docstring"


@pytest.mark.parametrize("name,stochastic",
                         [("binaryconnect", False), ("binaryconnect", True), ("bnn", False)])
def test_binary_weights_and_clip(name: str, stochastic: bool, data: Dataset) -> None:
    _, model, _ = _train(name, data, **({"stochastic": stochastic} if name == "binaryconnect" else {}))
    for w in _weight_values(model):
        assert set(np.unique(w)) <= {-1.0, 1.0}
    for layer in model.layers:
        if isinstance(layer, hwsim.Dense):
            assert np.abs(layer.W).max() <= 1.0
        if isinstance(layer, hwsim.BatchNorm):
            assert layer.precision.is_float          # batch norm stays float32, unclipped


def test_bnn_activations_are_binary(data: Dataset) -> None:
    _, model, _ = _train("bnn", data)
    h = data.X_test
    for layer in model.layers[:-2]:
        h = layer.forward(h)
        if isinstance(layer, hwsim.Activation):
            assert layer.kind == "sign" and set(np.unique(h)) <= {-1.0, 1.0}
    # straight-through estimator with clipping: the gradient is cut where |x| > 1
    sign = hwsim.Activation("sign")
    x = np.array([[-2.0, -0.5, 0.0, 0.7, 1.5]], np.float32)
    sign.forward(x, training=True)
    np.testing.assert_array_equal(sign.backward(np.ones_like(x)), [[0, 1, 1, 1, 0]])


@pytest.mark.parametrize("name", ["ternaryconnect", "twn"])
def test_ternary_values(name: str, data: Dataset) -> None:
    _, model, _ = _train(name, data)
    for w in _weight_values(model):
        vals = np.unique(np.abs(w))
        assert 0.0 in vals and len(vals) == 2            # {-a, 0, +a}
        if name == "ternaryconnect":
            assert vals[1] == 1.0


def test_twn_threshold_and_scale() -> None:
    w = np.array([0.05, -0.1, 0.4, -0.8, 1.2, 0.0], np.float32)
    out = TernaryQuantizer(scaled=True)(w, seed=0)
    delta = 0.7 * np.abs(w).mean()
    big = np.abs(w) > delta
    alpha = np.abs(w[big]).mean()
    np.testing.assert_allclose(out, np.where(big, np.sign(w) * alpha, 0.0), rtol=1e-6)


class _Recording(Pow2Quantizer):
    """A pow2 quantizer that keeps what it produced (for the test only)."""

    seen: list = []

    def __call__(self, x, *, seed, offset=0, stats=None):
        y = super().__call__(x, seed=seed, offset=offset, stats=stats)
        self.seen.append(y)
        return y


def test_quantized_backprop_errors_are_powers_of_two(data: Dataset) -> None:
    scheme = QuantizedBackprop(min_exp=-10, max_exp=0)
    model = scheme.build_model("mlp:12-16-3", (12,), 3, seed=1)
    rec = _Recording(-10, 0)
    rec.seen.clear()
    m = hwsim.train(model, data, scheme.precision(2).replace(error=rec), epochs=4, batch=32, lr=1e-2,
                    progress=False)
    assert m["train_loss"][-1] < m["train_loss"][0]
    e = np.concatenate([a.ravel() for a in rec.seen])
    nz = np.abs(e[e != 0]).astype(np.float64)
    assert nz.size and np.all(np.log2(nz) == np.round(np.log2(nz)))
    assert nz.min() >= 2.0 ** -10 and nz.max() <= 1.0
    for w in _weight_values(model):
        assert set(np.unique(w)) <= {-1.0, 1.0}
    wl = hwsim.workload(model, scheme.precision(), batch=1, training=True)
    kinds = {op.name.split("/")[1]: op.kind for op in wl.ops if op.name.endswith(("/error", "/fwd"))}
    assert kinds["error"] == "shift"          # error (pow2) x binary weights: shifts and sign flips


def test_workload_kinds() -> None:
    bnn = get_scheme("bnn")
    model = bnn.build_model("mlp:12-16-3", (12,), 3)
    kinds = {op.kind for op in hwsim.workload(model, bnn.workload_precision()).ops if hasattr(op, "k")}
    assert kinds == {"binary"}


@pytest.mark.parametrize("q",
                         [BinaryQuantizer(), BinaryQuantizer(stochastic=True), BinaryQuantizer(ste_clip=True),
                               TernaryQuantizer(), TernaryQuantizer(stochastic=True),
                               TernaryQuantizer(threshold=0.3),
                               TernaryQuantizer(scaled=True), Pow2Quantizer(-8, 2),
                               Pow2Quantizer(-3, -1, True)])
def test_quantizer_names_round_trip(q) -> None:
    assert parse_quantizer(q.name) == q
    p = Precision(weight=q, error=Pow2Quantizer(), seed=5, weight_clip=1.0)
    assert Precision.from_dict(p.to_dict()) == p


def test_quantizers_keep_dtype_and_reproduce() -> None:
    x = np.linspace(-1.5, 1.5, 41, dtype=np.float32)
    for q in (BinaryQuantizer(stochastic=True), TernaryQuantizer(stochastic=True),
              Pow2Quantizer(-6, 0, True)):
        a, b = q(x, seed=11, offset=0), q(x, seed=11, offset=0)
        assert a.dtype == np.float32 and np.array_equal(a, b)
        # chunked calls with offsets draw the same bits as one call
        np.testing.assert_array_equal(
            np.concatenate([q(x[:20], seed=11, offset=0), q(x[20:], seed=11, offset=20)]), a)
    np.testing.assert_array_equal(BinaryQuantizer(ste_clip=True).grad_mask(x), np.abs(x) <= 1)


def test_bad_names_and_parameters_list_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid schemes are .*binaryconnect.*bnn"):
        get_scheme("binaryconect")
    with pytest.raises(ValueError, match="valid parameters are .*stochastic.*weight_clip"):
        get_scheme("binaryconnect", stochastc=True)
    with pytest.raises(ValueError, match="weights must be one of"):
        get_scheme("quantized-backprop", weights="quaternary")
    with pytest.raises(ValueError, match="min_exp"):
        get_scheme("quantized-backprop", min_exp=3, max_exp=0)
    with pytest.raises(ValueError, match="bad rounding token"):
        get_scheme("fixed", update="s16.14:stochasticc")
    with pytest.raises(ValueError, match="must be true or false"):
        parse_scheme("binaryconnect:stochastic=maybe")
    with pytest.raises(ValueError, match="valid parameters"):
        parse_scheme("bnn:clip=1")
    with pytest.raises(ValueError, match="bad quantizer name"):
        parse_quantizer("pow2[0]")


def test_parse_scheme_and_presets() -> None:
    s = parse_scheme("binaryconnect:stochastic=true,weight_clip=0.5")
    assert s.stochastic is True and s.weight_clip == 0.5
    assert parse_scheme("quantized-backprop:weights=ternary,min_exp=-8").min_exp == -8
    p16 = get_scheme("fixed16-sr").precision()
    assert p16.update.rounding == "stochastic" and p16.weight.bits == 16
    assert get_scheme("fixed8-sr").precision().weight.bits == 8
    assert parse_scheme("fixed8-sr:update=s12.10:stochastic").precision().update.bits == 12


def test_cli_train_with_scheme_then_eval_and_quantize(tmp_path, capsys) -> None:
    from hwsim.cli import main

    run = str(tmp_path / "bc")
    assert main(["train", "--scheme", "binaryconnect:stochastic=true", "--model", "mlp:64-32-10",
                 "--epochs", "1",
                 "--lr", "1e-2", "--out", run, "--quiet"]) == 0
    assert main(["eval", run, "--json"]) == 0
    assert main(["quantize", run, "--bits", "8", "6", "--json"]) == 0
    rows = json.loads((tmp_path / "bc" / "quantize.json").read_text())["rows"]
    assert [r["bits"] for r in rows] == ["trained", 8, 6]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert main(["train", "--scheme", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "valid schemes are" in capsys.readouterr().err
