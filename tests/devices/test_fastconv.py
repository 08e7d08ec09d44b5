"""``fastconv``: dense stride-1 convolutions larger than 1x1 (the shapes FFT / Winograd algorithms accept)
get a profile's ``fastconv`` efficiency / overhead, falling back to ``conv``."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

import devices
from devices import Conv2d, ProfileError, Workload

from ._profile_text import load_text


@pytest.mark.parametrize("kw, fast", [
    (dict(kh=3, kw=3), True),
    (dict(kh=5, kw=5), True),
    (dict(kh=1, kw=3), True),                      # a 1-D kernel larger than 1x1
    (dict(kh=1, kw=1), False),                     # 1x1: a plain GEMM, nothing for an FFT to save
    (dict(kh=3, kw=3, stride=2), False),
    (dict(kh=3, kw=3, stride_w=2), False),
    (dict(kh=3, kw=3, stride=2, stride_w=1), False),
    (dict(kh=3, kw=3, dilation=2), False),
    (dict(kh=3, kw=3, groups=2), False),
    (dict(kh=3, kw=3, groups=8), False),           # depthwise
])
def test_fastconv_shapes(kw, fast):
    assert Conv2d("c", batch=1, cin=8, cout=8, h=16, w=16, **kw).fastconv is fast


GPU = """
name = "g"
kind = "gpu"
static_w = 0.0
main_memory = "dram"
[peak]
fp32 = 1e12
[[memory]]
name = "dram"
capacity_bytes = 1e12
bandwidth_bytes_per_s = 1e18
energy_pj_per_byte = 10.0
"""


def _load(tmp_path: Path, extra: str) -> devices.Profile:
    return load_text(tmp_path, GPU + extra)


def _row(op, prof):
    return devices.estimate(Workload([op]), prof).rows[0]


_C3 = Conv2d("c3", batch=4, cin=64, cout=64, h=32, w=32, kh=3, kw=3)
_C1 = Conv2d("c1", batch=4, cin=64, cout=64, h=32, w=32, kh=1, kw=1)


def test_fastconv_efficiency_and_overhead_apply_to_fast_shapes_only(tmp_path):
    prof = _load(tmp_path, "[efficiency]\nconv = 0.5\nfastconv = 0.9\n[overhead_s]\nconv = 1e-6\n"
                           "fastconv = 2e-6\n")
    fast, slow = _row(_C3, prof), _row(_C1, prof)
    assert fast.compute_s == pytest.approx(_C3.ops / (1e12 * 0.9)) and fast.overhead_s == 2e-6
    assert slow.compute_s == pytest.approx(_C1.ops / (1e12 * 0.5)) and slow.overhead_s == 1e-6


def test_without_fastconv_every_convolution_costs_as_conv(tmp_path):
    prof = _load(tmp_path, "[efficiency]\nconv = 0.5\n[overhead_s]\nconv = 1e-6\n")
    for op in (_C3, _C1):
        row = _row(op, prof)
        assert row.compute_s == pytest.approx(op.ops / (1e12 * 0.5)) and row.overhead_s == 1e-6
    curves = _load(tmp_path, "[efficiency_curves]\nconv = [[1, 0.25], [1000, 0.5]]\n"
                             "fastconv_fp32 = [[1, 0.5], [1000, 1.0]]\n")
    t = math.log(64) / math.log(1000)              # size index min(m, k, n) = 64 for both, log-log
    assert _row(_C3, curves).compute_s == pytest.approx(_C3.ops / (1e12 * 0.5 * 2 ** t))
    assert _row(_C1, curves).compute_s == pytest.approx(_C1.ops / (1e12 * 0.25 * 2 ** t))


def test_fastconv_efficiency_is_validated(tmp_path):
    with pytest.raises(ProfileError, match="efficiency.fastconv"):
        _load(tmp_path, "[efficiency]\nfastconv = 1.5\n")


def test_titan_x_fastconv_is_the_vgg_a_fit_and_other_convs_the_gemm_estimate():
    prof = devices.load("titan-x-maxwell")
    eff = prof.data["efficiency"]
    assert eff["fastconv"] == pytest.approx(0.961) and eff["conv"] == eff["matmul"] == 0.7
    big3 = Conv2d("c3", batch=64, cin=256, cout=256, h=56, w=56, kh=3, kw=3)
    big1 = Conv2d("c1", batch=64, cin=256, cout=256, h=56, w=56, kh=1, kw=1)
    for op, e in ((big3, 0.961), (big1, 0.7)):
        m, _, n = op.gemm_dims
        assert _row(op, prof).compute_s == pytest.approx(
            op.ops / (6605e9 * e * prof.tile_utilisation(m, n)))
