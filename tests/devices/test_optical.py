"""4f optical model: passes, ± split, blocking, host fallback, noise parameters (hand-computed)."""
from __future__ import annotations

import math

import pytest

import devices
from devices import Conv2d, Elementwise, MatMul, Workload

# optical4f: modulator 1024x768 @ 1.9 kHz 8-bit, mask 1920x1080 @ 32 Hz, camera 2560x2160 @ 100 fps,
# exposure 1e-4 s, DAC 1 pJ @ 8 bit, ADC 64 pJ, laser 10 mW / 0.2, static 5 W.


@pytest.fixture(scope="module")
def prof():
    return devices.load("optical4f")


def test_small_conv_one_pass_with_four_way_sign_split(prof):
    op = Conv2d("c", batch=1, cin=1, cout=8, h=28, w=28, kh=5, kw=5, a_bits=8, b_bits=8, acc_bits=32)
    plan = prof.optical.plan(op)
    # tile 32x32: modulator holds 32*24 = 768 tiles (mask 60*33, camera 80*67)
    assert plan.tiles_per_pass == 768
    assert plan.sign_split == 4 and plan.planes == 8 * 4
    assert plan.passes == 1 and plan.mask_loads == 1 and plan.bit_slices == 1
    assert plan.dac_conversions == 32 * 28 * 28 and plan.adc_conversions == 32 * 28 * 28
    row = devices.estimate(Workload([op]), prof).rows[0]
    assert row.part == "optical" and row.bound == "io"
    assert row.latency_s == pytest.approx(1 / 100 + 1 / 32)
    photon_j = 6.62607015e-34 * 299792458.0 / 532e-9
    laser_j = 32 * 784 * 30000.0 * photon_j / 0.5 / 0.2   # photons per lit pixel / transmission / wall plug
    energy = 32 * 784 * (1.0 + 64.0) * 1e-12 + laser_j + 5.0 * row.latency_s
    assert row.energy_j == pytest.approx(energy)


def test_unsigned_inputs_halve_the_planes(prof):
    op = Conv2d("c", batch=1, cin=1, cout=8, h=28, w=28, kh=5, kw=5, a_bits=8, b_bits=8, a_signed=False)
    assert prof.optical.plan(op).sign_split == 2
    both = Conv2d("c", batch=1, cin=1, cout=8, h=28, w=28, kh=5, kw=5, a_bits=8, b_bits=8,
                  a_signed=False, b_signed=False)
    assert prof.optical.plan(both).planes == 8


def test_many_channels_need_many_passes_mask_loads_and_bit_slices(prof):
    op = Conv2d("c", batch=1, cin=64, cout=64, h=28, w=28, kh=5, kw=5, a_bits=16, b_bits=8)
    plan = prof.optical.plan(op)
    assert plan.planes == 64 * 64 * 4
    assert plan.bit_slices == 2                         # 16-bit activations on an 8-bit modulator
    assert plan.passes == math.ceil(16384 / 768) * 2    # 22 passes per slice
    assert plan.mask_loads == math.ceil(64 * 64 * 2 / (60 * 33))
    row = devices.estimate(Workload([op]), prof).rows[0]
    assert row.latency_s == pytest.approx(44 / 100 + plan.mask_loads / 32)


def test_large_plane_is_blocked(prof):
    op = Conv2d("big", batch=1, cin=1, cout=1, h=2000, w=2000, kh=3, kw=3, a_bits=8, b_bits=8)
    plan = prof.optical.plan(op)
    # blocks of 1022 x 766 -> 2 x 3 blocks, one 1024x768 tile per pass
    assert plan.tiles_per_pass == 1 and plan.planes == 6 * 4 and plan.passes == 24


def test_circulant_matmul_runs_optically(prof):
    op = MatMul("circ", m=4, k=4096, n=4096, a_bits=8, b_bits=8, structure="circulant")
    plan = prof.optical.plan(op)
    assert plan.tiles_per_pass == (1024 * 768) // 4096
    assert plan.planes == 16 and plan.passes == 1 and plan.mask_loads == 1


def test_other_ops_fall_back_to_the_host(prof):
    wl = Workload([MatMul("dense", m=4, k=64, n=64), Elementwise("relu", n=100),
                   Conv2d("huge_kernel", batch=1, cin=1, cout=1, h=900, w=900, kh=800, kw=3)])
    est = devices.estimate(wl, prof)
    assert [r.part for r in est.rows] == ["host:xeon-8380"] * 3
    host = devices.estimate(wl, "xeon-8380")
    assert [r.latency_s for r in est.rows] == [r.latency_s for r in host.rows]


