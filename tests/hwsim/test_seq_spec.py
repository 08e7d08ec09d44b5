"""seq: model specs: parsing, registry, equivalence with mlp:, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim._seq_spec import layer_tokens, parse_seq, register_layer_token, seq_input_shape
from hwsim._workload import workload


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=2, max_size=4), seed=st.integers(0, 2**32 - 1),
       act=st.sampled_from(["relu", "tanh", "sigmoid", "hard_tanh"]))
def test_seq_equals_mlp(sizes, seed, act):
    mlp = hwsim.build_model(f"mlp:{'-'.join(map(str, sizes))}:{act}", (sizes[0],), sizes[-1], seed=seed)
    body = f",{act},".join(f"dense({n})" for n in sizes[1:])
    seq = hwsim.build_model(f"seq:{sizes[0]},{body}", (sizes[0],), sizes[-1], seed=seed)
    assert [type(la) for la in mlp.layers] == [type(lb) for lb in seq.layers]
    for (_, na, a), (_, nb, b) in zip(mlp.parameters(), seq.parameters()):
        assert na == nb and np.array_equal(a, b)
    x = np.random.default_rng(seed).standard_normal((3, sizes[0])).astype(np.float32)
    assert np.array_equal(mlp.forward(x), seq.forward(x))


def test_cnn_spec_shapes_and_reshape():
    spec = "seq:1x8x8,conv(6,3,padding=1),relu,maxpool(2),batchnorm,flatten,dropout(0.2),dense(10)"
    m = hwsim.build_model(spec, (1, 8, 8), 10)
    assert m.output_shape == (10,) and [type(layer).__name__ for layer in m.layers][:3] == [
        "Conv2d", "Activation", "MaxPool2d"]
    assert m.layers[0].stride == 1 and m.layers[0].padding == 1
    flat = hwsim.build_model("seq:64,dense(10)", (1, 8, 8), 10)   # images reshaped to IN
    assert (type(flat.layers[0]).__name__ == "Reshape"
            and flat.forward(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 10))
    assert hwsim.build_model("seq:64,dense(7)", (64,), None).output_shape == (7,)


def test_keyword_for_positional_and_types():
    _, layers = parse_seq("seq:4,dense(out=3),dropout(p=0.25)")
    assert layers[0].W.shape == (4, 3) and layers[1].p == 0.25
    assert seq_input_shape("seq:1x28x28,flatten") == (1, 28, 28)


@pytest.mark.parametrize("spec, needle", [
    ("seq:784,dense(256),foo,dense(10)", "unknown layer 'foo'; valid layers: acdc"),
    ("seq:784,dense(x),dense(10)", "'dense(x)'"),
    ("seq:784,dense(10,3)", "unexpected argument(s) 3"),
    ("seq:784,dense(10,act=2)", "unexpected argument(s) act="),
    ("seq:784,dense(out=10,out=3)", "out= given twice"),
    ("seq:784,dense(10,out=3)", "out given twice"),
    ("seq:784,dense(out=3,10)", "positional argument '10' after a keyword"),
    ("seq:784,conv(3,3)", "needs an image input"),
    ("seq:1x8x8,dense(10)", "needs a flat input"),
    ("seq:0,dense(2)", "bad input token '0'"),
    ("seq:784", "no layers"),
    ("seq:784,dense(5)", "the data have 10 classes"),
    ("seq:784,dense(10", "unbalanced '('"),
    ("seq:784,dense(10))", "unbalanced ')'"),
    ("seq:784,,dense(10)", "empty layer token"),
    ("seq:784,dropout(1.5),dense(10)", "p must be in"),
    ("seq:784,dense(0)", "out must be in"),
    ("seq:1x8x8,maxpool(9),flatten,dense(10)", "'maxpool(9)'"),
    ("seq:100,dense(10)", "bad input token '100'"),
])
def test_errors_name_the_token(spec, needle):
    with pytest.raises(ValueError) as e:
        hwsim.build_model(spec, (784,) if not spec.startswith("seq:1x8x8") else (1, 8, 8), 10)
    assert needle in str(e.value)


def test_registry():
    assert {"dense", "conv", "relu", "flatten", "batchnorm", "dropout", "maxpool"} <= set(layer_tokens())
    with pytest.raises(ValueError, match="already registered"):
        register_layer_token("dense", lambda a: None, "dense(OUT)")


def test_custom_workload_hook():
    import devices

    m = hwsim.build_model("seq:8,dense(4)", (8,), 4)

    class Doubler(hwsim.Layer):
        name = "doubler"

        def forward(self, x, training=False):
            return 2 * x

        def workload_forward(self, b, label, x, y, training):
            b.ew(f"{label}/fwd", b.B * y[0], "activation", 1, op="mul")

    net = hwsim.Sequential([m.layers[0], Doubler()], (8,))
    ops = workload(net, batch=5).ops
    assert isinstance(ops[1], devices.Elementwise) and ops[1].n == 20 and ops[1].name == "doubler1/fwd"


def test_cli_train_and_cost_seq(tmp_path):
    from hwsim.cli import main

    spec = "seq:64,dense(16),relu,dense(10)"
    assert main(["train", "--model", spec, "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert main(["cost", "--model", "seq:1x8x8,conv(4,3,padding=1),relu,maxpool(2),flatten,dense(10)",
                 "--device", "stm32h743"]) == 0
