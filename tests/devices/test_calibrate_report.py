"""calibrate (quick setting), time_call, and the Estimate outputs (markdown, CSV, PNG)."""
from __future__ import annotations

import csv
import json

import pytest

import devices
from devices import Elementwise, MatMul, Transform, Workload


def test_calibrate_quick_writes_a_loadable_profile(tmp_path):
    out = tmp_path / "sub" / "local-cpu.toml"
    prof = devices.calibrate(out=out, quick=True)
    assert out.is_file() and prof.name == "local-cpu" and prof.kind == "cpu"
    assert prof.data["peak"]["fp32"] > 0 and prof.data["peak"]["fp64"] > 0
    assert prof.data["bandwidth_curve"] and "matmul_fp32" in prof.data["efficiency_curves"]
    assert prof.data["read_bandwidth_curve"] and prof.data["write_bandwidth_curve"]
    curves = prof.data["efficiency_curves"]
    assert any(k.startswith("dct_fp64@") and k != "dct_fp64@batched" for k in curves)  # per cache level
    assert "elementwise_fp32@max" in curves
    for (_, r), (_, w), in zip(prof.data["read_bandwidth_curve"], prof.data["write_bandwidth_curve"]):
        assert w > 0 and r > 0
    assert devices.load(str(out)).data == prof.data
    wl = Workload([MatMul("mm", m=64, k=64, n=64), Elementwise("e", n=10 ** 5),
                   Transform("f", kind="fft", n=4096)])
    est = devices.estimate(wl, prof)
    assert all(r.latency_s > 0 for r in est.rows)
    ws_bytes = [x for x, _ in prof.data["bandwidth_curve"]]
    assert ws_bytes == sorted(ws_bytes)


def test_time_call_counts_calls_and_checks_arguments():
    calls = []
    t = devices.time_call(lambda: calls.append(1), min_time=1e-4, repeat=3, clock="cpu")
    assert t > 0 and len(calls) >= 4
    with pytest.raises(ValueError, match="clock"):
        devices.time_call(lambda: None, clock="sundial")
    with pytest.raises(ValueError, match="repeat"):
        devices.time_call(lambda: None, repeat=0)


def test_outputs_markdown_csv_png(tmp_path):
    wl = Workload([MatMul("fc1", m=1, k=784, n=256, a_bits=8, b_bits=8, acc_bits=32, kind="int"),
                   Elementwise("relu1", n=256, bits=8), Transform("dct1", kind="dct", n=1024)])
    est = devices.estimate(wl, "jetson-orin-nano")
    md = est.to_markdown()
    assert md.count("\n| ") == 5 and "fc1" in md and "**total**" in md
    path = est.to_csv(tmp_path / "out" / "est.csv")
    rows = list(csv.DictReader(open(path)))
    assert [r["name"] for r in rows] == ["fc1", "relu1", "dct1"]
    assert float(rows[0]["latency_s"]) == pytest.approx(est.rows[0].latency_s)
    png = est.plot_roofline(tmp_path / "roof.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = json.loads(json.dumps(est.to_dict()))
    assert d["profile"] == "jetson-orin-nano" and len(d["rows"]) == 3
    assert set(d["rows"][0]) >= {"name", "latency_s", "energy_j", "bound", "utilisation", "part"}


@pytest.mark.parametrize("shape,dtype",
                         [(1, "float32"), ((3, 5), "float64"), ((2, 7), "complex64"), (0, "float32")])
def test_aligned_buffers(shape, dtype):
    import numpy as np

    a = devices.aligned_empty(shape, dtype)
    assert (a.size == 0 or a.ctypes.data % 64 == 0) and a.flags.c_contiguous and a.dtype == np.dtype(dtype)
    assert a.shape == ((shape,) if isinstance(shape, int) else shape)
    f = devices.aligned_full(shape, 2.5, dtype)
    assert np.all(f == 2.5)


def test_working_set_grid_refines_across_the_last_level_cache():
    from devices._calibrate import _working_sets
    llc = 32 << 20
    grid = _working_sets(4 << 10, 2 << 30, 2, llc)
    assert grid == sorted(set(grid)) and grid[0] == 4 << 10 and grid[-1] == 2 << 30
    ratios = [b / a for a, b in zip(grid, grid[1:])]
    near = [r for a, r in zip(grid, ratios) if llc / 2 <= a < 4 * llc]
    assert near and all(r == pytest.approx(2 ** 0.5, rel=1e-3) for r in near)
    assert all(r == 2 for a, r in zip(grid, ratios) if a < llc / 2 or a >= 4 * llc)
