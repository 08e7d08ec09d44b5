"""hwsim.workload_from_onnx: graphs built here with onnx.helper; counts against hand values."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
# Imports below follow importorskip (onnx) and the sys.path entry (onnx_nets), hence their noqa: E402.
from onnx import TensorProto, helper  # noqa: E402

import devices  # noqa: E402
from hwsim import Precision, workload_from_onnx  # noqa: E402
from hwsim.cli import main  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import onnx_nets  # noqa: E402

F = TensorProto.FLOAT


def _model(nodes, inputs, output, inits=(), out_type=F):
    graph = helper.make_graph(nodes, "t", inputs, [helper.make_tensor_value_info(output, out_type, None)],
                              list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _w(name, dims, elem=F):
    n = math.prod(dims)
    if elem == F:
        return helper.make_tensor(name, elem, list(dims), [0.0] * n)
    return helper.make_tensor(name, elem, list(dims), [0] * n)


def _x(shape, name="x", elem=F):
    return helper.make_tensor_value_info(name, elem, list(shape))


def _conv_model(x_shape, w_shape, **attrs):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)
    return _model([node], [_x(x_shape)], "y", [_w("w", w_shape)])


def test_conv_counts_hand_values():
    wl = workload_from_onnx(_conv_model((2, 3, 17, 19), (8, 3, 5, 5), strides=[2, 2], pads=[1, 2, 1, 2]))
    (op,) = wl.ops
    assert (op.h_out, op.w_out) == (8, 10)  # (17+2-5)//2+1, (19+4-5)//2+1
    assert op.macs == 2 * 8 * 8 * 10 * 3 * 25
    assert sum(t.nbytes for t in op.traffic()) == (2 * 3 * 17 * 19 + 2 * 8 * 8 * 10 + 8 * 3 * 25) * 4
    assert (op.a_bits, op.b_bits, op.kind) == (32, 32, "float")


def test_depthwise_grouped_dilated_conv():
    dw = workload_from_onnx(_conv_model((1, 16, 10, 10), (16, 1, 3, 3), group=16, pads=[1, 1, 1, 1])).ops[0]
    assert dw.depthwise and dw.macs == 16 * 10 * 10 * 9 and dw.weight_elements == 16 * 9
    grp = workload_from_onnx(_conv_model((1, 8, 12, 12), (12, 2, 3, 3), group=4, dilations=[2, 2])).ops[0]
    assert not grp.depthwise and (grp.h_out, grp.w_out) == (8, 8)  # 12 - 2*(3-1)
    assert grp.macs == 12 * 8 * 8 * 2 * 9 and grp.gemm_dims == (64, 18, 3)


def test_conv_auto_pad_and_1d():
    same = workload_from_onnx(_conv_model((1, 1, 49, 10), (4, 1, 10, 4), strides=[2, 2],
                                          auto_pad="SAME_UPPER")).ops[0]
    assert (same.h_out, same.w_out) == (25, 5) and same.pads == (4, 1, 5, 1)
    one = workload_from_onnx(_conv_model((1, 4, 100), (6, 4, 5), strides=[2])).ops[0]
    assert (one.h_out, one.w_out) == (1, 48) and one.macs == 6 * 48 * 4 * 5


@settings(max_examples=40, deadline=None)
@given(h=st.integers(3, 20), w=st.integers(3, 20), k=st.integers(1, 3), s=st.integers(1, 3),
       d=st.integers(1, 2), p=st.lists(st.integers(0, 2), min_size=4, max_size=4),
       g=st.sampled_from([1, 2, 4]))
def test_conv_geometry_matches_onnx_shape_inference(h, w, k, s, d, p, g):
    if h + p[0] + p[2] < d * (k - 1) + 1 or w + p[1] + p[3] < d * (k - 1) + 1:
        return
    m = _conv_model((1, 4, h, w), (8, 4 // g, k, k), strides=[s, s], pads=p, dilations=[d, d], group=g)
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    dims = [d_.dim_value for d_ in inferred.graph.output[0].type.tensor_type.shape.dim]
    (op,) = workload_from_onnx(m).ops
    assert [op.batch, op.cout, op.h_out, op.w_out] == dims
    assert op.macs == math.prod(dims) * (4 // g) * k * k  # outputs x MACs per output


def test_gemm_matmul_and_batch():
    gemm = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)
    wl = workload_from_onnx(_model([gemm], [_x((1, 20))], "y", [_w("w", (7, 20)), _w("b", (7,))]), batch=5)
    assert [(o.m, o.k, o.n) for o in wl.ops] == [(5, 20, 7)]  # bias folded into the product
    mm = helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")
    wl = workload_from_onnx(_model([mm], [_x((2, 6, 20))], "y", [_w("w", (20, 3))]))
    assert [(o.m, o.k, o.n) for o in wl.ops] == [(12, 20, 3)]


def test_bn_folded_after_conv_not_elsewhere():
    bn = [_w(f"bn.{p}", (4,)) for p in ("s", "b", "m", "v")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", *[t.name for t in bn]], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["r"], name="relu"),
             helper.make_node("BatchNormalization", ["r", *[t.name for t in bn]], ["y"], name="bn2")]
    model = _model(nodes, [_x((1, 2, 6, 6))], "y", [_w("w", (4, 2, 3, 3)), *bn])
    wl = workload_from_onnx(model, fuse_activations=False)
    assert [o.name for o in wl.ops] == ["conv/fwd", "relu/fwd", "bn2/fwd"]
    assert wl.ops[2].op == "mac" and wl.ops[2].ops == 4 * 36
    fused = workload_from_onnx(model)  # the ReLU runs in the conv's epilogue; BN after a ReLU never folds
    assert [o.name for o in fused.ops] == ["conv/fwd", "bn2/fwd"]


def test_activation_fused_into_residual_add():
    nodes = [helper.make_node("Add", ["x", "x2"], ["s"], name="res"),
             helper.make_node("Relu", ["s"], ["y"], name="r")]
    model = _model(nodes, [_x((1, 8)), _x((1, 8), "x2")], "y")
    (op,) = workload_from_onnx(model).ops
    assert (op.name, op.inputs, op.ops_per_element) == ("res/fwd", 2, 2)
    assert [o.name for o in workload_from_onnx(model, fuse_activations=False).ops] == ["res/fwd", "r/fwd"]


def _residual_block(skip_conv: bool = False):
    """x (1,2,6,6) -> conv 3x3 (2 -> 2, pads 1) -> BN -> Add(., skip) -> Relu; skip = x, or a 1x1 conv of
    x written after the 3x3 one."""
    bn = [_w(f"bn.{p}", (2,)) for p in ("s", "b", "m", "v")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", *[t.name for t in bn]], ["n"], name="bn")]
    inits = [_w("w", (2, 2, 3, 3)), *bn]
    skip = "x"
    if skip_conv:
        nodes.append(helper.make_node("Conv", ["x", "w1"], ["d"], name="down"))
        inits.append(_w("w1", (2, 2, 1, 1)))
        skip = "d"
    nodes += [helper.make_node("Add", ["n", skip], ["s"], name="res"),
              helper.make_node("Relu", ["s"], ["y"], name="relu")]
    return _model(nodes, [_x((1, 2, 6, 6))], "y", inits)


def test_residual_add_fused_into_conv_epilogue_hand_values():
    n = 2 * 6 * 6  # output elements = skip elements
    (conv,) = workload_from_onnx(_residual_block()).ops  # the Add and the ReLU run in the conv's epilogue
    assert (conv.name, conv.macs, conv.residual_bits) == ("conv/fwd", n * 2 * 9, 32)
    act, weights = conv.traffic()
    assert act.nbytes == (n + n + n) * 4 and act.written == n * 4  # input, output, one read of the skip
    assert weights.nbytes == 2 * 2 * 9 * 4
    unfused = workload_from_onnx(_residual_block(), fuse_residual=False).ops
    assert [o.name for o in unfused] == ["conv/fwd", "res/fwd"]  # the ReLU still joins the add's pass
    assert unfused[0].residual_bits == 0
    assert sum(t.nbytes for t in unfused[0].traffic()) == (2 * n + 36) * 4
    add = unfused[1]
    assert (add.inputs, add.ops_per_element, add.traffic()[0].nbytes) == (2, 2, 3 * n * 4)
    bits8 = workload_from_onnx(_residual_block(), Precision.from_flags("fixed8")).ops[0]
    assert bits8.residual_bits == 8
    assert bits8.traffic()[0].nbytes == (n * 8 + n * bits8.out_bits + n * 8) / 8


def test_residual_add_fused_into_the_later_product():
    n = 2 * 6 * 6
    conv, down = workload_from_onnx(_residual_block(skip_conv=True)).ops
    assert (conv.residual_bits, down.residual_bits) == (0, 32)  # the 1x1 conv, written last, reads the 3x3's
    assert down.traffic()[0].nbytes == (n + n + n) * 4
    assert len(workload_from_onnx(_residual_block(skip_conv=True), fuse_residual=False).ops) == 3


def test_residual_add_not_fused_when_shapes_differ_or_product_shared():
    bcast = [helper.make_node("Gemm", ["x", "w"], ["g"], name="fc"),
             helper.make_node("Add", ["g", "b"], ["y"], name="res")]
    model = _model(bcast, [_x((4, 3)), _x((1, 5), "b")], "y", [_w("w", (3, 5))])
    assert [o.name for o in workload_from_onnx(model).ops] == ["fc/fwd", "res/fwd"]  # broadcast: a pass
    shared = [helper.make_node("Gemm", ["x", "w"], ["g"], name="fc"),
              helper.make_node("Add", ["g", "x2"], ["s"], name="res"),
              helper.make_node("Mul", ["g", "s"], ["y"], name="use")]
    model = _model(shared, [_x((4, 3)), _x((4, 5), "x2")], "y", [_w("w", (3, 5))])
    assert [o.name for o in workload_from_onnx(model).ops] == ["fc/fwd", "res/fwd", "use/fwd"]
    gemm = [helper.make_node("Gemm", ["x", "w"], ["g"], name="fc"),
            helper.make_node("Add", ["x2", "g"], ["y"], name="res")]
    (fc,) = workload_from_onnx(_model(gemm, [_x((4, 3)), _x((4, 5), "x2")], "y", [_w("w", (3, 5))])).ops
    assert fc.residual_bits == 32 and fc.traffic()[0].nbytes == (4 * 3 + 4 * 5 + 4 * 5) * 4


def test_elementwise_pool_residual_counts():
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], name="mp", kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("AveragePool", ["x"], ["a"], name="ap", kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("Add", ["p", "a"], ["s"], name="res"),
             helper.make_node("Sigmoid", ["s"], ["g"], name="sig"),
             helper.make_node("GlobalAveragePool", ["g"], ["y"], name="gap")]
    wl = {o.name: o for o in workload_from_onnx(_model(nodes, [_x((1, 4, 9, 9))], "y"),
                                                fuse_activations=False)}
    n_out = 4 * 4 * 4
    assert (wl["mp/fwd"].n, wl["mp/fwd"].ops_per_element, wl["mp/fwd"].inputs) == (n_out, 8, 5)
    assert wl["ap/fwd"].ops_per_element == 9
    assert (wl["res/fwd"].inputs, wl["res/fwd"].ops) == (2, n_out)
    assert wl["sig/fwd"].ops == 4 * n_out
    assert (wl["gap/fwd"].n, wl["gap/fwd"].ops_per_element) == (4, 16)
    assert sum(t.nbytes for t in wl["res/fwd"].traffic()) == 3 * n_out * 4


def test_precision_and_qdq_widths():
    wl = workload_from_onnx(_conv_model((1, 3, 8, 8), (4, 3, 3, 3)), Precision.from_flags("fixed8"))
    assert (wl.ops[0].a_bits, wl.ops[0].b_bits, wl.ops[0].kind) == (8, 8, "int")
    i8 = TensorProto.INT8
    inits = [_w("w", (4, 3, 3, 3), i8), _w("s", ()), _w("z", (), i8)]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q0"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq0"),
             helper.make_node("DequantizeLinear", ["w", "s", "z"], ["wd"], name="dqw"),
             helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv"),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], name="q1"),
             helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"], name="dq1"),
             helper.make_node("Relu", ["cd"], ["y"], name="relu")]
    ops = workload_from_onnx(_model(nodes, [_x((1, 3, 8, 8))], "y", inits)).ops
    assert [o.name for o in ops] == ["conv/fwd", "relu/fwd"]
    conv, relu = ops
    assert (conv.a_bits, conv.b_bits, conv.acc_bits, conv.out_bits, conv.kind) == (8, 8, 32, 8, "int")
    assert (relu.bits, relu.kind) == (8, "int")


def _unsupported_model():
    return _model([helper.make_node("Relu", ["x"], ["r"], name="ok"),
                   helper.make_node("Hardmax", ["r"], ["y"], name="odd/node")], [_x((1, 10))], "y")


def test_unsupported_op_error_and_skip():
    with pytest.raises(ValueError, match=r"'odd.node'.*'Hardmax'.*supported: .*Conv"):
        workload_from_onnx(_unsupported_model())
    with pytest.warns(UserWarning, match="Hardmax"):
        wl = workload_from_onnx(_unsupported_model(), skip_unsupported=True)
    row = wl.ops[-1]
    assert isinstance(row, devices.Memory) and row.name == "odd.node/UNSUPPORTED Hardmax"
    assert (row.read_bytes, row.write_bytes) == (40, 40)


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        workload_from_onnx(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a protobuf\xff" * 3)
    with pytest.raises(ValueError, match="bad.onnx"):
        workload_from_onnx(bad)
    with pytest.raises(ValueError, match="batch"):
        workload_from_onnx(_unsupported_model(), batch=0)


@pytest.mark.parametrize("name, macs", [("ds_cnn", 2_656_768), ("mobilenet_v1_025", 7_489_664),
                                        ("resnet8", 12_501_632), ("fc_autoencoder", 264_192)])
def test_mlperf_tiny_mac_counts_equal_published(name, macs):
    wl = workload_from_onnx(onnx_nets.MLPERF_TINY[name]())
    assert sum(getattr(o, "macs", 0) for o in wl) == macs


def test_cli_cost_onnx(tmp_path, capsys, monkeypatch):
    path = tmp_path / "kws.onnx"
    onnx.save(onnx_nets.ds_cnn(), path)
    assert main(["cost", "--model", str(path), "--precision", "fixed8", "--device", "stm32h743",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["devices"]["stm32h743"]["latency_s"] > 0 and out["input_shape"] is None
    bad = tmp_path / "odd.onnx"
    onnx.save(_unsupported_model(), bad)
    assert main(["cost", "--model", str(bad), "--device", "h100-sxm"]) == 2
    err = capsys.readouterr().err
    assert "Hardmax" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["cost", "--model", str(bad), "--device", "h100-sxm", "--skip-unsupported", "--layers"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "odd.node" in captured.out
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    assert main(["cost", "--model", str(path), "--device", "h100-sxm"]) == 2
    assert "pip install -e '.[onnx]'" in capsys.readouterr().err
