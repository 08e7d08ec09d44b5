"""Estimate output: markdown table, CSV file, roofline PNG (matplotlib, Agg backend)."""
from __future__ import annotations

import csv as _csv
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ._io import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from ._model import Estimate

_MD_COLS = ("name", "part", "op_class", "bound", "latency_s", "energy_j", "utilisation", "intensity")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def markdown(est: "Estimate") -> str:
    """A markdown table of the rows plus a totals line."""
    lines = [f"Profile `{est.profile}`", "", "| " + " | ".join(_MD_COLS) + " |",
             "|" + "---|" * len(_MD_COLS)]
    for r in est.rows:
        vals = [getattr(r, c) for c in _MD_COLS]
        lines.append("| " + " | ".join(_fmt(v) for v in vals) + " |")
    lines.append(f"| **total** | | | | {est.latency_s:.4g} | {est.energy_j:.4g} | | |")
    return "\n".join(lines) + "\n"


def csv(est: "Estimate", path: str | Path) -> Path:
    """Write one CSV line per row (all Row fields), atomically. Returns the path."""
    from ._model import Row

    names = [f.name for f in fields(Row)]
    with atomic_path(path, ".csv") as tmp, open(tmp, "w", newline="") as fh:
        w = _csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for r in est.rows:
            w.writerow(asdict(r))
    return Path(path)


def roofline(est: "Estimate", path: str | Path) -> Path:
    """Roofline PNG: each electronic part's ceilings (peak of every class its ops used, main-memory
    bandwidth) and one point per op at (ops/byte, achieved ops/s). Returns the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = [r for r in est.rows if r.ops > 0 and r.bytes > 0 and r.latency_s > 0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [r.intensity for r in rows] or [1.0]
    lo, hi = min(xs + [0.1]) / 4, max(xs + [100.0]) * 4
    for part, prof in est.profiles.items():
        if prof.kind == "optical4f":
            continue
        used = sorted({(r.family, r.op_class) for r in rows if r.part.split(":")[-1] == part})
        bw = prof.level(prof.data["main_memory"])["bandwidth_bytes_per_s"]
        peaks = {prof.peak(family, cls)[1]: cls for family, cls in used}
        for peak, cls in sorted(peaks.items()):
            ridge = peak / bw
            xs_line = [lo, ridge, hi]
            ax.loglog(xs_line, [min(peak, x * bw) for x in xs_line], lw=1.5,
                      label=f"{part} {cls}: {peak:.3g} ops/s, {bw:.3g} B/s (ridge {ridge:.3g})")
    for r in rows:
        ax.loglog(r.intensity, r.ops / r.latency_s, "o", ms=5)
        ax.annotate(r.name, (r.intensity, r.ops / r.latency_s), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel("arithmetic intensity (ops / byte)")
    ax.set_ylabel("ops / s")
    ax.set_title(f"roofline: {est.profile}")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)
