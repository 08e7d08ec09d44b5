"""Grouped / depthwise convolutions, read / write bandwidths, weight and overflow placement, and the
technology scaling of energies."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import devices
from devices import Conv2d, Elementwise, MatMul, ProfileError, Workload
from devices._energy import HOROWITZ_PJ, TECH_NODES_NM, tech_energy_scale

BASE = """
name = "t"
kind = "cpu"
static_w = 0.0
main_memory = "dram"
[peak]
fp32 = 1e12
[[memory]]
name = "l2"
capacity_bytes = 1e6
bandwidth_bytes_per_s = 1e11
energy_pj_per_byte = 10.0
cache = true
[[memory]]
name = "dram"
capacity_bytes = 1e9
bandwidth_bytes_per_s = 1e10
energy_pj_per_byte = 100.0
"""


def _profile(tmp_path: Path, extra_top: str = "", extra: str = "") -> devices.Profile:
    path = tmp_path / f"p{len(list(tmp_path.iterdir()))}.toml"
    head, rest = BASE.split("[peak]", 1)
    path.write_text(head + extra_top + "\n[peak]" + rest + extra)
    return devices.load(str(path))


def _one(op, prof):
    return devices.estimate(Workload([op]), prof).rows[0]


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), d=st.integers(1, 3),
       pads=st.tuples(*[st.integers(0, 3)] * 4), groups=st.sampled_from([1, 2, 3]))
def test_conv_geometry_against_a_sliding_window_reference(h, w, kh, kw, sh, sw, d, pads, groups):
    """h_out / w_out / MACs equal those of an explicit sliding window over the padded plane."""
    ph, pw = h + pads[0] + pads[2], w + pads[1] + pads[3]
    rows = [r for r in range(ph) if r + d * (kh - 1) < ph][::sh]
    cols = [c for c in range(pw) if c + d * (kw - 1) < pw][::sw]
    kwargs = {"batch": 2, "cin": 3 * groups, "cout": 2 * groups, "h": h, "w": w, "kh": kh, "kw": kw,
              "stride": sh, "stride_w": sw, "dilation": d, "pads": pads, "groups": groups}
    if not rows or not cols:
        with pytest.raises(ValueError, match="larger than padded input"):
            Conv2d("c", **kwargs)
        return
    op = Conv2d("c", **kwargs)
    assert (op.h_out, op.w_out) == (len(rows), len(cols))
    taps = sum(1 for _ in rows for _ in cols) * kh * kw * 3  # per output channel: window taps x cin/groups
    assert op.macs == 2 * (2 * groups) * taps
    assert op.weight_elements == 2 * groups * 3 * kh * kw


def test_conv_group_checks_and_depthwise_flag():
    with pytest.raises(ValueError, match="divisible by groups"):
        Conv2d("c", batch=1, cin=6, cout=4, h=8, w=8, kh=3, kw=3, groups=4)
    with pytest.raises(ValueError, match="pads"):
        Conv2d("c", batch=1, cin=4, cout=4, h=8, w=8, kh=3, kw=3, pads=(1, 1))
    dw = Conv2d("c", batch=1, cin=8, cout=16, h=8, w=8, kh=3, kw=3, groups=8)
    assert dw.depthwise and dw.gemm_dims == (64, 9, 2)
    assert not Conv2d("c", batch=1, cin=8, cout=8, h=8, w=8, kh=3, kw=3, groups=4).depthwise


def test_depthwise_uses_its_own_efficiency(tmp_path):
    prof = _profile(tmp_path, extra="[efficiency]\nconv = 0.8\ndepthwise = 0.1\n")
    dw = Conv2d("dw", batch=1, cin=64, cout=64, h=32, w=32, kh=3, kw=3, groups=64)
    full = Conv2d("c", batch=1, cin=64, cout=64, h=32, w=32, kh=3, kw=3)
    assert _one(dw, prof).compute_s == pytest.approx(dw.ops / (1e12 * 0.1))
    assert _one(full, prof).compute_s == pytest.approx(full.ops / (1e12 * 0.8))
    assert (_one(dw, "stm32h7a3").compute_s
            > _one(dw, "stm32h7a3").ops / devices.load("stm32h7a3").peak("conv", "int32")[1])


def test_read_and_write_bandwidth_curves(tmp_path):
    curves = ("read_bandwidth_curve = [[1e3, 4e10], [1e9, 2e10]]\n"
              "write_bandwidth_curve = [[1e3, 1e10], [1e9, 5e9]]\n")
    prof = _profile(tmp_path, extra_top=curves)
    ew = Elementwise("e", n=1000, bits=32, inputs=2, ops_per_element=0)
    loads, stores = 8000, 4000
    bw_r = math.exp(np.interp(math.log(12000), [math.log(1e3), math.log(1e9)],
                              [math.log(4e10), math.log(2e10)]))
    bw_w = math.exp(np.interp(math.log(12000), [math.log(1e3), math.log(1e9)],
                              [math.log(1e10), math.log(5e9)]))
    assert _one(ew, prof).memory_s == pytest.approx(loads / bw_r + stores / bw_w)
    gemv = MatMul("g", m=1, k=1000, n=1000)  # almost all loads: runs at the read bandwidth
    row = _one(gemv, prof)
    assert row.memory_s < sum(t.nbytes for t in gemv.traffic()) / 1e10
    with pytest.raises(ProfileError, match="together"):
        _profile(tmp_path, extra_top="read_bandwidth_curve = [[1e3, 4e10]]\n")


def test_weights_memory_and_overflow_placement(tmp_path):
    levels = ("\n[[memory]]\nname = \"flash\"\ncapacity_bytes = 2e6\nbandwidth_bytes_per_s = 1e9\n"
              "energy_pj_per_byte = 50.0\n")
    prof = _profile(tmp_path, extra_top='weights_memory = "flash"\noverflow_memory = "flash"\n', extra=levels)
    fc = _one(MatMul("fc", m=1, k=512, n=512, a_bits=8, b_bits=8, kind="int"), prof)
    assert fc.levels == "l2+flash"  # activations placed by their own working set, weights in flash
    assert prof.place(2e9)["name"] == "flash" and prof.place(5e8)["name"] == "dram"
    with pytest.raises(ProfileError, match="weights_memory"):
        _profile(tmp_path, extra_top='weights_memory = "tape"\n')


def test_tech_energy_scale_rule():
    assert tech_energy_scale(45, 0.9) == pytest.approx(1.0)
    factors = [tech_energy_scale(n, 0.8) for n in TECH_NODES_NM]
    assert all(a > b for a, b in itertools.pairwise(factors))  # smaller node, less energy per op
    # Stillmaker & Baas: 45 nm -> 7 nm at the same 0.8 V: E(7) / E(45) from the tabulated fits
    def e(a, b, c, v):
        return a * v * v + b * v + c
    assert tech_energy_scale(7, 0.8) / tech_energy_scale(45, 0.8) == pytest.approx(
        e(0.1776, -0.09097, 0.02447, 0.8) / e(1.103, -0.362, 0.2767, 0.8))
    assert tech_energy_scale(4, 0.75) == pytest.approx(tech_energy_scale(7, 0.75) * math.sqrt(4 / 7))
    assert tech_energy_scale(40, 1.2) > tech_energy_scale(40, 0.9)
    with pytest.raises(ValueError):
        tech_energy_scale(0, 0.9)


def test_profiles_scale_energy_and_may_override(tmp_path):
    h100, mcu = devices.load("h100-sxm"), devices.load("stm32h743")
    assert h100.energy.add("int", 8) == pytest.approx(HOROWITZ_PJ["int8_add"] * h100.energy_scale)
    assert h100.energy_scale < 0.1 and mcu.energy_scale > 1
    fixed = _profile(tmp_path, extra_top="process_nm = 7.0\nenergy_scale = 0.5\n",
                     extra="[energy_pj]\nint8_mul = 0.3\n")
    assert fixed.energy_scale == 0.5 and fixed.energy.mul("int", 8, 8) == 0.3  # given anchors are not scaled
    assert fixed.energy.add("int", 8) == pytest.approx(0.5 * HOROWITZ_PJ["int8_add"])
    assert (fixed.level_energy_pj(fixed.level("l2")) == 5.0
            and fixed.level_energy_pj(fixed.level("dram")) == 100.0)


def test_dynamic_energy_depends_on_the_device():
    """The issue's example: the same MLP at fixed8 no longer costs the same dynamic energy everywhere."""
    from hwsim import Precision, build_model, workload
    wl = workload(build_model("mlp:784-256-256-10", input_shape=(784,)), Precision.from_flags("fixed8"))
    dyn = {}
    for name in ("h100-sxm", "jetson-orin-nano", "stm32h743", "titan-x-maxwell"):
        est = devices.estimate(wl, name)
        dyn[name] = sum(r.compute_j + r.memory_j for r in est.rows)
    assert len({round(v, 15) for v in dyn.values()}) == 4
    assert dyn["h100-sxm"] < dyn["titan-x-maxwell"] and dyn["jetson-orin-nano"] < dyn["stm32h743"]


def test_elementwise_max_has_its_own_rate(tmp_path):
    prof = _profile(tmp_path, extra='[efficiency_curves]\nelementwise_fp32 = [[1.0, 0.5]]\n'
                                   '"elementwise_fp32@max" = [[1.0, 0.1]]\n')
    add = _one(Elementwise("a", n=10 ** 6, bits=32, ops_per_element=1), prof)
    relu = _one(Elementwise("r", n=10 ** 6, bits=32, ops_per_element=1, op="max"), prof)
    assert (add.compute_s == pytest.approx(1e6 / (1e12 * 0.5))
            and relu.compute_s == pytest.approx(5 * add.compute_s))
    assert relu.compute_j == add.compute_j  # a compare costs an add's energy
