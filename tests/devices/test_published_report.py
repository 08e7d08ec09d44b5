"""bench_devices --only-published rewrites the published-vs-predicted section of a report and nothing else."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("matplotlib")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_devices  # noqa: E402
import published  # noqa: E402


def test_only_published_rewrites_that_section_alone(tmp_path):
    report = tmp_path / "devices.md"
    head = "# devices\n\n## Whole networks\n\nmeasured 2026-12-04, kept\n\n"
    tail = "\n## Calibration fidelity\n\nkept too\n"
    report.write_text(head + bench_devices.PUBLISHED_HEADING + "\nstale table\n" + tail)
    assert bench_devices.main(["--out", str(report), "--only-published"]) == 0
    text = report.read_text()
    assert text.startswith(head + bench_devices.PUBLISHED_HEADING) and text.endswith(tail)
    assert "stale table" not in text and "Held out: " in text
    assert all(f"without {m}" in text for m in published.MECHANISMS)
    assert (tmp_path / "devices_published.png").stat().st_size > 0


def test_predict_without_names_a_mechanism():
    row = next(p for p in published.PUBLISHED if p.net == "fc_autoencoder")
    with_stalls, without = published.predict(row)[0], published.predict(row, without="flash stalls")[0]
    assert with_stalls > without  # the flash stall adds to the compute time
    with pytest.raises(ValueError, match="without must be one of"):
        published.predict(row, without="magic")
