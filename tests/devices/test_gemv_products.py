"""Matrix-vector (GEMV-shaped) products on GPU profiles: ``[gemm_tiles].gemv_max``.

A product with min(m, n) <= gemv_max (a batch-1 fully connected layer) runs as a GEMV kernel: no
tile / wave quantization, so it is memory bound (the weights are streamed once). Every other product
keeps the tile model's estimate bit for bit.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import devices
from devices import Conv2d, MatMul, ProfileError, Workload

from ._profile_text import load_text

GPUS = ("h100-sxm", "jetson-orin-nano", "jetson-orin-nx", "titan-x-maxwell")
_PROFILES = {name: devices.load(name) for name in GPUS}
#: (a_bits, b_bits, acc_bits, kind): fp32 and int8 products
_NUMBERS = ((32, 32, 32, "float"), (8, 8, 32, "int"))


def _without_gemv(prof: devices.Profile) -> devices.Profile:
    """``prof`` with the GEMV rule off (gemv_max = 0): every product tiled, as before the rule."""
    return replace(prof, data={**prof.data, "gemm_tiles": {**prof.data["gemm_tiles"], "gemv_max": 0}})


def _row(op, prof):
    return devices.estimate(Workload([op]), prof).rows[0]


def _bandwidths(prof: devices.Profile) -> list[float]:
    """Achievable bytes/s of every memory level (GPU profiles have no measured bandwidth curves)."""
    return [prof.bandwidth(lv, 0.0, placed=False) for lv in prof.data["memory"]]


def test_shipped_gpu_profiles_run_m1_products_as_gemv():
    for prof in _PROFILES.values():
        assert prof.data["gemm_tiles"]["gemv_max"] == 1
        assert prof.tile_utilisation(1, 4096) == 1.0 and prof.tile_utilisation(4096, 1) == 1.0
        assert prof.tile_utilisation(2, 4096) < 0.1  # m = 2 is still tiled


@settings(max_examples=120, deadline=None)
@given(name=st.sampled_from(GPUS), k=st.integers(64, 16384), n=st.integers(64, 16384),
       numbers=st.sampled_from(_NUMBERS), transpose=st.booleans())
def test_m1_product_costs_the_weight_stream(name, k, n, numbers, transpose):
    """An m = 1 product is memory bound: no faster than reading its weights at the fastest level's
    bandwidth, no slower than streaming all its bytes at main memory's (n = 1: the same with the
    activation matrix as the large operand)."""
    prof = _PROFILES[name]
    a_bits, b_bits, acc_bits, kind = numbers
    m, n = (n, 1) if transpose else (1, n)
    op = MatMul("fc", m=m, k=k, n=n, a_bits=a_bits, b_bits=b_bits, acc_bits=acc_bits, kind=kind)
    row = _row(op, prof)
    overhead = prof.overhead("matmul", "matmul")
    matrix = k * n * b_bits / 8 if m == 1 else m * k * a_bits / 8
    total = (m * k * a_bits + k * n * b_bits + m * n * acc_bits) / 8
    assert row.compute_s <= row.memory_s and row.bound in ("memory", "overhead")  # small ones: the launch
    assert row.latency_s == pytest.approx(row.memory_s + overhead, rel=1e-12)
    assert matrix / max(_bandwidths(prof)) <= row.memory_s * (1 + 1e-12)
    assert row.memory_s <= total / min(_bandwidths(prof)) * (1 + 1e-12)


@pytest.mark.parametrize("name, k, n, bandwidth", [
    ("h100-sxm", 8192, 8192, 3.35e12 * 0.9),      # 268 MB of fp32 weights: beyond the 50 MB L2, from HBM3
    ("titan-x-maxwell", 4096, 4096, 336.5e9),     # 67 MB: beyond the 3 MB L2, from GDDR5 (efficiency 1)
])
def test_m1_product_hand_values(name, k, n, bandwidth):
    prof = _PROFILES[name]
    row = _row(MatMul("fc", m=1, k=k, n=n), prof)
    nbytes = 4 * (k * n + k + n)                  # fp32 weights, input vector, output vector
    assert row.latency_s == pytest.approx(nbytes / bandwidth + prof.overhead("matmul", "matmul"), rel=1e-12)
    tiled = _row(MatMul("fc", m=1, k=k, n=n), _without_gemv(prof))
    assert tiled.bound == "compute" and tiled.latency_s > 1.5 * row.latency_s  # what the tile model said


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(GPUS), m=st.integers(2, 10 ** 5), k=st.integers(1, 10 ** 4),
       n=st.integers(2, 10 ** 4), numbers=st.sampled_from(_NUMBERS))
def test_products_with_both_dims_above_gemv_max_are_unchanged(name, m, k, n, numbers):
    """Bit for bit the estimate of the tile model without the GEMV rule."""
    prof = _PROFILES[name]
    a_bits, b_bits, acc_bits, kind = numbers
    op = MatMul("mm", m=m, k=k, n=n, a_bits=a_bits, b_bits=b_bits, acc_bits=acc_bits, kind=kind)
    assert _row(op, prof) == _row(op, _without_gemv(prof))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(GPUS), batch=st.integers(1, 8), cin=st.integers(1, 64), cout=st.integers(2, 64),
       hw=st.integers(2, 32), k=st.sampled_from((1, 3, 5)), stride=st.integers(1, 2))
def test_convolutions_with_several_output_pixels_are_unchanged(name, batch, cin, cout, hw, k, stride):
    conv = Conv2d("c", batch=batch, cin=cin, cout=cout, h=hw + k, w=hw + k, kh=k, kw=k, stride=stride)
    if min(conv.gemm_dims[0], conv.gemm_dims[2]) < 2:
        return
    prof = _PROFILES[name]
    assert _row(conv, prof) == _row(conv, _without_gemv(prof))


def _load(tmp_path: Path, tiles: str) -> devices.Profile:
    return load_text(tmp_path,
                     'name = "g"\nkind = "gpu"\nstatic_w = 0.0\nmain_memory = "dram"\n[peak]\nfp32 = 1e12\n'
                     '[[memory]]\nname = "dram"\ncapacity_bytes = 1e12\nbandwidth_bytes_per_s = 1e12\n'
                     f'energy_pj_per_byte = 10.0\n[gemm_tiles]\nshapes = [[64, 64]]\nunits = 4\n{tiles}')


def test_gemv_max_defaults_to_zero_and_is_validated(tmp_path):
    prof = _load(tmp_path, "")
    assert prof.data["gemm_tiles"]["gemv_max"] == 0
    assert prof.tile_utilisation(1, 64) == pytest.approx(1 / (4 * 64))  # tiled: 1 of 64 rows of one tile
    assert _load(tmp_path, "gemv_max = 8\n").tile_utilisation(8, 64) == 1.0
    for bad in ("gemv_max = -1\n", "gemv_max = 1.5\n", "gemv_max = true\n"):
        with pytest.raises(ProfileError, match="gemm_tiles.gemv_max"):
            _load(tmp_path, bad)
