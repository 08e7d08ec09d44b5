"""Regression tests of issue 15 in one process: resume semantics, refusing/overwriting runs, partial
epoch statistics, runs written from Python, messages a CLI user can act on, progress when piped."""
from __future__ import annotations

import io
import json
import os
import signal
import time
from types import SimpleNamespace

import numpy as np
import pytest

from hwsim import Precision, build_model, load_data, train
from hwsim.cli import main

TINY = ["--model", "mlp:64-16-10", "--split", "300", "--batch", "32", "--quiet"]
W8 = ["--weight", "s8.7", "--activation", "s8.4", "--update", "s16.14:stochastic"]


def run_cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def snapshot(path):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(path.iterdir())}


@pytest.fixture
def run8(tmp_path, capsys):
    path = tmp_path / "w8b"
    assert run_cli(capsys, "train", *TINY, *W8, "--epochs", "2", "--out", path)[0] == 0
    return path


def eval_json(capsys, path):
    rc, out, err = run_cli(capsys, "eval", path, "--json")
    assert rc == 0, err
    return json.loads(out)


# ------------------------------------------------------------------ item 1: resume takes the run's settings
def test_resume_without_flags_continues_the_run_with_its_policy(capsys, run8):
    rc, _, err = run_cli(capsys, "train", "--out", run8, "--epochs", "3", "--resume", "--quiet")
    assert rc == 0, err
    metrics = json.loads((run8 / "metrics.json").read_text())
    assert metrics["precision"]["weight"] == "s8.7:nearest_even" and len(metrics["train_loss"]) == 3
    assert metrics["config"]["batch"] == 32 and metrics["data"] == "digits"
    result = eval_json(capsys, run8)  # evaluates with the run's 8-bit policy, not fp32
    assert result["accuracy"] == metrics["test_accuracy"] and result["n_test"] == 1497
    rc, _, _ = run_cli(capsys, "train", "--out", run8, "--resume", "--quiet")  # epochs: the last target
    assert rc == 0 and len(json.loads((run8 / "metrics.json").read_text())["train_loss"]) == 3


@pytest.mark.parametrize("flags, field", [
    (["--lr", "0.5"], "--lr 0.5 contradicts the run's lr 0.001"),
    (["--optimizer", "sgd"], "--optimizer sgd contradicts"),
    (["--batch", "16"], "--batch 16 contradicts"),
    (["--split", "400"], "--split 400 contradicts"),
    (["--seed", "3"], "--seed 3 contradicts"),
    (["--model", "mlp:64-32-10"], "--model mlp:64-32-10 contradicts"),
    (["--data", "mnist:/nowhere"], "--data mnist:/nowhere contradicts"),
    (["--weight", "s8.6"], "--weight s8.6 contradicts the run's weight 's8.7:nearest_even'"),
    (["--precision", "fixed16"], "--precision fixed16"),
    (["--mode", "exact"], "--mode exact contradicts"),
])
def test_a_refused_resume_names_the_field_and_writes_nothing(capsys, run8, flags, field):
    before = snapshot(run8)
    accuracy = eval_json(capsys, run8)["accuracy"]
    rc, _, err = run_cli(capsys, "train", "--out", run8, "--epochs", "4", "--resume", *flags)
    assert rc == 2 and field in err and err.count("\n") == 1, err
    assert snapshot(run8) == before
    assert eval_json(capsys, run8)["accuracy"] == accuracy


def test_explicit_flags_that_agree_with_the_run_are_accepted(capsys, run8):
    rc, _, err = run_cli(capsys, "train", "--out", run8, "--epochs", "3", "--resume", *TINY, *W8,
                         "--precision", "fp32", "--lr", "0.001")
    assert rc == 0, err


# ------------------------------------------------------------------ item 3: no silent overwrite
def test_an_existing_run_is_refused_unless_overwrite(capsys, run8):
    (run8 / "report.md").write_text("old report")
    before = snapshot(run8)
    rc, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--seed", "5", "--out", run8)
    assert rc == 2 and "already holds a run" in err and "--overwrite" in err
    assert snapshot(run8) == before
    rc, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--seed", "5", "--out", run8, "--overwrite")
    assert rc == 0, err
    assert not (run8 / "report.md").exists() and json.loads((run8 / "run.json").read_text())["seed"] == 5
    assert not (run8 / "run.lock").exists()


# ------------------------------------------------------------------ item 4: Ctrl-C keeps the epoch statistics
def blobs(n_train=240, n_test=60, dim=10, classes=3):
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((classes, dim)) * 1.5
    y = rng.integers(0, classes, n_train + n_test)
    X = (centers[y] + rng.standard_normal((len(y), dim))).astype(np.float32)
    return SimpleNamespace(X_train=X[:n_train], y_train=y[:n_train], X_test=X[n_train:], y_test=y[n_train:],
                           input_shape=(dim,), num_classes=classes, name="blobs")


DATA = blobs()
Q8 = Precision.from_flags(weight="s8.7", activation="s8.4", update="s16.14:stochastic", seed=3)


class InterruptAt:
    def __init__(self, step):
        self.step = step

    def after_step(self, model, step):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def without_timing(metrics):
    return {k: v for k, v in metrics.items() if k not in ("epoch_seconds", "versions")}


