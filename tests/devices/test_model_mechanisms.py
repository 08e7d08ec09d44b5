"""GEMM tile / wave quantization, flash stalls on an in-order core, and the fused residual read of a
product: hand-computed values on small profiles, and properties."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import devices
from devices import Conv2d, MatMul, ProfileError, Workload

from ._profile_text import load_text

GPU = """
name = "g"
kind = "gpu"
static_w = 0.0
main_memory = "dram"
[peak]
fp32 = 1e12
[efficiency]
matmul = 0.5
conv = 0.5
depthwise = 0.5
[[memory]]
name = "dram"
capacity_bytes = 1e12
bandwidth_bytes_per_s = 1e15
energy_pj_per_byte = 10.0
"""
TILES = """
[gemm_tiles]
shapes = [[128, 128], [64, 64]]
units = 4
"""
MCU = """
name = "m"
kind = "mcu"
static_w = 0.0
main_memory = "sram"
weights_memory = "flash"
[peak]
int8 = 1e9
[[memory]]
name = "sram"
capacity_bytes = 1e6
bandwidth_bytes_per_s = 1e9
energy_pj_per_byte = 1.0
[[memory]]
name = "flash"
capacity_bytes = 2e6
bandwidth_bytes_per_s = 1e8
energy_pj_per_byte = 5.0
"""



def _one(op, prof):
    return devices.estimate(Workload([op]), prof).rows[0]


@pytest.mark.parametrize("m, n, groups, util", [
    (256, 256, 1, 1.0),                       # 4 tiles of 128x128: one full wave of 4 units
    (100, 64, 1, 6400 / (4 * 64 * 64)),       # 64x64: 2 tiles, one wave of 4 (128x128: 6400 / 4·128²)
    (640, 128, 1, 1.0),                       # 128x128: 5 tiles in 2 waves (0.625); 64x64: 20 tiles, 5 waves
    (64, 64, 3, 3 * 64 * 64 / (4 * 64 * 64)),  # 3 groups of one 64x64 tile: one wave of 4, 3 used
    (1, 1, 1, 1 / (4 * 64 * 64)),
])
def test_tile_utilisation_hand_values(tmp_path, m, n, groups, util):
    prof = load_text(tmp_path, GPU + TILES)
    assert prof.tile_utilisation(m, n, groups) == pytest.approx(util)
    assert load_text(tmp_path, GPU).tile_utilisation(m, n, groups) == 1.0  # no [gemm_tiles]: no quantization


_H100 = devices.load("h100-sxm")


@settings(max_examples=200, deadline=None)
@given(m=st.integers(1, 10 ** 6), n=st.integers(1, 10 ** 4), groups=st.integers(1, 64))
def test_tile_utilisation_in_unit_interval(m, n, groups):
    assert 0.0 < _H100.tile_utilisation(m, n, groups) <= 1.0


@settings(max_examples=200, deadline=None)
@given(shape=st.sampled_from(_H100.data["gemm_tiles"]["shapes"]), a=st.integers(1, 40), b=st.integers(1, 40),
       waves=st.integers(1, 5))
def test_tile_utilisation_is_one_for_whole_tiles_in_whole_waves(shape, a, b, waves):
    """m, n multiples of a tile shape and a tile count that fills whole waves of 132 SMs: no waste."""
    units = _H100.data["gemm_tiles"]["units"]
    tm, tn = shape
    groups = units * waves // math.gcd(units * waves, a * b)  # groups · a · b is a multiple of units · waves
    assert _H100.tile_utilisation(a * tm, b * tn, groups) == pytest.approx(1.0)


def test_tile_utilisation_scales_product_compute_time_only(tmp_path):
    prof = load_text(tmp_path, GPU + TILES)
    mm = _one(MatMul("mm", m=100, k=512, n=64), prof)
    assert mm.compute_s == pytest.approx(mm.ops / (1e12 * 0.5 * prof.tile_utilisation(100, 64)))
    conv = Conv2d("c", batch=1, cin=8, cout=8, h=10, w=10, kh=3, kw=3, groups=2)
    row = _one(conv, prof)
    m, _, n = conv.gemm_dims
    assert row.compute_s == pytest.approx(conv.ops / (1e12 * 0.5 * prof.tile_utilisation(m, n, 2)))
    dw = Conv2d("d", batch=1, cin=8, cout=8, h=10, w=10, kh=3, kw=3, groups=8)
    assert _one(dw, prof).compute_s == pytest.approx(dw.ops / (1e12 * 0.5))  # depthwise: not a GEMM


def test_flash_stalls_add_to_compute_time(tmp_path):
    op = MatMul("fc", m=1, k=100, n=100, a_bits=8, b_bits=8, acc_bits=32, kind="int")
    compute = 2 * 100 * 100 / 1e9                 # int8 peak 1e9 ops/s, efficiency 1
    act = (100 * 8 + 100 * 32) / 8 / 1e9          # activations in SRAM
    weights = 100 * 100 / 1e8                      # int8 weights from flash
    overlapped = _one(op, load_text(tmp_path, MCU))
    assert overlapped.latency_s == pytest.approx(max(compute, act + weights))
    stalls = _one(op, load_text(tmp_path, MCU + "stalls = true\n"))  # appended to the flash level
    assert stalls.memory_s == pytest.approx(act + weights) and stalls.compute_s == pytest.approx(compute)
    assert stalls.latency_s == pytest.approx(max(compute, act) + weights)
    assert stalls.bound == "memory"


def test_shipped_mcu_flash_stalls_and_gpu_tiles():
    for name in ("stm32h743", "stm32h7a3"):
        assert devices.load(name).level("flash")["stalls"] is True
    for name in ("h100-sxm", "jetson-orin-nano", "jetson-orin-nx", "titan-x-maxwell"):
        assert devices.load(name).data["gemm_tiles"]["units"] > 0
    assert devices.load("xeon-8380").tile_utilisation(3, 5) == 1.0


@pytest.mark.parametrize("text, key", [
    ("[gemm_tiles]\nshapes = [[128, 0]]\nunits = 4\n", "gemm_tiles.shapes"),
    ("[gemm_tiles]\nshapes = [[128, 128, 1]]\nunits = 4\n", "gemm_tiles.shapes"),
    ("[gemm_tiles]\nshapes = []\nunits = 4\n", "gemm_tiles.shapes"),
    ("[gemm_tiles]\nshapes = [[64, 64]]\n", "gemm_tiles.units"),
    ("[gemm_tiles]\nshapes = [[64, 64]]\nunits = 2.5\n", "gemm_tiles.units"),
    ("[gemm_tiles]\nshapes = [[64, 64]]\nunits = 4\nwaves = 2\n", "gemm_tiles.waves"),
])
def test_gemm_tiles_schema_errors(tmp_path, text, key):
    with pytest.raises(ProfileError, match=key.replace(".", r"\.")):
        load_text(tmp_path, GPU + text)


def test_stalls_must_be_a_bool(tmp_path):
    with pytest.raises(ProfileError, match=r"memory\[1\]\.stalls"):
        load_text(tmp_path, MCU + "stalls = 1\n")


def test_fused_residual_read_in_product_traffic():
    plain = MatMul("a", m=4, k=3, n=5)
    fused = MatMul("b", m=4, k=3, n=5, residual_bits=8)
    assert fused.traffic()[0].nbytes - plain.traffic()[0].nbytes == 4 * 5 * 8 / 8  # one read of the skip
    assert fused.traffic()[0].written == plain.traffic()[0].written and fused.ops == plain.ops
    conv = Conv2d("c", batch=2, cin=3, cout=4, h=5, w=5, kh=3, kw=3, residual_bits=32)
    base = Conv2d("c", batch=2, cin=3, cout=4, h=5, w=5, kh=3, kw=3)
    assert conv.traffic()[0].nbytes - base.traffic()[0].nbytes == 2 * 4 * 5 * 5 * 4
    with pytest.raises(ValueError, match="residual_bits must be in 0..64"):
        MatMul("x", m=1, k=1, n=1, residual_bits=65)
