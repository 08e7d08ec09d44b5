"""Markdown reports with PNG plots: one training run (``hwsim report``) and the demo (``hwsim demo``).

Plots are drawn with matplotlib's non-interactive Agg backend (no display needed) and referenced from
the markdown by file name, so a report folder can be moved as a whole.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from hwsim._checkpoint import atomic_write

__all__ = ["md_table", "write_run_report", "write_demo_report", "format_si"]


def format_si(value: float, unit: str) -> str:
    """``value`` with an SI prefix and 3 significant digits, e.g. ``format_si(3.2e-6, "s") == "3.2 µs"``."""
    if value == 0 or value != value:
        return f"{value:.3g} {unit}"
    for factor, prefix in ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1, ""),
                           (1e3, "k"), (1e6, "M")):
        if abs(value) < factor * 1000:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (cells converted with ``str``)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def _precision_summary(policy: dict) -> str:
    """The non-float roles of a ``Precision.to_dict()`` and its mode, on one line (absent/None = float32)."""
    roles = ("weight", "activation", "error", "grad", "update", "acc")
    parts = [f"{r}={policy[r]}" for r in roles if policy.get(r) is not None]
    if parts and policy.get("mode"):
        parts.append(f"mode={policy['mode']}")
    return ", ".join(parts) if parts else "fp32 (no quantization)"


def _quant_health_rows(health: Any) -> list[list[str]]:
    """Rows (layer, role, saturated %, flushed %) from the last epoch of ``metrics['quant_health']``."""
    if not health:
        return []
    last = health[-1] if isinstance(health, list) else health
    rows = []
    for layer, roles in last.items():
        for role, stat in roles.items():
            rows.append([layer, role, f"{100 * stat['saturated']:.3f}",
                         f"{100 * stat['flushed_to_zero']:.3f}"])
    return rows


def write_run_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.md`` and ``curves.png`` for the run in ``run_dir``; returns the report path.

    Needs ``run_dir/metrics.json`` (written by ``hwsim train``); raises FileNotFoundError naming it.
    """
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"no metrics.json in {run_dir} (run 'hwsim train --out {run_dir}' first)")
    metrics = json.loads(metrics_path.read_text())
    out = Path(out) if out is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)

    losses = list(metrics.get("train_loss", []))
    regression = "test_mse" in metrics
    accs = list(metrics.get("test_mse_per_epoch" if regression else "test_accuracy_per_epoch", []))
    seconds = list(metrics.get("epoch_seconds", []))
    plt = _pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].plot(range(1, len(losses) + 1), losses, marker="o")
    ax[0].set(xlabel="epoch", ylabel="training loss", title="loss")
    ax[1].plot(range(1, len(accs) + 1), accs if regression else [100 * a for a in accs], marker="o",
               color="tab:green")
    ax[1].set(xlabel="epoch", ylabel="test mse" if regression else "test accuracy (%)",
              title="mse" if regression else "accuracy")
    _save(fig, out / "curves.png")

    lines = [f"# Training run `{run_dir}`", ""]
    lines += [md_table(["quantity", "value"], [
        ["test mse", f"{metrics['test_mse']:.6g}"] if regression else
        ["test accuracy", f"{100 * metrics['test_accuracy']:.2f} %"],
        ["final training loss", f"{losses[-1]:.4f}" if losses else "-"],
        ["epochs", len(seconds)],
        ["median epoch time", f"{sorted(seconds)[len(seconds) // 2]:.2f} s" if seconds else "-"],
        ["precision", _precision_summary(metrics.get("precision") or {})],
    ]), "", "![loss and accuracy per epoch](curves.png)", ""]
    health = _quant_health_rows(metrics.get("quant_health"))
    if health:
        lines += ["## Quantization health (last epoch)", "",
                  md_table(["layer", "role", "saturated (%)", "flushed to zero (%)"], health), ""]
    path = out / "report.md"
    atomic_write(path, lambda f: f.write("\n".join(lines).encode()))
    return path


def write_demo_report(out: str | Path, results: list[dict], costs: dict[str, dict[str, dict]],
                      header: str) -> Path:
    """Write the demo's ``report.md``, ``accuracy_vs_bits.png`` and ``energy_per_device.png``.

    ``results``: one dict per policy with ``label``, ``bits`` (weight/activation width, 32 for fp32),
    ``test_accuracy`` (fraction), ``epoch_seconds`` (list) and ``precision`` (policy dict).
    ``costs[device][label]``: ``latency_s``, ``energy_j`` and ``dynamic_energy_j`` of one inference
    (batch 1).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(5, 3.5))
    bits = [r["bits"] for r in results]
    ax.plot(bits, [100 * r["test_accuracy"] for r in results], marker="o")
    ax.set_xscale("log", base=2)
    ax.set_xticks(bits, [str(b) for b in bits])
    ax.set(xlabel="weight / activation bits", ylabel="test accuracy (%)", title="accuracy vs bits")
    ax.grid(alpha=0.3)
    _save(fig, out / "accuracy_vs_bits.png")

    devices_ = list(costs)
    labels = [r["label"] for r in results]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(devices_)), 4))
    width = 0.8 / max(1, len(labels))
    for j, label in enumerate(labels):
        xs = [i + (j - (len(labels) - 1) / 2) * width for i in range(len(devices_))]
        ax.bar(xs, [costs[d][label]["dynamic_energy_j"] for d in devices_], width, label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(devices_)), devices_, rotation=20, ha="right")
    ax.set(ylabel="dynamic energy per inference (J)",
           title="energy per inference without static power, batch 1")
    ax.legend(fontsize=8)
    _save(fig, out / "energy_per_device.png")

    acc_rows = [[r["label"], _precision_summary(r["precision"]), f"{100 * r['test_accuracy']:.2f}",
                 f"{sorted(r['epoch_seconds'])[len(r['epoch_seconds']) // 2]:.3f}"] for r in results]
    cost_rows = [[d] + [f"{format_si(costs[d][label]['latency_s'], 's')} / "
                        f"{format_si(costs[d][label]['energy_j'], 'J')}"
                        for label in labels] for d in devices_]
    text = "\n".join([
        "# hwsim demo", "", header, "",
        "## Accuracy", "", md_table(["policy", "roles", "test accuracy (%)", "median epoch (s)"], acc_rows),
        "", "![accuracy vs bits](accuracy_vs_bits.png)", "",
        "## Cost of one inference (latency / energy, batch 1)", "",
        md_table(["device"] + labels, cost_rows), "",
        "Every op of a batch-1 inference of a small MLP is tiny: where a device has a per-op launch "
        "overhead (GPUs, CPUs) that overhead is the latency and static power over it most of the "
        "energy, so bit width changes little there; devices that pay per operation (the "
        "microcontroller) show the effect of narrower formats. `hwsim cost --layers` gives the bound "
        "of every layer.", "",
        "## Dynamic energy of one inference (arithmetic + memory traffic, without static power)", "",
        md_table(["device"] + labels, [[d] + [format_si(costs[d][label]["dynamic_energy_j"], "J")
                                              for label in labels]
                                       for d in devices_]), "",
        "![dynamic energy per inference per device](energy_per_device.png)", "",
    ])
    path = out / "report.md"
    atomic_write(path, lambda f: f.write(text.encode()))
    return path
