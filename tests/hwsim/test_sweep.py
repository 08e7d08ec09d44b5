"""hwsim sweep: grid expansion and validation, Pareto fronts, and small sweeps on a LocalCluster
(the issue's 4-cell grid with 1 and 2 workers, resume after a simulated crash, a failing cell)."""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
from pathlib import Path

import pytest
from distributed import LocalCluster

import hwsim
from hwsim import SWEEP_TIMING_COLUMNS, pareto_front
from hwsim._sweep_cell import _train_argv, read_cell
from hwsim._sweep_grid import expand_grid, optical_profile
from hwsim.cli import main
from tests.conftest import SHARED

# The grid of the issue, as written.
MINIMAL = """[grid]                      # every list is a grid axis; scalars are shared by all cells
model = ["mlp:64-32-10"]
data = "digits"
precision = ["fp32", "fixed8"]
seed = [0, 1]
epochs = 3
devices = ["stm32h743", "h100-sxm"]
"""
DEVICES = ("stm32h743", "h100-sxm")


def _grid(**keys) -> dict:
    return {"grid": {"model": "mlp:64-16-10", "epochs": 1, "devices": ["stm32h743"], **keys}}


# ---- grid expansion and validation ---------------------------------------------------------------

def test_minimal_grid_expands_to_four_cells_and_runs():
    g = expand_grid({"grid": {"model": ["mlp:64-32-10"], "data": "digits", "precision": ["fp32", "fixed8"],
                              "seed": [0, 1], "epochs": 3, "devices": list(DEVICES)}})
    assert len(g.cells) == 4 and len(g.runs) == 4 and g.devices == list(DEVICES)
    assert g.axes == ["precision", "seed"]
    assert [(c["precision"], c["seed"]) for c in g.cells] == [("fp32", 0), ("fp32", 1), ("fixed8", 0),
                                                              ("fixed8", 1)]
    assert (len({c["cell"] for c in g.cells}) == 4
            and all(c["epochs"] == 3 and c["lr"] == 1e-3 for c in g.cells))


def test_post_training_axes_share_training_runs_and_grids_pool():
    g = expand_grid({"defaults": {"model": "mlp:64-16-10", "epochs": 1, "devices": ["stm32h743"]},
                     "grid": [{"seed": [0, 1], "ptq_bits": ["none", 8, 6]},
                              {"seed": 0, "ptq_bits": 8},                      # already in grid 1
                              {"seed": 0, "update": ["s16.14:nearest_even", "s16.14:stochastic"]}]})
    assert len(g.cells) == 6 + 2 and len(g.runs) == 2 + 2
    assert sum(c["ptq_bits"] is None for c in g.cells) == 4
    assert {c["run"] for c in g.cells if c["seed"] == 1} == {g.cells[3]["run"]}


@pytest.mark.parametrize("keys, match", [
    ({"modle": "mlp:64-16-10"}, "unknown key.*'modle'"),
    ({"seed": []}, "'seed' is an empty list"),
    ({"epochs": "3"}, "key 'epochs': expected int"),
    ({"epochs": 0}, "key 'epochs': must be >= 1"),
    ({"lr": -1.0}, "key 'lr': must be > 0"),
    ({"precision": "fixed7"}, "key 'precision': 'fixed7' is not a preset"),
    ({"weight": "s8.x"}, "bad format token"),
    ({"scheme": "binaryconect"}, "unknown scheme 'binaryconect'"),
    ({"scheme": "binaryconnect", "precision": "fixed8"}, "a scheme sets the precision policy"),
    ({"model": "mlp:63-16-10"}, "model=.*mlp:63-16-10"),
    ({"devices": ["stm32h999"]}, "unknown profile 'stm32h999'"),
    ({"ptq_bits": 1}, "'ptq_bits': must be in \\[2, 62\\]"),
    ({"optical": {"modulator": {"bitz": 4}}, "devices": ["optical4f"]}, "'modulator.bitz' is not in"),
    ({"optical": {"modulator": {"bits": 4}}}, "no optical4f profile"),
    ({"mode": "exact", "precision": "fixed8"}, "mode='exact' needs Fixed formats"),
])
def test_bad_grids_name_the_key(keys, match):
    with pytest.raises(ValueError, match=match):
        expand_grid(_grid(**keys))


