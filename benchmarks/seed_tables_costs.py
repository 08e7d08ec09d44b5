"""Recompute the device costs of reports/benchmarks/seed_tables.md with the current cost model.

That report comes from ``hwsim sweep examples/seed_precision_tables.toml`` (its tables written from the
sweep's report.md, which is not committed). A cell's cost depends on its network's shape and the widths
it is costed at, not on its trained weights, so this script trains nothing: it rebuilds each grid's
network (untrained), applies the cell's post-training quantization width as the sweep does
(``hwsim.compression.post_training_quantize``, weights costed at that width, activations float32), costs
one inference (batch 1, the grid's ``cost_batch``) on the grid's devices, and rewrites

- the PTQ table's energy columns,
- ``seed_tables_accuracy_vs_energy.png`` (every cell: the per-seed accuracies printed in the report's two
  tables, which are exact — 2,000 test images give multiples of 0.05 % — against the new energies,
  drawn by the sweep report's own plot),

each with a dated note; every accuracy, byte count and date stays as the sweep run wrote it.

    python benchmarks/seed_tables_costs.py
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cost_refresh
import tomllib

import devices
import fixedpoint
import hwsim
from hwsim import pareto_front, plot_pareto
from hwsim.compression import post_training_quantize

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "examples" / "seed_precision_tables.toml"
REPORT = ROOT / "reports" / "benchmarks" / "seed_tables.md"
FIGURE = "seed_tables_accuracy_vs_energy.png"
COMMAND = "python benchmarks/seed_tables_costs.py"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def cell_cost(spec: str, ptq_bits: int | None, names: list[str]) -> dict[str, devices.Estimate]:
    """{device: estimate} of one inference (batch 1) of an untrained ``spec`` (MNIST, 10 classes) after
    post-training quantization to ``ptq_bits`` (None: float), as a sweep cell costs it."""
    net = hwsim.build_model(spec, (784,), 10, seed=0)
    precision = hwsim.Precision()
    if ptq_bits is not None:
        net = post_training_quantize(net, ptq_bits)[0]
        precision = precision.replace(weight=hwsim.RoleFormat(fixedpoint.Fixed(ptq_bits, ptq_bits - 1)))
    wl = hwsim.workload(net, precision, batch=1)
    return {name: devices.estimate(wl, name) for name in names}


def _tables(text: str) -> list[tuple[list[str], list[int]]]:
    """The report's markdown tables as (header cells, line indices of the body rows)."""
    lines, out = text.split("\n"), []
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            body = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                body.append(j)
                j += 1
            out.append((_cells(line), body))
    return out


def refresh(report: Path = REPORT, grid: Path = GRID) -> None:
    """Rewrite the PTQ energies and the accuracy-vs-energy figure of ``report`` (see the module doc)."""
    config = tomllib.loads(grid.read_text())
    names = list(config["defaults"]["devices"])
    ptq_spec, gupta_spec = (g["model"] for g in config["grid"])
    text = report.read_text()
    since = cost_refresh.measured_on(report)
    lines = cost_refresh.strip_notes(text).split("\n")
    (ptq_head, ptq_rows), (gupta_head, gupta_rows) = _tables("\n".join(lines))[:2]
    seeds_at = ptq_head.index("per seed")
    energy_at = {i: h.removesuffix(" energy") for i, h in enumerate(ptq_head) if h.endswith(" energy")}
    points = []   # one per cell: test accuracy and energy per device, as a sweep result row
    for i in ptq_rows:
        c = _cells(lines[i])
        bits = None if c[0] == "32 (float)" else int(c[0])
        cost = cell_cost(ptq_spec, bits, names)
        for at, name in energy_at.items():
            c[at] = hwsim.format_si(float(cost[name].energy_j), "J")
        lines[i] = "| " + " | ".join(c) + " |"
        points += [(acc, cost) for acc in c[seeds_at].split(" / ")]
    gupta_cost = cell_cost(gupta_spec, None, names)   # the update role does not change an inference
    points += [(acc, gupta_cost) for i in gupta_rows for acc in _cells(lines[i])[gupta_head.index("per seed")]
               .split(" / ")]
    ok = [{"test_accuracy": float(acc) / 100, **{f"energy_j[{n}]": float(e[n].energy_j) for n in names}}
          for acc, e in points]
    fronts = {n: pareto_front([r[f"energy_j[{n}]"] for r in ok], [r["test_accuracy"] for r in ok])
              for n in names}
    plot_pareto(ok, names, fronts, report.parent / FIGURE)
    note = cost_refresh.note(COMMAND, since, cost_refresh.BEFORE_2FE4750)
    figure = next(i for i, line in enumerate(lines) if f"({FIGURE})" in line)
    lines[figure + 1:figure + 1] = ["", note]
    lines[ptq_rows[-1] + 1:ptq_rows[-1] + 1] = ["", note]
    report.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", type=Path, default=REPORT)
    args = ap.parse_args(argv)
    refresh(args.report)
    print(f"rewrote the device costs of {args.report} and {args.report.parent / FIGURE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
