"""The latency / energy model: monotonicity, roofline, fallbacks, energy rules."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import devices
from devices import Elementwise, EnergyTable, MatMul, Memory, Transform, Workload
from devices._energy import HOROWITZ_PJ

ELECTRONIC = ["h100-sxm", "jetson-orin-nano", "stm32h743", "titan-x-maxwell", "xeon-8380"]


def one(op, prof):
    return devices.estimate(Workload([op]), prof).rows[0]


dims = st.integers(1, 3000)


@settings(max_examples=40)
@given(prof=st.sampled_from(ELECTRONIC), m=dims, k=dims, n=dims, dm=st.integers(0, 500),
       bits=st.integers(1, 64),
       kind=st.sampled_from(["int", "float"]))
def test_more_ops_never_cost_less(prof, m, k, n, dm, bits, kind):
    small = one(MatMul("a", m=m, k=k, n=n, a_bits=bits, b_bits=bits, kind=kind), prof)
    large = one(MatMul("a", m=m + dm, k=k, n=n, a_bits=bits, b_bits=bits, kind=kind), prof)
    assert large.latency_s >= small.latency_s * (1 - 1e-12)
    assert large.energy_j >= small.energy_j * (1 - 1e-12)


@settings(max_examples=40)
@given(prof=st.sampled_from(ELECTRONIC), nbytes=st.integers(0, 10 ** 10), extra=st.integers(0, 10 ** 9),
       level=st.sampled_from([None, "main"]))
def test_more_bytes_never_cost_less(prof, nbytes, extra, level):
    p = devices.load(prof)
    lv = p.data["main_memory"] if level else None
    a = one(Memory("m", level=lv, read_bytes=nbytes), p)
    b = one(Memory("m", level=lv, read_bytes=nbytes + extra), p)
    assert b.latency_s >= a.latency_s and b.energy_j >= a.energy_j
    e1 = one(Elementwise("e", n=max(nbytes // 8, 1)), p)
    e2 = one(Elementwise("e", n=max(nbytes // 8, 1) + extra // 8), p)
    assert e2.latency_s >= e1.latency_s * (1 - 1e-12) and e2.energy_j >= e1.energy_j * (1 - 1e-12)


@settings(max_examples=40)
@given(prof=st.sampled_from(ELECTRONIC), bits=st.integers(2, 64), fewer=st.integers(1, 63),
       kind=st.sampled_from(["int", "float", "shift"]), size=st.integers(1, 512))
def test_fewer_bits_never_cost_more_energy(prof, bits, fewer, kind, size):
    lo = max(1, bits - fewer)
    wide = one(MatMul("a", m=size, k=size, n=size, a_bits=bits, b_bits=bits, acc_bits=bits, kind=kind), prof)
    narrow = one(MatMul("a", m=size, k=size, n=size, a_bits=lo, b_bits=lo, acc_bits=lo, kind=kind), prof)
    assert narrow.energy_j <= wide.energy_j * (1 + 1e-12)
    ew = one(Elementwise("e", n=size * 100, bits=bits, kind="int"), prof)
    en = one(Elementwise("e", n=size * 100, bits=lo, kind="int"), prof)
    assert en.energy_j <= ew.energy_j * (1 + 1e-12)


@given(a=st.floats(1, 64), b=st.floats(1, 64), d=st.floats(0, 30))
def test_energy_table_monotone_in_bits(a, b, d):
    t = EnergyTable()
    for num in ("int", "fp"):
        assert t.add(num, a + d) >= t.add(num, a)
        assert t.mul(num, a + d, b) >= t.mul(num, a, b)
        assert t.mac(num, a + d, b, 32) >= t.mac(num, a, b, 32)


def test_energy_anchors_and_scaling_rules():
    t = EnergyTable()
    for key, pj in HOROWITZ_PJ.items():
        head, op = key.split("_")
        num = "int" if head.startswith("int") else "fp"
        bits = int(head[len(num):])
        got = t.add(num, bits) if op == "add" else t.mul(num, bits, bits)
        assert got == pytest.approx(pj)
    assert t.add("int", 4) == pytest.approx(0.03 / 2)        # adders ∝ bits below the anchors
    assert t.mul("int", 4, 4) == pytest.approx(0.2 / 4)      # multipliers ∝ bits²
    assert t.mul("int", 64, 64) == pytest.approx(3.1 * 4)
    assert t.mul("int", 8, 2) == pytest.approx(0.2 / 4)      # ∝ a_bits · b_bits
    assert t.mac("int", 8, 8, 32) == pytest.approx(0.2 + 0.1)
    assert t.mul("fp", 64, 64) == pytest.approx(3.7 * 4)
    assert EnergyTable({"int8_mac": 0.25}).mac("int", 8, 8, 32) == pytest.approx(0.25)


def test_roofline_bound_switches_at_the_ridge_point():
    prof = devices.load("titan-x-maxwell")
    peak = 6605e9 * prof.data["efficiency"]["acdc"]
    bw = 336.5e9
    ridge = peak / bw
    below = [n for n in (2 ** i for i in range(2, 40)) if (4 + 5 * math.log2(n)) / 8 < ridge]
    above = [n for n in (2 ** i for i in range(2, 40)) if (4 + 5 * math.log2(n)) / 8 > ridge]
    for n, bound in ((below[-1], "memory"), (above[0], "compute")):
        row = one(Transform("acdc", kind="acdc", n=n, count=8192, bits=32, level="gddr5"), prof)
        assert row.bound == bound
        assert row.intensity == pytest.approx((4 + 5 * math.log2(n)) / 8)
        expected = max(row.ops / peak, row.bytes / bw)
        assert row.latency_s == pytest.approx(expected + 5e-6)


def test_acdc_memory_bound_on_titan_x_for_thesis_sizes():
    prof = devices.load("titan-x-maxwell")
    for lg in range(7, 15):
        row = one(Transform("a", kind="acdc", n=2 ** lg, count=8192, level="gddr5"), prof)
        assert row.bound == "memory" and row.intensity == pytest.approx((4 + 5 * lg) / 8)


def test_overhead_bound_for_tiny_ops_and_totals_are_sums():
    est = devices.estimate(Workload([Elementwise("a", n=1), Elementwise("b", n=2)]), "h100-sxm")
    assert [r.bound for r in est.rows] == ["overhead", "overhead"]
    assert est.latency_s == pytest.approx(sum(r.latency_s for r in est.rows))
    assert est.energy_j == pytest.approx(sum(r.energy_j for r in est.rows))
    r = est.rows[0]
    assert r.energy_j == pytest.approx(r.compute_j + r.memory_j + r.static_j)
    json.dumps(est.to_dict())


def test_sparsity_only_on_profiles_that_exploit_it(tmp_path):
    dense = MatMul("a", m=512, k=512, n=512, a_bits=8, b_bits=8, kind="int")
    sparse = MatMul("a", m=512, k=512, n=512, a_bits=8, b_bits=8, kind="int", sparsity=0.75)
    assert one(sparse, "stm32h743").latency_s == one(dense, "stm32h743").latency_s
    text = (devices.load("stm32h743").source and open(devices.load("stm32h743").source).read())
    path = tmp_path / "sparse-mcu.toml"
    path.write_text(text.replace('kind = "mcu"', 'kind = "mcu"\nexploits_sparsity = true'))
    r_dense, r_sparse = one(dense, str(path)), one(sparse, str(path))
    assert r_sparse.ops == pytest.approx(0.25 * r_dense.ops)
    assert r_sparse.compute_j == pytest.approx(0.25 * r_dense.compute_j)


def test_binary_and_shift_kinds():
    prof = devices.load("h100-sxm")
    binary = one(MatMul("b", m=64, k=64, n=64, a_bits=1, b_bits=1, acc_bits=16, kind="binary"), prof)
    assert binary.op_class == "int8"  # binary -> int4 -> int8 on the H100
    t = EnergyTable(scale=prof.energy_scale)  # the H100's 4 nm technology factor
    assert binary.compute_j == pytest.approx(64 ** 3 * 2 * t.add("int", 1) * 1e-12)
    shift = one(MatMul("s", m=64, k=64, n=64, a_bits=8, b_bits=4, acc_bits=32, kind="shift"), prof)
    assert shift.compute_j == pytest.approx(64 ** 3 * (t.add("int", 8) + t.add("int", 32)) * 1e-12)
    mult = one(MatMul("m", m=64, k=64, n=64, a_bits=8, b_bits=4, acc_bits=32, kind="int"), prof)
    assert shift.compute_j < mult.compute_j


def test_binary_matmul_on_mcu_runs_at_its_xnor_popcount_rate():
    prof = devices.load("stm32h743")
    shape = dict(m=64, k=256, n=64, acc_bits=16)
    bnn = one(MatMul("b", a_bits=1, b_bits=1, kind="binary", **shape), prof)
    int8 = one(MatMul("i", a_bits=8, b_bits=8, kind="int", **shape), prof)
    assert bnn.op_class == "binary" and int8.op_class == "int8"
    assert bnn.bound == "compute" and int8.bound == "compute"
    assert bnn.compute_s == pytest.approx(int8.compute_s * 11 / 32)


def test_weights_level_puts_weights_in_flash():
    prof = devices.load("stm32h743")
    ram = one(MatMul("fc", m=1, k=256, n=256, a_bits=8, b_bits=8, kind="int", weights_level="sram"), prof)
    flash = one(MatMul("fc", m=1, k=256, n=256, a_bits=8, b_bits=8, kind="int", weights_level="flash"), prof)
    default = one(MatMul("fc", m=1, k=256, n=256, a_bits=8, b_bits=8, kind="int"), prof)
    assert flash.levels == "sram+flash" and ram.levels == "sram"
    assert default == flash  # the profile's weights_memory = "flash"
    # flash: one 256-bit word per 3 AXI clocks at 200 MHz (RM0433 wait states), 2.13 GB/s (was an estimate
    # of 0.4 GB/s); flash traffic stalls the in-order core, so it adds to the compute time
    flash_s = 256 * 256 / 2.13e9
    assert flash.memory_s == pytest.approx((256 * 8 + 256 * 32) / 8 / 3.2e9 + flash_s)
    assert flash.latency_s == pytest.approx(max(flash.compute_s, flash.memory_s - flash_s) + flash_s
                                            + flash.overhead_s)
    assert one(Memory("m", level="dram", read_bytes=64), prof).levels == "sram"   # alias of main memory
    assert one(Memory("m", level="main", read_bytes=64), "h100-sxm").levels == "hbm3"
    with pytest.raises(ValueError, match="no memory level 'tape'"):
        one(Memory("m", level="tape", read_bytes=1), prof)


def test_cache_placement_by_working_set():
    prof = devices.load("h100-sxm")
    assert one(Memory("m", read_bytes=10), prof).levels == "hbm3"   # Memory ops: main memory
    assert one(Elementwise("e", n=1000), prof).levels == "l2"
    assert one(Elementwise("e", n=10 ** 8), prof).levels == "hbm3"


def test_estimate_argument_checks():
    with pytest.raises(TypeError, match="Workload"):
        devices.estimate([Memory("m")], "h100-sxm")