def test_spec_needs_a_grid_table_and_a_model():
    with pytest.raises(ValueError, match="unknown table.*sweep"):
        expand_grid({"grid": {"model": "mlp:64-16-10"}, "sweep": {}})
    with pytest.raises(ValueError, match="'model' is required"):
        expand_grid({"grid": {"seed": [0, 1]}})
    with pytest.raises(ValueError, match="same devices"):
        expand_grid({"grid": [_grid()["grid"], _grid(devices=["h100-sxm"])["grid"]]})


def test_optical_overrides_apply_to_optical_profiles_only():
    prof = optical_profile("optical4f", {"modulator": {"bits": 4}, "photons_per_pixel": 1000})
    assert prof.data["optical"]["modulator"]["bits"] == 4 and prof.optical.noise_model().dac_bits == 4
    assert prof.data["optical"]["photons_per_pixel"] == 1000.0
    assert optical_profile("optical4f", None).data["optical"]["modulator"]["bits"] == 8   # shipped unchanged
    assert optical_profile("stm32h743", {"modulator": {"bits": 4}}).kind != "optical4f"
    with pytest.raises(ValueError, match="must be an integer"):
        optical_profile("optical4f", {"modulator": {"bits": 4.5}})


def test_cli_refuses_a_bad_grid_before_writing(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('[grid]\nmodel = "mlp:64-16-10"\nepoch = 3\n')
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key(s) 'epoch'" in err and "allowed keys" in err
    assert not (tmp_path / "out").exists()


def test_cli_without_dask_names_the_extra(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "g.toml"
    spec.write_text(MINIMAL)
    monkeypatch.setitem(sys.modules, "distributed", None)      # import distributed -> ImportError
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[sweep]'" in err and not (tmp_path / "out").exists()


# ---- Pareto front --------------------------------------------------------------------------------

def test_pareto_front_on_a_hand_made_table():
    #            0     1     2     3     4     5     6          7
    energy = [1.0, 2.0, 2.0, 3.0, 0.5, 3.0, math.nan, 2.0]
    acc = [0.80, 0.90, 0.85, 0.90, 0.60, 0.95, 0.99, 0.90]
    # 2 is beaten by 1 (same energy, higher acc); 3 by 1 (same acc, lower energy); 1 and 7 tie (both stay);
    # the NaN point never counts.
    assert pareto_front(energy, acc) == [0, 1, 4, 5, 7]
    assert pareto_front([], []) == []
    assert pareto_front([1.0], [math.nan]) == []
    with pytest.raises(ValueError, match="differ in length"):
        pareto_front([1.0, 2.0], [0.5])


# ---- sweeps on a LocalCluster --------------------------------------------------------------------

def _rows(path) -> list[dict]:
    with open(path / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _reproducible(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in SWEEP_TIMING_COLUMNS} for r in rows]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "grid.toml"
    path.write_text(MINIMAL)
    return path


@pytest.fixture(scope="module")
def two_workers(spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "w2"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    return out


def test_minimal_grid_writes_results_and_report(two_workers):
    rows = _rows(two_workers)
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    for col in ("model", "precision", "seed", "test_accuracy", "test_loss", "epoch_seconds", "parameters",
                "model_bytes", *(f"{q}[{d}]" for d in DEVICES for q in ("latency_s", "energy_j"))):
        assert all(r[col] != "" for r in rows), col
    assert all(0.3 < float(r["test_accuracy"]) <= 1.0 for r in rows)
    by = {(r["precision"], r["seed"]): r for r in rows}
    # 8-bit weights: a quarter of the float32 bytes, and cheaper on the microcontroller
    assert int(by["fixed8", "0"]["model_bytes"]) * 4 == int(by["fp32", "0"]["model_bytes"])
    assert float(by["fixed8", "0"]["energy_j[stm32h743]"]) < float(by["fp32", "0"]["energy_j[stm32h743]"])
    doc = json.loads((two_workers / "results.json").read_text())
    assert doc["devices"] == list(DEVICES) and len(doc["rows"]) == 4
    report = (two_workers / "report.md").read_text()
    assert "Pareto-optimal cells on stm32h743" in report and "Mean over seeds" in report
    assert (two_workers / "accuracy_vs_energy.png").stat().st_size > 0
    assert (two_workers / "accuracy_vs_bits.png").stat().st_size > 0
    # each training run is an ordinary `hwsim train` folder
    run = two_workers / "runs" / rows[0]["run"]
    assert main(["eval", str(run), "--json"]) == 0


def test_one_and_two_workers_give_identical_results(spec, two_workers, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    out = tmp_path / "w1"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert "OPENBLAS_NUM_THREADS" not in os.environ          # the workers' settings stay in the workers
    assert _reproducible(_rows(out)) == _reproducible(_rows(two_workers))


def test_second_sweep_into_the_same_folder_needs_resume(spec, two_workers, capsys):
    assert main(["sweep", str(spec), "--out", str(two_workers), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_after_a_crash_keeps_finished_cells(spec, two_workers, tmp_path):
    out = tmp_path / "crashed"
    shutil.copytree(two_workers, out)
    rows = _rows(out)
    keep, lost_row, killed = rows[0], rows[1], rows[2]
    kept_text = (out / "cells" / f"{keep['cell']}.json").read_text()
    # the crash: one cell's row never written (its run finished), one run killed after epoch 1 of 3
    (out / "cells" / f"{lost_row['cell']}.json").unlink()
    (out / "cells" / f"{killed['cell']}.json").unlink()
    shutil.rmtree(out / "runs" / killed["run"])
    partial = out / "runs" / f"{killed['run']}.partial"
    cell = next(c for c in expand_grid(str(spec)).cells if c["cell"] == killed["cell"])
    assert main(_train_argv({**cell, "epochs": 1}, partial, resume=False)) == 0
    assert main(["sweep", str(spec), "--out", str(out), "--resume", "--quiet"]) == 0
    assert (out / "cells" / f"{keep['cell']}.json").read_text() == kept_text     # untouched
    new = {r["cell"]: r for r in _rows(out)}
    assert new[lost_row["cell"]]["trained_here"] == "False"                      # loaded, not retrained
    assert new[killed["cell"]]["trained_here"] == "True" and new[killed["cell"]]["resumed_from_epoch"] == "1"
    assert not partial.exists() and (out / "runs" / killed["run"] / "metrics.json").is_file()
    # resuming from the checkpoint gives the uninterrupted run's numbers, bit for bit
    assert _reproducible(list(new.values())) == _reproducible(rows)


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path, capsys):
    spec = tmp_path / "g.toml"
    spec.write_text('[grid]\nmodel = "mlp:64-16-10"\nepochs = 2\n'
                    'lr = [1e-2, 1e30]\ndevices = ["stm32h743"]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"]) == 1
    assert "1 cell(s) failed" in capsys.readouterr().err
    ok, bad = _rows(out)
    assert ok["status"] == "ok" and float(ok["test_accuracy"]) > 0.2 and ok["error"] == ""
    assert bad["status"] == "failed" and "DivergenceError" in bad["error"] and "diverged" in bad["error"]
    assert read_cell(out, bad["cell"])["traceback"].startswith("Traceback")
    assert "## Failed cells" in (out / "report.md").read_text()


# ---- the example grids ---------------------------------------------------------------------------

def test_example_grids_are_valid(monkeypatch):
    root = Path(__file__).resolve().parents[2]
    minimal = expand_grid(root / "examples" / "minimal_grid.toml")
    assert len(minimal.cells) == 4 and minimal.devices == list(DEVICES)
    if not (SHARED / "data" / "mnist").is_dir():
        pytest.skip("../shared/data/mnist not present")
    monkeypatch.chdir(root)                          # the example names MNIST relative to the repo root
    seed = expand_grid(root / "examples" / "seed_precision_tables.toml")
    assert len(seed.cells) == 3 * 6 + 3 * 3 and len(seed.runs) == 3 + 3 * 3
    assert {c["label"] for c in seed.cells} == {"PTQ", "Gupta update rounding"}


def test_sweep_on_an_existing_scheduler(tmp_path):
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        rows = hwsim.sweep(_grid(ptq_bits=["none", 4]), tmp_path / "out", scheduler=cluster.scheduler_address,
                           progress=False)
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[0]["run"] == rows[1]["run"]
    assert rows[1]["bits[weight]"] == 4 and rows[1]["model_bytes"] * 8 == rows[0]["model_bytes"]
    assert "scheduler tcp://" in (tmp_path / "out" / "report.md").read_text()
