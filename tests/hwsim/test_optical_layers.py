"""Layers on the optics: forward through FourF, straight-through gradients, seeds, set_optical, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

import hwsim
from hwsim import cli
from hwsim.optics import FourF


def _pair(optical, **kw):
    digital = hwsim.Conv2d(2, 3, 3, padding=1, seed=4, **kw)
    opt = hwsim.Conv2d(2, 3, 3, padding=1, seed=4, optical=optical, **kw)
    return digital, opt


def test_ideal_optics_forward_equals_the_digital_layer():
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 6)).astype(np.float32)
    digital, opt = _pair(FourF())
    assert np.allclose(opt.forward(x), digital.forward(x), atol=2e-6)


def test_ideal_optics_with_a_fixed_point_policy_matches_within_one_step():
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6)).astype(np.float32)
    digital, opt = _pair(FourF())
    p = hwsim.Precision.from_flags("fixed8")
    for layer in (digital, opt):
        layer.precision = p
    d, o = digital.forward(x), opt.forward(x)
    step = 2.0 ** -p.activation.fmt.frac
    assert np.max(np.abs(d - o)) <= step and np.mean(d == o) > 0.95


def test_backward_is_the_ideal_gradient_straight_through():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    digital, opt = _pair(FourF.from_profile(photons_per_pixel=50.0, adc_bits=6, seed=1))
    y_d, y_o = digital.forward(x, training=True), opt.forward(x, training=True)
    assert not np.allclose(y_d, y_o, atol=1e-2)                  # the optics are noisy ...
    dy = rng.standard_normal(y_d.shape).astype(np.float32)
    assert np.array_equal(opt.backward(dy), digital.backward(dy))  # ... the gradient is the ideal one
    assert np.array_equal(opt.dW, digital.dW) and np.array_equal(opt.db, digital.db)


def test_ideal_optical_layer_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 5))
    layer = hwsim.Conv2d(2, 2, 3, padding=1, stride=2, seed=1, dtype=np.float64, optical=FourF())
    dy = rng.standard_normal(layer.forward(x).shape)
    layer.forward(x, training=True)
    dx = layer.backward(dy)
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (1, 1, 2, 3), (0, 1, 4, 4)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fd = (np.sum(layer.forward(xp) * dy) - np.sum(layer.forward(xm) * dy)) / (2 * eps)
        assert dx[idx] == pytest.approx(fd, rel=1e-6, abs=1e-8)
    w0 = layer.W.copy()
    for idx in [(0, 0, 0, 0), (1, 1, 2, 1)]:
        layer.W = w0.copy()
        layer.W[idx] += eps
        fp = np.sum(layer.forward(x) * dy)
        layer.W[idx] -= 2 * eps
        fm = np.sum(layer.forward(x) * dy)
        assert layer.dW[idx] * x.shape[0] == pytest.approx((fp - fm) / (2 * eps), rel=1e-6)


def test_noise_seeds_follow_step_and_call_and_replay():
    x = np.random.default_rng(4).standard_normal((2, 2, 6, 6)).astype(np.float32)

    def model():
        return hwsim.Sequential([hwsim.Conv2d(2, 3, 3, seed=0,
                                              optical=FourF.from_profile(photons_per_pixel=30.0))],
                                (2, 6, 6))

    a, b = model(), model()
    first = a.layers[0].forward(x)
    assert np.array_equal(first, b.layers[0].forward(x))          # same seeds, same call sequence
    assert not np.array_equal(first, a.layers[0].forward(x))      # the next call at this step draws anew
    a.set_step(1)
    b.set_step(1)
    assert np.array_equal(a.layers[0].forward(x), b.layers[0].forward(x))


def test_set_optical_and_seq_opt_out():
    m = hwsim.build_model("seq:1x8x8,conv(2,3,optical=false),relu,conv(3,3),flatten,dense(10)", (1, 8, 8))
    assert hwsim.set_optical(m, FourF()) == 1
    assert m.layers[0].optical is None and m.layers[2].optical is not None
    assert hwsim.set_optical(m, None) == 1 and m.layers[2].optical is None
    with pytest.raises(ValueError, match="no layer of this model runs optically"):
        hwsim.set_optical(hwsim.build_model("mlp:64-10", (64,)), FourF())
    with pytest.raises(TypeError, match="FourF"):
        m.layers[2].set_optical("optical4f")


def test_workload_costs_the_modulator_bits():
    m = hwsim.build_model("seq:1x8x8,conv(2,3),flatten,dense(10)", (1, 8, 8))
    hwsim.set_optical(m, FourF.from_profile(dac_bits=4))
    op = hwsim.workload(m, hwsim.Precision.from_flags("fixed8")).ops[0]
    assert op.a_bits == 4


# ---------------------------------------------------------------- CLI
def _run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


SPEC = "seq:1x8x8,conv(3,3),relu,flatten,dense(10)"


def test_cli_train_and_eval_through_other_optics(capsys, tmp_path):
    run = tmp_path / "run"
    rc, _, err = _run(capsys, "train", "--model", SPEC, "--epochs", "1", "--quiet", "--out", str(run),
                      "--optical", "optical4f:photons=1000,adc_bits=8,seed=2")
    assert rc == 0, err
    saved = json.loads((run / "run.json").read_text())["optical"]
    assert saved == FourF.parse("optical4f:photons=1000,adc_bits=8,seed=2").spec
    rc, out, _ = _run(capsys, "eval", str(run), "--json")
    assert json.loads(out)["optical"] == saved
    rc, out, _ = _run(capsys, "eval", str(run), "--json", "--optical", "none")
    assert json.loads(out)["optical"] is None
    rc, out, _ = _run(capsys, "eval", str(run), "--json", "--optical", "optical4f:photons=3,adc_bits=2")
    assert rc == 0 and "photons=3.0" in json.loads(out)["optical"]
    # --resume continues with the run's optics; an explicit other setting is refused, naming the flag
    rc, _, err = _run(capsys, "train", "--epochs", "2", "--quiet", "--out", str(run), "--resume",
                      "--optical", "optical4f:photons=10")
    assert rc == 2 and "--optical optical4f:photons=10 contradicts the run's optical" in err
    rc, _, err = _run(capsys, "train", "--epochs", "2", "--quiet", "--out", str(run), "--resume")
    assert rc == 0, err
    assert json.loads((run / "run.json").read_text())["optical"] == saved
    assert len(json.loads((run / "metrics.json").read_text())["epoch_seconds"]) == 2


@pytest.mark.parametrize("spec, message", [
    ("optical4f:photon=10", ("unknown key 'photon'; valid keys: photons, dac_bits, mask_bits, adc_bits, "
                             "detection, phase_only, qe, read_noise, full_well, seed")),
    ("optical4f:adc_bits=eight", "bad value 'eight' for adc_bits"),
    ("optical4f:detection=laser", "expected incoherent|coherent"),
    ("optical4f:photons=-3", "photons_per_pixel must be a positive number"),
    ("xeon-8380", "not an optical4f profile"),
])
def test_cli_bad_optical_flag_is_one_line(capsys, tmp_path, spec, message):
    rc, _, err = _run(capsys, "train", "--model", SPEC, "--epochs", "1", "--quiet",
                      "--out", str(tmp_path / "r"), "--optical", spec)
    assert rc == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()                       # nothing written before the input is accepted


def test_cli_train_refuses_optics_without_a_convolution(capsys, tmp_path):
    rc, _, err = _run(capsys, "train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "r"),
                      "--optical", "optical4f")
    assert rc == 2 and "no layer of this model runs optically" in err


def test_cli_cost_uses_the_optical_settings(capsys):
    args = ["cost", "--model", "cnn:lenet5", "--device", "optical4f", "--json"]
    rc, out, _ = _run(capsys, *args)
    base = json.loads(out)["devices"]["optical4f"]
    rc, out, _ = _run(capsys, *args, "--optical", "optical4f:photons=100,adc_bits=6")
    low = json.loads(out)
    assert rc == 0 and low["optical"].startswith("optical4f:photons=100.0")
    assert low["devices"]["optical4f"]["dynamic_energy_j"] < base["dynamic_energy_j"]
    rc, out, _ = _run(capsys, "cost", "--model", "cnn:lenet5", "--device", "h100-sxm", "--json",
                      "--optical", "optical4f:photons=100")
    assert set(json.loads(out)["devices"]) == {"h100-sxm", "optical4f"}


def test_non_numpy_input_is_a_clear_error():
    layer = hwsim.Conv2d(1, 1, 3, optical=FourF())
    layer.check_optical_input(np.ones(3))
    with pytest.raises(TypeError, match="numpy arrays"):
        layer.check_optical_input([1.0, 2.0])


# ---------------------------------------------------------------- Circulant on the optics
def test_circulant_layer_on_ideal_optics_matches_and_backward_is_straight_through():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 16)).astype(np.float32)
    digital = hwsim.layers.Circulant(16, seed=2)
    ideal = hwsim.layers.Circulant(16, seed=2, optical=FourF())
    assert np.allclose(ideal.forward(x), digital.forward(x), atol=1e-5)
    noisy = hwsim.layers.Circulant(16, seed=2, optical=FourF.from_profile(photons_per_pixel=30.0, adc_bits=6))
    y_d, y_n = digital.forward(x, training=True), noisy.forward(x, training=True)
    assert not np.allclose(y_d, y_n, atol=1e-2)
    dy = rng.standard_normal(y_d.shape).astype(np.float32)
    assert np.array_equal(noisy.backward(dy), digital.backward(dy))
    for name, g in digital.grads().items():
        assert np.array_equal(noisy.grads()[name], g)


def test_circulant_seq_token_and_workload_on_the_optics():
    m = hwsim.build_model("seq:16,circulant,relu,circulant(optical=false),dense(4)", (16,), 4)
    assert hwsim.set_optical(m, FourF.from_profile(dac_bits=6)) == 1
    assert m.layers[0].optical is not None and m.layers[2].optical is None
    ops = [op for op in hwsim.workload(m, hwsim.Precision.from_flags("fixed8")).ops
           if op.name.endswith("/circ")]
    assert [op.a_bits for op in ops] == [6, 8]


def test_cli_optical_refuses_cupy_before_writing(capsys, tmp_path):
    rc, _, err = _run(capsys, "train", "--model", SPEC, "--epochs", "1", "--quiet",
                      "--out", str(tmp_path / "r"), "--optical", "optical4f", "--array-module", "cupy")
    assert rc == 2 and "--array-module" in err and not (tmp_path / "r").exists()
