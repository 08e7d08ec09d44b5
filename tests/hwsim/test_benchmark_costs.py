"""The benchmarks' --only-costs refreshes rewrite a stored report's device costs with the current cost model
and nothing else: every measured figure, line and date stays, and one dated note names the refresh."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

import devices
import hwsim

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports" / "benchmarks"
sys.path.insert(0, str(ROOT / "benchmarks"))
pytest.importorskip("matplotlib")
# The benchmark scripts pin BLAS/OpenMP/Numba threads to 1 when imported (os.environ.setdefault): keep
# that out of the test process, where a later Numba compile would read NUMBA_NUM_THREADS=1 after the
# thread pool started with another count (RuntimeError) and every later test would run single-threaded.
_ENVIRON = dict(os.environ)
import bench_conditional  # noqa: E402
import bench_noise  # noqa: E402
import bench_optics  # noqa: E402
import bench_schemes  # noqa: E402
import bench_structured  # noqa: E402
import cost_refresh  # noqa: E402
import seed_tables_costs  # noqa: E402

os.environ.clear()
os.environ.update(_ENVIRON)

NOTE = re.compile(r"^Device costs recomputed on \d{4}-\d\d-\d\d \(`python benchmarks/\S+( --only-costs)?`\) "
                  r"after the cost-model change: .*; the other figures are from (.+)\.$")


def _notes(text: str) -> list[str]:
    return [m.group(2) for line in text.splitlines() if (m := NOTE.match(line))]


def _without_notes(text: str) -> list[str]:
    return cost_refresh.strip_notes(text).splitlines()


def test_replace_section_keeps_the_other_sections():
    text = "# t\n\n## 1. a\n\nold\n\n### sub\n\nold too\n\n## 2. b\n\nkept\n"
    out = cost_refresh.replace_section(text, "## 1. a", "## 1. a\n\nnew\n")
    assert out == "# t\n\n## 1. a\n\nnew\n\n## 2. b\n\nkept\n"
    last = cost_refresh.replace_section(out, "## 2. b", "## 2. b\n\nlast")
    assert last == "# t\n\n## 1. a\n\nnew\n\n## 2. b\n\nlast\n"


def test_a_later_refresh_keeps_the_measured_date(tmp_path):
    report = tmp_path / "r.md"
    note = cost_refresh.note("python benchmarks/x.py --only-costs", "2026-01-02")
    report.write_text("| a |\n\n" + note + "\n")
    assert cost_refresh.measured_on(report) == "2026-01-02"
    assert cost_refresh.strip_notes(report.read_text()) == "| a |\n"
    (tmp_path / "new.md").write_text("no note\n")   # and no git history
    assert cost_refresh.measured_on(tmp_path / "new.md") == "an earlier run"
    assert cost_refresh.measured_on(REPORTS / "devices.md") != "an earlier run"   # its last commit's date


def test_bench_noise_only_costs_rewrites_section_4_alone(tmp_path):

    head = "# noise\n\nCommand: `x` (load 1 2 3)\n\n## 3. Unique\n\nkept 39.3 %\n\n"
    section = "## 4. What the injected noise costs (`hwsim.workload` + `devices.estimate`)"
    tail = "\n## Reading the results (written after the run above)\n\n- hand-written, kept\n"
    report = tmp_path / "noise.md"
    report.write_text(head + section + "\n\n| stale | table |\n" + tail)
    for _ in range(2):   # a second refresh replaces the first one's note
        assert bench_noise.main(["--out", str(report), "--only-costs"]) == 0
    text = report.read_text()
    assert text.startswith(head + section) and text.endswith(tail)
    assert "stale" not in text and len(_notes(text)) == 1
    model = hwsim.build_model("seq:784,dense(128),hard_tanh,dense(10)", (784,), 10)
    est = devices.estimate(hwsim.workload(model, hwsim.Precision(), batch=100, training=True), "h100-sxm")
    assert f"| hard-tanh | fp32 | h100-sxm | {1e6 * est.latency_s:.3g} |" in text


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@pytest.mark.skipif(not (REPORTS / "schemes.md").is_file(), reason="no stored schemes report")
def test_bench_schemes_only_costs_changes_cost_cells_only(tmp_path):

    report = tmp_path / "schemes.md"
    report.write_text((REPORTS / "schemes.md").read_text())
    before = _without_notes(report.read_text())
    bench_schemes.main(["--out", str(report), "--only-costs"])
    text = report.read_text()
    after = _without_notes(text)
    assert len(after) == len(before) and _notes(text)
    n = len(bench_schemes.DEVICES)
    for old, new in zip(before, after):
        if old != new:   # only a table row's last len(DEVICES) cells may change
            assert old.startswith("| ") and _cells(old)[:-n] == _cells(new)[:-n]
    student = hwsim.build_model("mlp:784-32-10", (784,), 10, seed=0)
    cells = bench_schemes._cost_cells(bench_schemes._cost(student))
    assert f"| student mlp:784-32-10, distilled | 94.35 | {cells} |" in text


@pytest.mark.skipif(not (REPORTS / "conditional.json").is_file(), reason="no stored conditional results")
def test_bench_conditional_only_costs_checks_the_sparsity(tmp_path, monkeypatch):

    raw = json.loads((REPORTS / "conditional.json").read_text())
    raw["speed_rows"] = [r for r in raw["speed_rows"] if r.get("bs") == 64][:1] + raw["speed_rows"][-1:]
    stored = dict(raw["speed_rows"][0]["devices"])
    monkeypatch.setattr(bench_conditional, "OUT", tmp_path)
    (tmp_path / "conditional.json").write_text(json.dumps(raw))
    assert bench_conditional.main(["--only-costs"]) == 0
    new = json.loads((tmp_path / "conditional.json").read_text())
    assert set(new["speed_rows"][0]["devices"]) == set(stored)
    assert new["speed_rows"][0]["fwd"] == raw["speed_rows"][0]["fwd"]   # the measured ratio stays
    text = (tmp_path / "conditional.md").read_text()
    assert len(_notes(text)) == 1 and new["cost_note"] in text
    new["speed_rows"][0]["sparsity"] += 0.01   # a stored sparsity the layer no longer gives is refused
    (tmp_path / "conditional.json").write_text(json.dumps(new))
    with pytest.raises(SystemExit, match="gate sparsity"):
        bench_conditional.main(["--only-costs"])


@pytest.mark.skipif(not (REPORTS / "optics.json").is_file(), reason="no stored optics results")
def test_bench_optics_only_costs_keeps_the_accuracies(tmp_path, monkeypatch):

    res = json.loads((REPORTS / "optics.json").read_text())
    for name in bench_optics.MODELS:
        res[name]["loop"] = res[name]["loop"][:1]
    monkeypatch.setattr(bench_optics, "OUT", tmp_path)
    monkeypatch.setattr(bench_optics, "RESULTS", tmp_path / "optics.json")
    (tmp_path / "optics.json").write_text(json.dumps(res))
    assert bench_optics.main(["--only-costs"]) == 0
    new = json.loads((tmp_path / "optics.json").read_text())
    for name in bench_optics.MODELS:
        assert [q["accuracy"] for q in new[name]["loop"]] == [q["accuracy"] for q in res[name]["loop"]]
        assert set(new[name]["hosts"]) == set(bench_optics.HOSTS)
        assert all(q["energy_j"] > q["dynamic_j"] > 0 for q in new[name]["grid"] + new[name]["loop"])
    assert len(_notes((tmp_path / "optics.md").read_text())) == len(bench_optics.MODELS)


@pytest.mark.skipif(not (REPORTS / "structured.json").is_file(), reason="no stored structured results")
def test_bench_structured_only_costs_rewrites_section_2_alone(tmp_path, monkeypatch):

    store = json.loads((REPORTS / "structured.json").read_text())
    store["mnist"]["rows"] = store["mnist"]["rows"][-2:]   # the two LeNet rows: quick
    store["mnist"].pop("cost_note", None)
    monkeypatch.setattr(bench_structured, "OUT", tmp_path)
    (tmp_path / "structured.json").write_text(json.dumps(store))
    head, tail = "# s\n\nLast command: `x`\n\n", "## 3. Speed on this CPU\n\nkept 31.3×\n"
    (tmp_path / "structured.md").write_text(head + bench_structured.MNIST_HEADING + "\n\nstale\n\n" + tail)
    assert bench_structured.main(["--only-costs"]) == 0
    text = (tmp_path / "structured.md").read_text()
    assert text.startswith(head + bench_structured.MNIST_HEADING) and text.endswith(tail)
    assert "stale" not in text and len(_notes(text)) == 1
    rows = json.loads((tmp_path / "structured.json").read_text())["mnist"]["rows"]
    assert [r["acc"] for r in rows] == [r["acc"] for r in store["mnist"]["rows"]]
    assert all(set(r["cost"]) == set(bench_structured.DEVICES) for r in rows)


@pytest.mark.skipif(not (REPORTS / "seed_tables.md").is_file(), reason="no stored seed-tables report")
def test_seed_tables_costs_rewrites_the_energy_columns_and_figure(tmp_path):

    report = tmp_path / "seed_tables.md"
    report.write_text((REPORTS / "seed_tables.md").read_text())
    before = _without_notes(report.read_text())
    seed_tables_costs.refresh(report)
    text = report.read_text()
    after = _without_notes(text)
    assert len(after) == len(before) and len(_notes(text)) == 2
    for old, new in zip(before, after):
        if old != new:   # the two energy columns of the PTQ table, nothing else
            assert _cells(old)[:-2] == _cells(new)[:-2]
    cost = seed_tables_costs.cell_cost("mlp:784-300-100-10", 8, ["stm32h743"])["stm32h743"]
    assert f"| 266610 | {hwsim.format_si(float(cost.energy_j), 'J')} |" in text
    assert (tmp_path / seed_tables_costs.FIGURE).stat().st_size > 0