def test_passive_mask_sends_multi_pattern_ops_to_host(tmp_path, prof):
    text = open(prof.source).read().replace("rate_hz = 32.0", "rate_hz = 0.0")
    path = tmp_path / "passive.toml"
    path.write_text(text)
    passive = devices.load(str(path))
    small = Conv2d("s", batch=1, cin=1, cout=2, h=28, w=28, kh=5, kw=5, a_bits=8, b_bits=8)
    many = Conv2d("m", batch=1, cin=64, cout=64, h=28, w=28, kh=5, kw=5, a_bits=8, b_bits=8)
    rows = devices.estimate(Workload([small, many]), passive).rows
    assert [r.part for r in rows] == ["optical", "host:xeon-8380"]
    assert rows[0].latency_s == pytest.approx(1 / 100)  # no mask reload time


def test_binary_inputs_use_the_binary_pattern_rate(prof):
    op = Conv2d("b", batch=1, cin=1, cout=1, h=28, w=28, kh=3, kw=3, a_bits=1, b_bits=1, kind="binary")
    assert prof.optical.plan(op).t_pass_s == pytest.approx(max(1 / 32552, 1 / 100, 1e-4))


def test_noise_model_parameters(prof):
    noise = prof.optical.noise_model()
    assert (noise.dac_bits, noise.adc_bits, noise.read_noise_e) == (8, 12, 2.0)
    signal = min(30000 * 0.8, 30000)
    assert noise.signal_e == signal
    assert noise.relative_sigma == pytest.approx(math.sqrt(signal + 4) / signal)
    assert noise.effective_bits == pytest.approx(math.log2(signal / math.sqrt(signal + 4)))
    assert devices.OpticalNoise(8, 4, 1e9, 0.0).effective_bits == 4.0


def test_settings_set_laser_and_conversion_energy(prof):
    op = Conv2d("c", batch=1, cin=1, cout=8, h=28, w=28, kh=5, kw=5, a_bits=8, b_bits=8)
    base = devices.estimate(Workload([op]), prof).rows[0]
    low = prof.with_optical(photons_per_pixel=300.0, dac_bits=4, adc_bits=8)
    assert low.optical.noise_model().photons_per_pixel == 300.0 and prof.optical.photons_per_pixel == 30000.0
    plan = low.optical.plan(op)
    assert plan.dac_bits == 4 and plan.bit_slices == 2           # 8-bit activations on a 4-bit modulator
    row = devices.estimate(Workload([op]), low).rows[0]
    photon_j = 6.62607015e-34 * 299792458.0 / 532e-9
    n = 32 * 784 * 2                                             # conversions, two bit slices
    # E ∝ 2^bits from the 8-bit DAC / 12-bit ADC anchors
    conv_j = n * (1.0 * 2 ** -4 + 64.0 * 2 ** -4) * 1e-12
    laser_j = n * 300.0 * photon_j / 0.5 / 0.2
    assert row.compute_j == pytest.approx(conv_j + laser_j)
    assert (row.latency_s == pytest.approx(2 / 100 + 1 / 32)
            and base.latency_s == pytest.approx(1 / 100 + 1 / 32))


def test_too_much_light_stretches_the_pass(prof):
    op = Conv2d("c", batch=1, cin=1, cout=8, h=28, w=28, kh=5, kw=5, a_bits=8, b_bits=8)
    bright = prof.with_optical(photons_per_pixel=1e12)
    plan = bright.optical.plan(op)
    photon_j = 6.62607015e-34 * 299792458.0 / 532e-9
    need_s = 32 * 784 * 1e12 * photon_j / 0.5 / 0.01            # optical energy / 10 mW
    assert bright.optical.pass_s(plan) == pytest.approx(need_s) and need_s > 1 / 100


@pytest.mark.parametrize("kw", [{"photons_per_pixel": 0}, {"dac_bits": 2.5}, {"adc_bits": True}])
def test_bad_settings_are_named(prof, kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        prof.with_optical(**kw)
    with pytest.raises(ValueError, match="not an optical4f"):
        devices.load("xeon-8380").with_optical(photons_per_pixel=10.0)
