"""Op validation and counting."""
from __future__ import annotations

import math

import pytest

import devices
from devices import Conv2d, Elementwise, MatMul, Memory, Transform, Workload


@pytest.mark.parametrize("make,arg", [
    (lambda: MatMul("x", m=-1, k=2, n=2), "m"),
    (lambda: MatMul("x", m=1, k=0, n=2), "k"),
    (lambda: MatMul("x", m=1, k=2, n=2, a_bits=0), "a_bits"),
    (lambda: MatMul("x", m=1, k=2, n=2, b_bits=65), "b_bits"),
    (lambda: MatMul("x", m=1, k=2, n=2, kind="ternary"), "kind"),
    (lambda: MatMul("x", m=1, k=2, n=2, kind="binary"), "binary"),
    (lambda: MatMul("x", m=1, k=2, n=3, structure="circulant"), "structure"),
    (lambda: MatMul("x", m=1, k=2, n=2, sparsity=1.0), "sparsity"),
    (lambda: MatMul("", m=1, k=2, n=2), "name"),
    (lambda: Conv2d("c", batch=1, cin=1, cout=1, h=4, w=4, kh=9, kw=3, pad=0), "kernel"),
    (lambda: Conv2d("c", batch=1, cin=-3, cout=1, h=4, w=4, kh=3, kw=3), "cin"),
    (lambda: Conv2d("c", batch=1, cin=1, cout=1, h=4, w=4, kh=3, kw=3, acc_bits=70), "acc_bits"),
    (lambda: Elementwise("e", n=0), "n"),
    (lambda: Elementwise("e", n=4, bits=100), "bits"),
    (lambda: Elementwise("e", n=4, op="div"), "op"),
    (lambda: Transform("t", kind="wavelet", n=8), "kind"),
    (lambda: Transform("t", kind="fft", n=1), "n"),
    (lambda: Memory("m", read_bytes=-1), "read_bytes"),
    (lambda: Memory("m", level=""), "level"),
])
def test_bad_arguments_raise_value_error_naming_them(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


def test_non_int_size_is_type_error():
    with pytest.raises(TypeError, match="m must be an int"):
        MatMul("x", m=2.5, k=2, n=2)


def test_ops_are_frozen():
    op = MatMul("x", m=1, k=2, n=2)
    with pytest.raises(AttributeError):
        op.m = 3


def test_counts():
    mm = MatMul("fc", m=2, k=3, n=4, a_bits=8, b_bits=4, acc_bits=32, out_bits=8, kind="int")
    assert mm.ops == 2 * 2 * 3 * 4
    traffic = mm.traffic()
    assert [t.nbytes for t in traffic] == [(2 * 3 * 8 + 2 * 4 * 8) / 8, 3 * 4 * 4 / 8]
    conv = Conv2d("c", batch=2, cin=3, cout=4, h=10, w=12, kh=3, kw=5, stride=1)
    assert (conv.h_out, conv.w_out) == (10, 12)  # "same" padding for odd kernels
    assert conv.macs == 2 * 4 * 10 * 12 * 3 * 3 * 5
    strided = Conv2d("s", batch=1, cin=1, cout=1, h=28, w=28, kh=5, kw=5, stride=2, pad=0)
    assert (strided.h_out, strided.w_out) == (12, 12)
    assert Transform("f", kind="fft", n=1024).ops == 5 * 1024 * 10
    assert Transform("d", kind="dct", n=1024, count=3).ops == 3 * 2.5 * 1024 * 10
    assert Transform("w", kind="fwht", n=8, bits=8).ops == 8 * 3
    acdc = Transform("a", kind="acdc", n=4096, bits=32)
    assert acdc.ops / acdc.traffic()[0].nbytes == pytest.approx((4 + 5 * math.log2(4096)) / 8)
    assert Elementwise("e", n=10, bits=16, inputs=2).traffic()[0].nbytes == 10 * 3 * 2


def test_kind_classes():
    assert MatMul("a", m=1, k=1, n=1).op_class == "fp32"
    assert MatMul("a", m=1, k=1, n=1, a_bits=16, b_bits=16).op_class == "fp16"
    assert MatMul("a", m=1, k=1, n=1, a_bits=19, b_bits=19, kind="float").op_class == "tf32"
    assert MatMul("a", m=1, k=1, n=1, a_bits=8, b_bits=8).op_class == "int8"  # auto -> int
    assert MatMul("a", m=1, k=1, n=1, a_bits=8, b_bits=8, kind="float").op_class == "fp8"
    assert MatMul("a", m=1, k=1, n=1, a_bits=1, b_bits=1, kind="binary").op_class == "binary"
    assert MatMul("a", m=1, k=1, n=1, a_bits=8, b_bits=4, kind="shift").op_class == "int8"
    assert Elementwise("e", n=1, bits=4).op_class == "int4"


def test_workload_checks_types_and_unique_names():
    with pytest.raises(TypeError, match=r"ops\[1\]"):
        Workload([Memory("m"), "relu"])
    with pytest.raises(ValueError, match="repeated.*'a'"):
        Workload([Memory("a"), Elementwise("a", n=3)])
    assert len(Workload(iter([Memory("a")]))) == 1
    assert devices.Workload([]).ops == ()
