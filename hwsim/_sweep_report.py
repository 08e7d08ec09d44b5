"""Sweep results: ``results.csv``, ``results.json``, the Pareto front and ``report.md`` with plots.

The Pareto front of a device: the cells no other cell beats on both test accuracy (higher is better)
and energy per inference on that device (lower is better) — a cell is dominated when another has
accuracy >= and energy <= with at least one strict. Cells with equal accuracy and energy do not
dominate each other, so both stay on the front. Failed cells and NaN values take no part.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hwsim._checkpoint import atomic_write
from hwsim._precision import ROLES
from hwsim._report import format_si, md_table
from hwsim._sweep_grid import COORD_KEYS

__all__ = ["pareto_front", "plot_pareto", "result_columns", "write_results", "write_sweep_report"]

_METRICS = ("policy", *(f"bits[{r}]" for r in ROLES), "test_accuracy", "test_loss", "train_loss",
            "epoch_seconds", "train_seconds", "parameters", "model_bytes")
_TAIL = ("run", "trained_here", "resumed_from_epoch", "session", "task_seconds", "error")
#: Columns that measure time on this machine (differ run to run; everything else is reproducible).
SWEEP_TIMING_COLUMNS = ("epoch_seconds", "train_seconds", "task_seconds", "session", "trained_here",
                  "resumed_from_epoch")


def pareto_front(cost: Sequence[float], value: Sequence[float]) -> list[int]:
    """Indices (ascending) of the points not dominated when ``cost`` is minimised and ``value``
    maximised (see the module docstring); NaN points are never on the front."""
    c, v = np.asarray(cost, dtype=float), np.asarray(value, dtype=float)
    if c.shape != v.shape:
        raise ValueError(f"cost and value differ in length: {c.shape} vs {v.shape}")
    ok = ~(np.isnan(c) | np.isnan(v))
    front = []
    for i in np.flatnonzero(ok):
        dominated = ok & (c <= c[i]) & (v >= v[i]) & ((c < c[i]) | (v > v[i]))
        if not dominated.any():
            front.append(int(i))
    return front


def result_columns(device_names: Sequence[str]) -> list[str]:
    """Column order of ``results.csv``: status, every coordinate, metrics, cost per device, bookkeeping."""
    costs = [f"{q}[{d}]" for d in device_names for q in ("latency_s", "energy_j")]
    return ["cell", "status", *COORD_KEYS, *_METRICS, *costs, *_TAIL]


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_results(out: Path, rows: list[dict], device_names: Sequence[str], axes: Sequence[str]) -> None:
    """``out/results.csv`` (one row per cell, `result_columns`) and ``out/results.json`` (the same rows
    with every field, tracebacks included, plus the devices and the varying axes)."""
    columns = result_columns(device_names)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([_csv_value(row.get(c)) for c in columns])
    atomic_write(Path(out) / "results.csv", lambda f: f.write(buf.getvalue().encode()))
    doc = {"devices": list(device_names), "axes": list(axes), "columns": columns, "rows": rows}
    atomic_write(Path(out) / "results.json", lambda f: f.write((json.dumps(doc, indent=1) + "\n").encode()))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show(value) -> str:
    """A coordinate as a table shows it: an unset value (a float role, no scheme ...) as "–"."""
    return "–" if value is None or value == "" else str(value)


def _cell_label(row: dict, axes: Sequence[str]) -> str:
    return ", ".join(f"{k}={_show(row[k])}" for k in axes) or row["cell"]


def _plot_bits(ok: list[dict], path: Path) -> None:
    roles = [r for r in ROLES if len({row[f"bits[{r}]"] for row in ok}) > 1] or ["weight"]
    plt = _pyplot()
    fig, axs = plt.subplots(1, len(roles), figsize=(3.6 * len(roles), 3.4), squeeze=False)
    for ax, role in zip(axs[0], roles):
        bits = [row[f"bits[{role}]"] for row in ok]
        ax.scatter(bits, [100 * row["test_accuracy"] for row in ok], alpha=0.6)
        levels = sorted(set(bits))
        means = [100 * statistics.mean(r["test_accuracy"] for r in ok if r[f"bits[{role}]"] == b)
                 for b in levels]
        ax.plot(levels, means, color="tab:red", label="mean")
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(b) for b in levels])
        ax.set(xlabel=f"{role} bits (32 = float)", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
    axs[0][0].legend(fontsize=8)
    fig.suptitle("accuracy vs bits per role (every cell; line: mean per width)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pareto(ok: list[dict], names: Sequence[str], fronts: dict[str, list[int]], path: Path) -> None:
    """Write ``path`` (PNG): test accuracy vs energy per inference (J; a log axis when it spans more
    than a decade), one panel per device in ``names``, from sweep result rows ``ok`` (keys
    ``energy_j[<device>]``, ``test_accuracy``); the indices ``fronts[device]`` (`pareto_front`) are
    joined as that device's Pareto front."""
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter

    cols = min(3, len(names))
    rows_n = math.ceil(len(names) / cols)
    fig, axs = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.4 * rows_n), squeeze=False)
    for k, name in enumerate(names):
        ax = axs[k // cols][k % cols]
        e = [row[f"energy_j[{name}]"] for row in ok]
        a = [100 * row["test_accuracy"] for row in ok]
        ax.scatter(e, a, color="tab:gray", alpha=0.6, label="cells")
        front = sorted(fronts[name], key=lambda i: e[i])
        ax.step([e[i] for i in front], [a[i] for i in front], where="post", color="tab:red")
        ax.scatter([e[i] for i in front], [a[i] for i in front], color="tab:red", label="Pareto front")
        positive = [x for x in e if x > 0]
        if positive and max(positive) > 10 * min(positive):   # a log axis only across decades
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
        ax.set(xlabel="energy per inference (J)", ylabel="test accuracy (%)", title=name)
        ax.grid(alpha=0.3)
    for k in range(len(names), rows_n * cols):
        axs[k // cols][k % cols].axis("off")
    axs[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _seed_means(ok: list[dict], axes: Sequence[str]) -> list[list[str]]:
    keys = [k for k in axes if k != "seed"]
    groups: dict[tuple, list[float]] = {}
    for row in ok:
        groups.setdefault(tuple(row[k] for k in keys), []).append(100 * row["test_accuracy"])
    out = []
    for key, accs in groups.items():
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        out.append([*map(_show, key), f"{statistics.mean(accs):.2f} ± {sd:.2f}", len(accs),
                    f"{min(accs):.2f} … {max(accs):.2f}"])
    return [keys] + out


def write_sweep_report(out: Path, rows: list[dict], device_names: Sequence[str], axes: Sequence[str],
                       header: str) -> Path:
    """``out/report.md`` with ``accuracy_vs_bits.png`` and ``accuracy_vs_energy.png``: every cell,
    the mean over seeds (when seed is an axis), the Pareto-optimal cells per device, failed cells."""
    out = Path(out)
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    show = list(axes) or ["model"]
    lines = ["# hwsim sweep", "", header, ""]
    lines += [(f"{len(rows)} cells: {len(ok)} ok, {len(failed)} failed. Grid axes: "
               f"{', '.join(axes) if axes else '(none: one cell per grid)'}. Energy and latency: one "
               f"inference of `cost_batch` examples on each device profile."), ""]
    if ok:
        table = [[r["cell"], *(_show(r[k]) for k in show), f"{100 * r['test_accuracy']:.2f}",
                  f"{r['test_loss']:.4f}", f"{r['epoch_seconds']:.3f}", r["parameters"], r["model_bytes"],
                  *(format_si(r[f"energy_j[{d}]"], "J") for d in device_names)] for r in ok]
        lines += ["## Every cell", "", md_table(
            ["cell", *show, "test acc. (%)", "test loss", "median epoch (s)", "parameters", "model bytes",
             *(f"energy {d}" for d in device_names)], table), ""]
        if "seed" in axes:
            keys, *means = _seed_means(ok, axes)
            lines += ["## Mean over seeds", "", md_table([*keys, "test acc. (%) mean ± sd", "seeds",
                                                          "min … max"], means), ""]
        _plot_bits(ok, out / "accuracy_vs_bits.png")
        lines += ["## Accuracy vs bits per role", "", "![accuracy vs bits](accuracy_vs_bits.png)", ""]
        fronts = {d: pareto_front([r[f"energy_j[{d}]"] for r in ok], [r["test_accuracy"] for r in ok])
                  for d in device_names}
        plot_pareto(ok, device_names, fronts, out / "accuracy_vs_energy.png")
        lines += ["## Accuracy vs energy per device (Pareto front in red)", "",
                  "![accuracy vs energy](accuracy_vs_energy.png)", ""]
        for d in device_names:
            front = sorted(fronts[d], key=lambda i: ok[i][f"energy_j[{d}]"])
            lines += [f"### Pareto-optimal cells on {d}", "", md_table(
                ["cell", "coordinates", "test acc. (%)", "energy", "latency"],
                [[ok[i]["cell"], _cell_label(ok[i], axes), f"{100 * ok[i]['test_accuracy']:.2f}",
                  format_si(ok[i][f"energy_j[{d}]"], "J"), format_si(ok[i][f"latency_s[{d}]"], "s")]
                 for i in front]), ""]
    if failed:
        lines += ["## Failed cells", "", md_table(["cell", "coordinates", "error"], [
            [r["cell"], _cell_label(r, axes), str(r["error"]).replace("|", "/").replace("\n", " ")]
            for r in failed]), ""]
    lines += [("Files: `results.csv` / `results.json` (one row per cell), `runs/<run>/` (each training "
               "run, as `hwsim train` writes it: `hwsim eval` / `hwsim report` work on it), "
               "`cells/<cell>.json`."), ""]
    path = out / "report.md"
    atomic_write(path, lambda f: f.write("\n".join(lines).encode()))
    return path


def load_average() -> str:
    """``os.getloadavg()`` as text (the machine is shared: timings depend on it)."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"
