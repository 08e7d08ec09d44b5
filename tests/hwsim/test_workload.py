"""hwsim.workload: MAC counts, bit widths, kinds and bytes on hand-computed cases."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

import devices
from hwsim._model import Sequential
from hwsim._precision import ROLES, Precision
from hwsim._workload import layer_of, workload
from hwsim.layers import Activation, AvgPool2d, BatchNorm, Conv2d, Dense, Dropout, Flatten, MaxPool2d


def _mlp() -> Sequential:
    return Sequential([Dense(4, 3), Activation("relu"), Dense(3, 2)], input_shape=(4,))


def _by_name(wl) -> dict:
    return {op.name: op for op in wl}


def test_fp32_inference_mlp_by_hand():
    ops = _by_name(workload(_mlp(), Precision(), batch=2))
    assert list(ops) == ["dense0/fwd", "relu1/fwd", "dense2/fwd"]
    fc1, fc2 = ops["dense0/fwd"], ops["dense2/fwd"]
    assert (fc1.m, fc1.k, fc1.n, fc1.kind, fc1.a_bits, fc1.b_bits, fc1.acc_bits) == (2, 4, 3, "float",
                                                                                     32, 32, 32)
    assert fc1.macs + fc2.macs == 2 * 4 * 3 + 2 * 3 * 2
    # activations in (2x4) and out (2x3) at 32 bits, weights 4x3 at 32 bits
    assert [t.nbytes for t in fc1.traffic()] == [(8 + 6) * 4, 12 * 4]
    assert ops["relu1/fwd"].n == 6 and ops["relu1/fwd"].ops == 6


def test_fixed8_widths_and_bytes():
    p = Precision.from_flags(weight="s8.7", activation="s8.4", acc="s24.11")
    ops = _by_name(workload(_mlp(), p, batch=2))
    fc1 = ops["dense0/fwd"]
    assert (fc1.kind, fc1.a_bits, fc1.b_bits, fc1.acc_bits, fc1.out_bits) == ("int", 8, 8, 24, 8)
    assert [t.nbytes for t in fc1.traffic()] == [(8 + 6) * 1, 12 * 1]
    relu = ops["relu1/fwd"]
    assert relu.bits == 8 and relu.number_kind == "int"


def test_none_uses_each_layers_policy():
    net = _mlp()
    net.set_precision(Precision.from_flags("fixed8"))
    net.layers[2].precision_override = Precision.from_flags("fixed16")
    net.set_precision(net.precision)
    ops = _by_name(workload(net, None))
    assert (ops["dense0/fwd"].kind, ops["dense0/fwd"].b_bits) == ("int", 8)
    assert (ops["dense2/fwd"].b_bits, ops["dense2/fwd"].acc_bits) == (16, 32)


def test_mixed_float_activation_is_float_product():
    ops = _by_name(workload(_mlp(), Precision.from_flags(weight="s8.7"), batch=1))
    assert (ops["dense0/fwd"].kind, ops["dense0/fwd"].a_bits, ops["dense0/fwd"].b_bits) == ("float", 32, 8)


@dataclass(frozen=True)
class _Q:  # a scheme-style quantizer: only name/bits/kind matter to the workload
    name: str
    bits: int
    kind: str

    def __call__(self, x, *, seed, offset, stats=None):
        return x

    def grad_mask(self, x):
        return None


@pytest.mark.parametrize("w, a, kind, bits", [
    (_Q("binary", 1, "binary"), _Q("binary", 1, "binary"), "binary", (1, 1)),
    (_Q("binary", 1, "binary"), None, "shift", (32, 1)),
    (_Q("pow2", 4, "pow2"), _Q("s8.4", 8, "fixed"), "shift", (8, 4)),
    (_Q("ternary", 2, "ternary"), _Q("s8.4", 8, "fixed"), "shift", (8, 2)),
])
def test_scheme_kinds(w, a, kind, bits):
    fc1 = _by_name(workload(_mlp(), Precision(weight=w, activation=a), batch=1))["dense0/fwd"]
    assert fc1.kind == kind and (fc1.a_bits, fc1.b_bits) == bits


def test_training_step_adds_backward_and_update():
    p = Precision.from_flags(weight="s8.7", activation="s8.4", error="s8.6", grad="s16.14",
                             update="s16.14:stochastic")
    wl = workload(_mlp(), p, batch=2, training=True, optimizer="adam")
    ops = _by_name(wl)
    names = list(ops)
    assert names.index("loss/softmax_xent") > names.index("dense2/fwd")
    # backward in reverse order; the first layer needs no error product
    assert [n for n in names if n.endswith(("/error", "/grad", "/bwd"))] == [
        "dense2/error", "dense2/grad", "relu1/bwd", "dense0/grad"]
    err, grad = ops["dense2/error"], ops["dense2/grad"]
    assert (err.m, err.k, err.n, err.a_bits, err.b_bits, err.out_bits) == (2, 2, 3, 8, 8, 8)
    assert (grad.m, grad.k, grad.n, grad.a_bits, grad.b_bits, grad.out_bits) == (3, 2, 2, 8, 8, 16)
    g0 = ops["dense0/grad"]
    assert (g0.m, g0.k, g0.n) == (4, 2, 3)
    fwd_macs = 2 * 4 * 3 + 2 * 3 * 2
    back_macs = sum(op.macs for op in wl if op.name.endswith(("/error", "/grad")))
    assert back_macs == 2 * 2 * 3 + 3 * 2 * 2 + 4 * 2 * 3 == 2 * fwd_macs - 2 * 4 * 3
    upd = ops["dense0/update"]  # 15 parameters, 16-bit master weights, Adam 8 ops + 1 weight copy
    assert (upd.n, upd.bits, upd.ops) == (15, 16, 15 * 9)
    assert [t.nbytes for t in upd.traffic()] == [15 * 2 * 2]
    # grads at 16 bits + two float32 moments read; moments and the 8-bit weight copy written
    state = ops["dense0/opt_state"]
    assert (state.read_bytes, state.write_bytes) == (15 * 2 + 2 * 15 * 4, 2 * 15 * 4 + 15)
    sgd = _by_name(workload(_mlp(), Precision(), batch=2, training=True, optimizer="sgd"))
    assert sgd["dense2/update"].ops == 8 * 2 and sgd["dense2/opt_state"].write_bytes == 8 * 4
    assert sgd["dense2/opt_state"].read_bytes == 8 * 4 + 8 * 4


def test_cnn_layers_by_hand():
    net = Sequential([Conv2d(1, 2, 3, stride=1, padding=1), BatchNorm(2), Activation("relu"),
                      MaxPool2d(2), AvgPool2d(2), Flatten(), Dropout(0.5), Dense(2 * 2 * 2, 3)],
                     input_shape=(1, 8, 8))
    ops = _by_name(workload(net, Precision(), batch=1))
    conv = ops["conv0/fwd"]
    assert (conv.cin, conv.cout, conv.h, conv.w, conv.kh, conv.stride, conv.padding) == (1, 2, 8, 8, 3,
                                                                                         1, (1, 1))
    assert conv.macs == 2 * 8 * 8 * 9
    assert ops["maxpool3/fwd"].n == 2 * 4 * 4 and ops["maxpool3/fwd"].ops_per_element == 3
    assert ops["maxpool3/fwd"].inputs == 4
    assert ops["avgpool4/fwd"].n == 2 * 2 * 2 and ops["avgpool4/fwd"].ops_per_element == 4
    assert ops["batchnorm1/fwd"].ops == 2 * 8 * 8
    assert not any(n.startswith(("flatten5", "dropout6")) for n in ops)  # flatten, inference dropout: free
    train = _by_name(workload(net, Precision(), batch=1, training=True))
    assert "conv0/error" not in train and train["conv0/grad"].macs == conv.macs
    assert train["dense7/error"].macs == 8 * 3 and "dropout6/fwd" in train


def test_estimate_groups_by_layer():
    wl = workload(_mlp(), Precision.from_flags("fixed8"), batch=1)
    est = devices.estimate(wl, devices.load("h100-sxm"))
    layers = {layer_of(r.name) for r in est.rows}
    assert layers == {"dense0", "relu1", "dense2"}
    assert est.energy_j > 0 and est.latency_s > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch"):
        workload(_mlp(), None, batch=0)
    with pytest.raises(ValueError, match="optimizer"):
        workload(_mlp(), None, training=True, optimizer="rmsprop")

    class Odd:
        name = "odd"

        def output_shape(self, s):
            return s

    net = _mlp()
    net.layers.append(Odd())
    with pytest.raises(TypeError, match="no cost rule for layer 'odd'"):
        workload(net, None)


def test_every_role_sets_its_widths():
    """Each role of `hwsim.ROLES` reaches the ops that the module docstring assigns it."""
    widths = dict(zip(ROLES, (3, 5, 6, 7, 9, 20)))
    p = Precision.from_flags(**{r: f"s{b}.1" for r, b in widths.items()})
    ops = _by_name(workload(_mlp(), p, batch=2, training=True, optimizer="sgd"))
    err, grad = ops["dense2/error"], ops["dense0/grad"]
    assert (err.a_bits, err.b_bits, err.acc_bits, err.out_bits) == (6, 3, 20, 6)
    assert (grad.a_bits, grad.b_bits, grad.out_bits) == (5, 6, 7)
    assert ops["relu1/fwd"].bits == 5 and ops["dense0/update"].bits == 9
