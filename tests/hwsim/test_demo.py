"""``hwsim demo --quick``: tables on stdout, report.md and both plots in --out (CI runs the full demo)."""
from __future__ import annotations

import devices
from hwsim._demo import POLICIES
from hwsim.cli import main


def test_quick_demo_writes_report(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    labels = [label for label, _, _ in POLICIES]
    assert all(f"| {label} |" in out for label in labels)
    for name in devices.list_profiles():
        assert f"| {name} |" in out
    report = (tmp_path / "report.md").read_text()
    assert "accuracy_vs_bits.png" in report and "energy_per_device.png" in report
    assert "| fp32 |" in report and "s16.14:stochastic" in report
    for png in ("accuracy_vs_bits.png", "energy_per_device.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_report_helpers_are_public():
    import hwsim

    assert {"format_si", "md_table"} <= set(hwsim.__all__)
    assert hwsim.format_si(3.2e-6, "s") == "3.2 µs" and hwsim.format_si(0, "J") == "0 J"
    assert hwsim.format_si(1.5e3, "J") == "1.5 kJ"
    assert hwsim.md_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"
