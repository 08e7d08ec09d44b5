"""hwsim.optics: each signal-chain step on hand-computed cases, the ideal limit, noise statistics,
± split recombination, reproducibility, profile/spec handling."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim import optics
from hwsim.optics import FourF, _rng


def _circulant_matrix(h):
    n = len(h)
    return np.array([[h[(i - j) % n] for j in range(n)] for i in range(n)])


def _conv_reference(x, w, padding, stride=1):
    layer = hwsim.Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride=stride, padding=padding,
                         dtype=np.float64)
    layer.W = w
    return layer.forward(x)


# ---------------------------------------------------------------- the steps, hand-computed
def test_split_signed_and_recombine_are_exact():
    x = np.array([-2.0, 0.0, 3.0, -0.5])
    pos, neg = optics.split_signed(x)
    assert pos.tolist() == [0, 0, 3, 0] and neg.tolist() == [2, 0, 0, 0.5]
    assert np.array_equal(optics.recombine(pos, neg), x)
    assert np.array_equal(optics.recombine(pos, neg, 4.0), 4 * x)


def test_dac_encode_levels_and_scale():
    t, scale = optics.dac_encode(np.array([0.0, 0.2, 0.5, 1.0]), 2)
    assert scale == 1.0 and t.tolist() == [0.0, 1 / 3, 2 / 3, 1.0]  # 0.6 -> 1, 1.5 -> 2 (half to even)
    t, scale = optics.dac_encode(np.array([0.0, 1.0, 2.0, 3.0]), 1)
    assert scale == 3.0 and t.tolist() == [0.0, 0.0, 1.0, 1.0]      # 1/3 -> 0, 2/3 -> 1
    t, scale = optics.dac_encode(np.array([0.0, 0.3]), None, scale=0.6)
    assert scale == 0.6 and t.tolist() == [0.0, 0.5]
    assert optics.dac_encode(np.zeros(3), 4)[1] == 1.0
    with pytest.raises(ValueError, match="non-negative"):
        optics.dac_encode(np.array([-1.0]), 8)


def test_mask_encode_amplitude_and_phase_levels():
    h = np.array([0.5 * np.exp(0.5j * np.pi), -1.0, 0.1 * np.exp(0.3j)])
    q = optics.mask_encode(h, 2)
    # amplitude k/3: 1.5 -> 2, 3 -> 3, 0.3 -> 0; phase 2πk/4: π/2 -> k=1, π -> k=2, 0.3 rad -> 0
    assert np.allclose(q, [2 / 3 * 1j, -1.0, 0.0])
    assert np.allclose(optics.mask_encode(h, None, phase_only=True), [1j, -1.0, np.exp(0.3j)])
    assert np.allclose(optics.mask_encode(h, 2, phase_only=True), [1j, -1.0, 1.0])
    assert np.array_equal(optics.mask_encode(h, None), np.abs(h) * np.exp(1j * np.angle(h)))
    with pytest.raises(ValueError, match=r"\|h\| <= 1"):
        optics.mask_encode(np.array([2.0]), 8)


def test_pad_propagate_psf_and_intensity():
    assert optics.pad_to(np.ones((2, 3, 3)), (4, 5)).shape == (2, 4, 5)
    with pytest.raises(ValueError, match="tile"):
        optics.pad_to(np.ones((3, 3)), (2, 5))
    mask = np.fft.fft([0.0, 1.0, 0.0, 0.0])                    # a shift by one pixel
    assert np.allclose(optics.propagate(np.array([1.0, 2.0, 3.0, 4.0]), mask, 1), [4, 1, 2, 3])
    h = np.array([0.5, -0.25, 0.0, 0.0])
    assert np.allclose(optics.psf_of(np.fft.fft(h), 1), [0.25, 0.0625, 0, 0])
    out = optics.propagate_intensity(np.array([0.0, 1.0, 0.0, 2.0]), np.array([0.5, 0.25, 0.0, 0.0]), 1)
    assert np.allclose(out, [0.5, 0.5, 0.25, 1.0])


def test_coherent_homodyne_frames():
    i_p, i_m = optics.coherent_intensities(np.array([0.5, 1.0, 0.5j, -0.25]))
    assert (np.allclose(i_p, [0.5625, 1.0, 0.3125, 0.140625])
            and np.allclose(i_m, [0.0625, 0.0, 0.3125, 0.390625]))
    assert np.allclose(optics.coherent_field(i_p, i_m), [0.5, 1.0, 0.0, -0.25])


def test_read_noise_clipping_and_adc():
    e = np.array([-1.0, 5.0, 40000.0])
    assert optics.full_well_clip(e, 30000.0).tolist() == [0.0, 5.0, 30000.0]
    assert optics.full_well_clip(e, None).tolist() == [0.0, 5.0, 40000.0]
    assert optics.read_noise(e, 0.0, seed=1) is e
    assert optics.adc_read(np.array([0.0, 1.4, 1.6, 3.7, -1.0]), 2, 3.0).tolist() == [0, 1, 2, 3, 0]
    # 1 bit, full scale 2 e-: 0.25 -> code 0, 0.5 -> 0 (half to even), 0.6 -> 1, 1.25 -> 1 (saturated)
    assert optics.adc_read(np.array([0.5, 1.0, 1.2, 2.5]), 1, 2.0).tolist() == [0, 0, 2, 2]
    # black level 1 e-: 2 bits span [-1, 2] in steps of 1 e-; -0.6 -> -1, 0.4 -> 0, -3 -> -1 (saturated)
    assert optics.adc_read(np.array([-0.6, 0.4, 1.6, -3.0]), 2, 2.0, 1.0).tolist() == [-1, 0, 2, -1]
    g = optics.read_noise(np.zeros(200_000), 3.0, seed=5)
    assert abs(g.mean()) < 4 * 3.0 / np.sqrt(g.size) and g.std() == pytest.approx(3.0, rel=0.01)


# ---------------------------------------------------------------- noise statistics and reproducibility
@pytest.mark.parametrize("lam", [0.3, 3.5, 9.99, 10.0, 40.0, 2500.0, 1e7])
def test_poisson_mean_variance_and_pmf(lam):
    n = 200_000
    k = optics.shot_noise(np.full(n, lam), seed=11)
    assert np.all(k == np.round(k)) and k.min() >= 0
    assert abs(k.mean() - lam) < 5 * np.sqrt(lam / n)
    assert k.var() == pytest.approx(lam, rel=0.03)
    from scipy.stats import poisson
    lo = max(int(lam - 2 * np.sqrt(lam)), 0)
    for v in range(lo, lo + 6 * int(np.sqrt(lam) + 1), int(np.sqrt(lam)) // 3 + 1):
        p = poisson.pmf(v, lam)
        assert abs(np.mean(k == v) - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-9
    if lam >= 10:   # the upper tail too (the rejection sampler's squeeze regions)
        t = lam + 3 * np.sqrt(lam)
        p = poisson.sf(t, lam)
        assert abs(np.mean(k > t) - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_counter_rule_matches_fixedpoint_and_is_reproducible():
    from scipy.stats import poisson

    from fixedpoint.rng import uniforms
    # small means: the inverse CDF of fixedpoint.rng's uniform i (the compiled loop restates its rule)
    lam = np.linspace(0.01, 9.9, 5000)
    u = uniforms(1234, 0, lam.size)
    k = _rng.poisson(lam, seed=1234)
    assert np.mean(k == poisson.ppf(u, lam)) > 0.999
    # the Gaussians are the inverse normal CDF of fixedpoint.rng's uniforms
    from scipy.special import ndtri
    assert np.array_equal(_rng.normal((7, 3), seed=5), ndtri(uniforms(5, 0, 21) + 2.0 ** -54).reshape(7, 3))
    a = optics.shot_noise(np.full(1000, 20.0), seed=7)
    assert np.array_equal(a, optics.shot_noise(np.full(1000, 20.0), seed=7))
    assert not np.array_equal(a, optics.shot_noise(np.full(1000, 20.0), seed=8))
    # element i depends on (seed, i) only: a prefix draws the same values, whatever the other means
    assert np.array_equal(a[:300], optics.shot_noise(np.full(300, 20.0), seed=7))
    mixed = np.full(1000, 20.0)
    mixed[300:] = np.linspace(0, 5000, 700)
    assert np.array_equal(a[:300], optics.shot_noise(mixed, seed=7)[:300])


def test_fourf_noise_is_reproducible_from_its_seed():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 2, 8, 8)), rng.standard_normal((3, 2, 3, 3))
    f = FourF.from_profile(photons_per_pixel=100.0, seed=3)
    y = f.conv2d(x, w, padding=1)
    assert np.array_equal(y, f.conv2d(x, w, padding=1))
    assert np.array_equal(y, FourF.parse(f.spec).conv2d(x, w, padding=1))
    assert not np.array_equal(y, f.replace(seed=4).conv2d(x, w, padding=1))
    assert not np.array_equal(y, f.conv2d(x, w, padding=1, seed=9))


@pytest.mark.parametrize("detection", ["incoherent", "coherent"])
def test_full_scale_noise_follows_shot_and_read_noise(detection):
    # constant full-scale input through a one-tap kernel: every output pixel is at full scale
    photons, qe, read = 400.0, 0.5, 3.0
    f = FourF(photons_per_pixel=photons, quantum_efficiency=qe, read_noise_e=read,
              detection=detection, seed=2)
    x = np.ones((64, 1, 32, 32))
    w = np.ones((1, 1, 1, 1))
    y = f.conv2d(x, w)
    s = photons * qe
    frames = 2 if detection == "coherent" else 1       # homodyne: a full-scale frame and a dark frame
    expect = np.sqrt(s + frames * read ** 2) / s
    assert abs(y.mean() - 1.0) < 5 * expect / np.sqrt(y.size)
    assert y.std() == pytest.approx(expect, rel=0.03)


def test_full_well_and_adc_limit_the_reading():
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 1, 1))
    clipped = FourF(photons_per_pixel=1000.0, full_well_e=500.0).conv2d(x, w)
    assert np.allclose(clipped, 0.5)                     # the well holds half the full-scale signal
    coarse = FourF(adc_bits=2).conv2d(np.full((1, 1, 4, 4), 0.4), w)  # no noise: only the ADC rounds
    assert np.allclose(coarse, 0.4)                      # the per-tensor scale puts 0.4 at full scale


# ---------------------------------------------------------------- the ideal limit
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3), h=st.integers(3, 9),
       wd=st.integers(3, 9),
       k=st.integers(1, 3), pad=st.integers(0, 2), stride=st.integers(1, 2), signed=st.booleans(),
       detection=st.sampled_from(optics.DETECTIONS), seed=st.integers(0, 2 ** 16))
def test_ideal_conv2d_equals_the_digital_result(n, c, o, h, wd, k, pad, stride, signed, detection, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, wd))
    x = x if signed else np.abs(x)
    w = rng.standard_normal((o, c, k, k))
    ref = _conv_reference(x, w, pad, stride)
    y = FourF(detection=detection).conv2d(x, w, padding=pad, stride=stride)
    assert y.shape == ref.shape
    assert np.max(np.abs(y - ref)) <= 1e-9 * max(np.max(np.abs(ref)), 1e-300)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 4), n=st.integers(1, 33), detection=st.sampled_from(optics.DETECTIONS),
       signed=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_ideal_circulant_equals_the_matrix_product(m, n, detection, signed, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n))
    x = x if signed else np.abs(x)
    h = rng.standard_normal(n)
    ref = x @ _circulant_matrix(h).T
    y = FourF(detection=detection).circulant(x, h)
    assert np.max(np.abs(y - ref)) <= 1e-9 * max(np.max(np.abs(ref)), 1e-300)


def test_zero_operands_and_float32():
    f = FourF()
    assert np.array_equal(f.circulant(np.zeros((2, 5)), np.ones(5)), np.zeros((2, 5)))
    assert np.array_equal(f.circulant(np.ones((2, 5)), np.zeros(5)), np.zeros((2, 5)))
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    y = f.circulant(x, np.arange(8, dtype=np.float32))
    assert y.dtype == np.float32
    assert np.allclose(y, x.astype(np.float64) @ _circulant_matrix(np.arange(8.0)).T, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("detection", optics.DETECTIONS)
def test_dac_split_recombination_is_exact(detection):
    # only the DAC quantises: the optics then compute exactly the product of the quantised ± planes
    rng = np.random.default_rng(3)
    x, h = rng.standard_normal((4, 16)), rng.standard_normal(16)
    y = FourF(dac_bits=3, detection=detection).circulant(x, h)
    s = np.abs(x).max()
    pos, neg = optics.split_signed(x)
    xq = s * (optics.dac_encode(pos, 3, s)[0] - optics.dac_encode(neg, 3, s)[0])
    assert np.max(np.abs(y - xq @ _circulant_matrix(h).T)) < 1e-12 * np.abs(y).max()
    assert not np.allclose(xq, x)


def test_phase_only_mask_computes_the_all_pass_filter():
    rng = np.random.default_rng(4)
    x, h = np.abs(rng.standard_normal((3, 12))), rng.standard_normal(12)
    allpass = np.fft.ifft(np.exp(1j * np.angle(np.fft.fft(h)))).real
    y = FourF(phase_only=True, detection="coherent").circulant(x, h)
    scale = np.abs(np.fft.fft(h)).max()
    assert np.allclose(y, scale * (x @ _circulant_matrix(allpass).T))


# ---------------------------------------------------------------- profile and spec
def test_from_profile_reads_the_profile_and_overrides():
    f = FourF.from_profile("optical4f")
    assert (f.photons_per_pixel, f.dac_bits, f.mask_bits, f.adc_bits) == (30000.0, 8, 8, 12)
    assert (f.quantum_efficiency, f.read_noise_e, f.full_well_e) == (0.8, 2.0, 30000.0)
    g = FourF.from_profile("optical4f", photons_per_pixel=None, adc_bits=None, detection="coherent", seed=5)
    assert g.photons_per_pixel is None and g.adc_bits is None and g.detection == "coherent" and g.seed == 5
    nm = f.noise_model()
    assert nm.relative_sigma == pytest.approx(np.sqrt(24000 + 4) / 24000)
    with pytest.raises(ValueError, match="unknown field 'photons'.*photons_per_pixel"):
        FourF.from_profile("optical4f", photons=3)
    with pytest.raises(ValueError, match="not an optical4f"):
        FourF.from_profile("xeon-8380")


def test_device_profile_follows_the_settings():
    prof = FourF.from_profile(photons_per_pixel=50.0, dac_bits=6, adc_bits=8).device_profile()
    assert prof.optical.photons_per_pixel == 50.0 and prof.optical.adc_bits == 8
    assert prof.optical.modulator_bits == 6 and prof.optical.adc_pj() == pytest.approx(64.0 / 16)


@pytest.mark.parametrize("kw, match", [
    ({"photons_per_pixel": 0}, "photons_per_pixel"), ({"adc_bits": 0}, "adc_bits"),
    ({"dac_bits": 2.5}, "dac_bits"), ({"detection": "laser"}, "incoherent, coherent"),
    ({"quantum_efficiency": 1.5}, "quantum_efficiency"), ({"read_noise_e": -1}, "read_noise_e"),
    ({"full_well_e": 0}, "full_well_e"), ({"seed": 1.5}, "seed")])
def test_bad_fields_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        FourF(**kw)


def test_spec_parsing_and_errors():
    f = FourF.parse("optical4f:photons=1000,adc_bits=8")
    assert f.photons_per_pixel == 1000.0 and f.adc_bits == 8 and f.dac_bits == 8
    assert FourF.parse(f.spec) == f
    g = FourF.parse("optical4f:photons=none,dac_bits=none,mask_bits=none,adc_bits=none,detection=coherent,"
                    "phase_only=false,seed=3")
    assert g.is_ideal and g.detection == "coherent" and g.seed == 3
    with pytest.raises(ValueError, match=r"unknown key 'photon'; valid keys: photons, dac_bits, mask_bits, "
                                         r"adc_bits"):
        FourF.parse("optical4f:photon=10")
    with pytest.raises(ValueError, match=r"bad value 'x' for adc_bits \(expected an integer or none\)"):
        FourF.parse("optical4f:adc_bits=x")
    with pytest.raises(ValueError, match="needs a value"):
        FourF.parse("optical4f:photons")
    with pytest.raises(ValueError, match="unknown profile"):
        FourF.parse("nosuch:photons=3")
    with pytest.raises(ValueError, match="expected PROFILE"):
        FourF.parse(":photons=3")


def test_shape_errors():
    f = FourF()
    with pytest.raises(ValueError, match="circulant"):
        f.circulant(np.ones((2, 4)), np.ones(5))
    with pytest.raises(ValueError, match="conv2d"):
        f.conv2d(np.ones((1, 2, 4, 4)), np.ones((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="kernel 5x5"):
        f.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 5, 5)))