def test_ctrl_c_then_resume_gives_the_uninterrupted_metrics_and_statistics(tmp_path):
    kw = {"epochs": 2, "batch": 32, "lr": 0.01, "seed": 1, "progress": False, "health_every": 1}
    full = train(build_model("mlp:10-16-3", (10,), 3), DATA, Q8, **kw)
    with pytest.raises(KeyboardInterrupt):
        train(build_model("mlp:10-16-3", (10,), 3), DATA, Q8, out=tmp_path, scheme=InterruptAt(10), **kw)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["batch"] == 3 and meta["partial"]["stats"]["dense0"]["weight"]["n"] > 0
    resumed = train(build_model("mlp:10-16-3", (10,), 3), DATA, Q8, out=tmp_path, resume=True, **kw)
    assert without_timing(resumed) == without_timing(full)
    n = resumed["quant_health"][1]["dense0"]["activation"]["n"]
    assert n == 240 * 16  # 16 outputs of every example of the interrupted epoch, not only after the resume


# ------------------------------------------------------------------ item 12: runs written from Python
@pytest.mark.parametrize("flatten", [True, False], ids=["vectors", "images"])
def test_a_run_written_by_hwsim_train_is_usable_by_eval_and_quantize(capsys, tmp_path, flatten):
    data = load_data("digits", split=500, seed=4, flatten=flatten)
    model = build_model("mlp:64-16-10", data.input_shape, data.num_classes, seed=2)
    metrics = train(model, data, Q8, epochs=1, batch=64, seed=9, out=tmp_path / "py", progress=False)
    result = eval_json(capsys, tmp_path / "py")
    assert result["n_test"] == 1297 and result["accuracy"] == metrics["test_accuracy"]
    rc, out, err = run_cli(capsys, "quantize", tmp_path / "py", "--bits", "8")
    assert rc == 0 and "trained" in out, err


def test_a_run_on_python_data_asks_for_data(capsys, tmp_path):
    train(build_model("mlp:10-16-3", (10,), 3), DATA, Q8, epochs=1, batch=32, out=tmp_path, progress=False)
    rc, _, err = run_cli(capsys, "eval", tmp_path)
    assert rc == 2 and "'blobs'" in err and "pass --data" in err and err.count("\n") == 1


def test_train_refuses_an_existing_run_from_python_too(tmp_path):
    train(build_model("mlp:10-16-3", (10,), 3), DATA, Q8, epochs=1, batch=32, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        train(build_model("mlp:10-16-3", (10,), 3), DATA, Q8, epochs=1, batch=32, out=tmp_path,
              progress=False)
    train(build_model("mlp:10-16-3", (10,), 3), DATA, Q8, epochs=1, batch=32, out=tmp_path, progress=False,
          overwrite=True)


# ------------------------------------------------------------------ items 5, 6: messages
def test_nan_in_python_data_is_bad_data_not_divergence():
    X = DATA.X_train.copy()
    X[17, 4] = np.nan
    bad = SimpleNamespace(**{**vars(DATA), "X_train": X})
    with pytest.raises(ValueError, match=r"bad data 'blobs': X_train holds NaN at index \(17, 4\)"):
        train(build_model("mlp:10-16-3", (10,), 3), bad, Q8, epochs=1, batch=32, progress=False)


def test_seed_outside_the_api_range_names_the_flag(capsys, tmp_path):
    for seed in ("-1", str(2**64), "x"):
        with pytest.raises(SystemExit) as info:
            main(["train", "--seed", seed, "--out", str(tmp_path / "s")])
        err = capsys.readouterr().err
        assert info.value.code == 2 and "--seed must be an integer in [0, 2**64 - 1]" in err
    assert not (tmp_path / "s").exists()


def test_a_float_role_too_wide_for_float32_is_a_cli_level_message(capsys, tmp_path):
    rc, _, err = run_cli(capsys, "train", *TINY, "--weight", "e9m9", "--out", tmp_path / "e")
    assert rc == 2 and "--weight" in err and "float64 input" not in err and "e.g. bf16" in err
    assert not (tmp_path / "e").exists()


def test_unsigned_weights_get_a_warning(capsys, tmp_path):
    rc, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--weight", "u8.8", "--out", tmp_path / "u")
    assert rc == 0 and "warning: --weight u8.8:nearest_even is unsigned" in err and "s8.7" in err
    rc, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--weight", "s8.7", "--out", tmp_path / "s")
    assert rc == 0 and "warning" not in err


# ------------------------------------------------------------------ item 11: visible progress
def test_piped_training_prints_one_line_per_epoch(capsys, tmp_path):
    rc, _, err = run_cli(capsys, "train", *TINY[:-1], "--epochs", "2", "--out", tmp_path / "p")
    assert rc == 0 and "epoch 1/2: loss" in err and "epoch 2/2: loss" in err


def test_demo_announces_a_slow_wait_before_it():
    from hwsim._demo import announce_if_slow

    stream = io.StringIO()
    with announce_if_slow("compiling kernels (first run only)…", after_s=0.05, stream=stream):
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "hwsim demo: compiling kernels (first run only)…"
    assert lines[1].startswith("hwsim demo: done")
    stream = io.StringIO()
    with announce_if_slow("x", after_s=5.0, stream=stream):
        pass
    assert stream.getvalue() == ""
    stream = io.StringIO()
    with announce_if_slow("now", after_s=0.0, stream=stream):
        assert stream.getvalue() == "hwsim demo: now\n"  # printed before the block runs


def test_kernel_cache_cold_detects_an_empty_numba_cache(monkeypatch, tmp_path):
    from hwsim._demo import kernel_cache_cold

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert kernel_cache_cold()
    (tmp_path / "fixedpoint").mkdir()
    (tmp_path / "fixedpoint" / "_fixed_numba.run-1.py311.nbi").write_bytes(b"")
    assert not kernel_cache_cold()
