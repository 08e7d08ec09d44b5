"""The hwsim command line end to end on tiny settings (in-process ``main(argv)``, one subprocess)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from hwsim.cli import build_parser, main

COMMANDS = ("demo", "train", "eval", "cost", "devices", "calibrate", "report", "sweep")
TINY = ["--model", "mlp:64-16-10", "--split", "300", "--epochs", "1", "--batch", "32", "--quiet"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "examples:" in out and f"hwsim {command}" in out


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "hwsim.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert all(c in out for c in COMMANDS)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "r"
    assert main(["train", *TINY, "--weight", "s8.7", "--activation", "s8.4", "--update",
                 "s16.14:stochastic", "--out", str(path)]) == 0
    return path


def test_train_writes_metrics(run_dir):
    m = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= m["test_accuracy"] <= 1.0 and len(m["train_loss"]) == 1 and len(m["epoch_seconds"]) == 1
    assert m["precision"]["weight"] == "s8.7:nearest_even" and m["precision"]["update"] == "s16.14:stochastic"
    assert m["precision"]["activation"] == "s8.4:nearest_even" and m["precision"]["grad"] is None
    run = json.loads((run_dir / "run.json").read_text())
    assert run["model"] == "mlp:64-16-10" and run["dataset"]["n_train"] == 300


def test_eval_reproduces_test_accuracy(capsys, run_dir):
    rc, out, _ = _run(capsys, "eval", str(run_dir), "--json")
    result = json.loads(out)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert rc == 0 and result["n_test"] == 1497 and result["accuracy"] == pytest.approx(m["test_accuracy"])
    rc, out, _ = _run(capsys, "eval", str(run_dir), "--data", "digits", "--split", "1700")
    assert rc == 0 and "| 97 |" in out
    rc, out, _ = _run(capsys, "eval", str(run_dir), "--split", "1000")
    assert rc == 0 and "| 797 |" in out


def test_resume_continues_and_refuses_other_model(capsys, run_dir, tmp_path):
    rc, _, err = _run(capsys, "train", *TINY[:2], "--model", "mlp:64-32-10", "--out", str(run_dir),
                      "--resume")
    assert rc == 2 and "--model mlp:64-32-10 contradicts the run's model 'mlp:64-16-10'" in err
    rc, _, _ = _run(capsys, "train", *[a if a != "1" else "2" for a in TINY], "--weight", "s8.7",
                    "--activation", "s8.4", "--update", "s16.14:stochastic", "--out", str(run_dir),
                    "--resume")
    assert rc == 0
    assert len(json.loads((run_dir / "metrics.json").read_text())["epoch_seconds"]) == 2
    rc, _, err = _run(capsys, "eval", str(tmp_path))
    assert rc == 2 and "run.json" in err


def test_report(capsys, run_dir, tmp_path):
    rc, out, _ = _run(capsys, "report", str(run_dir), "--out", str(tmp_path / "rep"))
    text = (tmp_path / "rep" / "report.md").read_text()
    assert rc == 0 and "test accuracy" in text and "curves.png" in text
    assert "| dense0 | weight |" in text and "| dense0 | update |" in text  # quantization health
    assert (tmp_path / "rep" / "curves.png").stat().st_size > 1000
    rc, _, err = _run(capsys, "report", str(tmp_path))
    assert rc == 2 and "metrics.json" in err


def test_cost_json_per_device_and_layer(capsys):
    rc, out, _ = _run(capsys, "cost", "--model", "mlp:784-256-256-10", "--precision", "fp32",
                      "--device", "h100-sxm", "--json")
    d = json.loads(out)["devices"]["h100-sxm"]
    assert rc == 0 and d["latency_s"] > 0 and d["energy_j"] > 0
    assert [layer["name"] for layer in d["layers"]] == ["dense0", "relu1", "dense2", "relu3", "dense4"]
    assert sum(layer["energy_j"] for layer in d["layers"]) == pytest.approx(d["energy_j"])


def test_cost_table_csv_and_all_devices(capsys, tmp_path):
    import devices

    rc, out, _ = _run(capsys, "cost", "--model", "mlp:64-32-10", "--weight", "s8.7", "--activation", "s8.4",
                      "--layers", "--csv", str(tmp_path / "c.csv"))
    assert rc == 0 and all(name in out for name in devices.list_profiles()) and "dense0" in out
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert {r["device"] for r in rows} == set(devices.list_profiles())
    rc, out, _ = _run(capsys, "cost", "--model", "cnn:lenet5", "--input-shape", "1x28x28",
                      "--device", "h100-sxm", "--training", "--batch", "8")
    assert rc == 0 and "training step" in out


def test_cost_with_a_scheme_uses_its_policy_and_model(capsys):
    def cost(*flags):
        rc, out, _ = _run(capsys, "cost", "--model", "mlp:784-256-10", "--device", "stm32h743", "--json",
                          *flags)
        assert rc == 0
        return json.loads(out)

    fp32, bnn = cost(), cost("--scheme", "bnn")
    assert bnn["precision"]["weight"] != fp32["precision"]["weight"]
    assert "batchnorm1" in [layer["name"] for layer in bnn["devices"]["stm32h743"]["layers"]]
    assert bnn["devices"]["stm32h743"]["energy_j"] < fp32["devices"]["stm32h743"]["energy_j"]
    rc, _, err = _run(capsys, "cost", "--model", "mlp:784-256-10", "--scheme", "bnn", "--weight", "s8.4")
    assert rc == 2 and "--scheme" in err


def test_devices_and_calibrate(capsys, tmp_path):
    rc, out, _ = _run(capsys, "devices")
    assert rc == 0 and "h100-sxm" in out and "optical4f" in out
    rc, out, _ = _run(capsys, "devices", "h100-sxm")
    assert rc == 0 and "h100-sxm" in out
    rc, _, err = _run(capsys, "devices", "no-such-device")
    assert rc == 2 and "no-such-device" in err
    rc, out, _ = _run(capsys, "calibrate", "--quick", "--out", str(tmp_path / "me.toml"))
    assert rc == 0 and (tmp_path / "me.toml").is_file()
    rc, out, _ = _run(capsys, "cost", "--model", "mlp:64-10", "--device", str(tmp_path / "me.toml"), "--json")
    assert rc == 0 and json.loads(out)["devices"][str(tmp_path / "me.toml")]["latency_s"] > 0


@pytest.mark.parametrize("argv, needle", [
    (["train", "--model", "mlp:784-256-256-10", "--out", "{tmp}/x"], "784"),
    (["train", "--weight", "s8.x", "--out", "{tmp}/x"], "s8.x"),
    (["train", "--update", "s16.14:stochastik", "--out", "{tmp}/x"], "stochastik"),
    (["train", "--data", "mnist:{tmp}/none", "--out", "{tmp}/x"], "t10k-images-idx3-ubyte"),
    (["train", "--precision", "fixed3", "--out", "{tmp}/x"], "fixed3"),
    (["cost", "--model", "mlp:64-x-10"], "'x'"),
    (["cost", "--model", "cnn:lenet5", "--input-shape", "1xAx28"], "1xAx28"),
])
def test_bad_input_is_one_clear_line(capsys, tmp_path, argv, needle):
    rc, _, err = _run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 2 and needle in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_flag_is_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "0", "--out", "x"])
    assert info.value.code == 2 and "positive integer" in capsys.readouterr().err
    assert build_parser().parse_args(["cost"]).device is None


def test_divergence_names_layer_and_role(capsys, tmp_path):
    with pytest.warns(RuntimeWarning):
        rc, _, err = _run(capsys, "train", *TINY, "--lr", "1e30", "--out", str(tmp_path / "div"))
    assert rc == 1 and "diverged" in err and "layer 'dense" in err and "role" in err


def test_readme_preset_table_matches_presets():
    from pathlib import Path

    from hwsim._precision import PRESETS, ROLES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, roles in PRESETS.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert cells == [roles.get(r) or "–" for r in ROLES], name


def test_array_module_cupy_without_a_gpu_is_a_clean_error_before_any_write(capsys, tmp_path):
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a CUDA device is present (tests/hwsim/test_gpu_training.py covers it)")
    except Exception:  # noqa: BLE001 (no cupy, or no driver/device: the case under test)
        pass
    out = tmp_path / "run"
    for argv in (["train", "--array-module", "cupy", "--out", str(out)], ["demo", "--array-module", "cupy",
                                                                          "--out", str(out)]):
        code, stdout, err = _run(capsys, *argv)
        assert code == 2 and "--array-module cupy needs CuPy and a CUDA GPU" in err
        assert "Traceback" not in err and not out.exists()
    with pytest.raises(SystemExit) as info:
        main(["train", "--array-module", "gpu", "--out", str(out)])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err
