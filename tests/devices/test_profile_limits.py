"""Profiles reject infinite figures and fractional byte counts; ops reject counts beyond float64."""
from __future__ import annotations

import math
import re

import pytest

import devices
from devices import MatMul, ProfileError, Workload

from .test_schema import MINIMAL, write


@pytest.mark.parametrize("old,new,key", [
    ("static_w = 1.0", "static_w = inf", "static_w"),
    ("bandwidth_bytes_per_s = 1e9", "bandwidth_bytes_per_s = inf", "memory[0].bandwidth_bytes_per_s"),
    ("capacity_bytes = 1e9", "capacity_bytes = inf", "memory[0].capacity_bytes"),
    ("fp32 = 1e9", "fp32 = inf", "peak.fp32"),
    ("energy_pj_per_byte = 100.0", "energy_pj_per_byte = nan", "memory[0].energy_pj_per_byte"),
    ("capacity_bytes = 1e9", "capacity_bytes = 1000.5", "memory[0].capacity_bytes"),
])
def test_infinite_or_fractional_figures_are_profile_errors(tmp_path, old, new, key):
    path = write(tmp_path, MINIMAL.replace(old, new))
    with pytest.raises(ProfileError, match=re.escape(f"key '{key}'")) as info:
        devices.load(path)
    assert str(path.resolve()) in str(info.value)


def test_infinite_curve_point_is_a_profile_error(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[efficiency_curves]\nmatmul_fp32 = [[1e3, 0.1], [inf, 0.5]]\n")
    with pytest.raises(ProfileError, match="finite positive"):
        devices.load(path)


def test_whole_capacity_written_as_a_float_loads(tmp_path):
    assert devices.load(write(tmp_path, MINIMAL.replace("capacity_bytes = 1e9", "capacity_bytes = 1.5e9")))


def test_counts_beyond_float64_are_named_errors():
    with pytest.raises(ValueError, match=r"MatMul 'mm': m must be in 1\.\.2\*\*53 .* got 1e\+200"):
        MatMul("mm", m=10**200, k=4, n=4)
    top = 2**53  # the largest accepted: every product the cost model forms stays finite
    est = devices.estimate(Workload([MatMul("mm", m=top, k=top, n=top)]), devices.load("h100-sxm"))
    assert math.isfinite(est.latency_s) and math.isfinite(est.energy_j)
