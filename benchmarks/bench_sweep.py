"""hwsim sweep: a 24-cell grid on the embedded digits with 1 and 2 workers, and a kill-and-resume run.

    python benchmarks/bench_sweep.py [--repeats 3] [--epochs 5] [--out reports/benchmarks/sweep.md]

1. Wall time of ``hwsim sweep`` (LocalCluster, fresh output folder, cluster start included) with
   ``--workers 1`` and ``--workers 2``, alternating, ``--repeats`` times each; median and every run.
2. Every run's results.csv compared with the first one on every column except the timing ones
   (``hwsim.SWEEP_TIMING_COLUMNS``): identical or not, per run.
3. Kill and resume: ``hwsim sweep --workers 2`` in its own process group, SIGKILLed (driver, scheduler
   and workers) once ``--kill-after`` cells have a result; then ``--resume``. Reported: which cells
   the resume session computed, that the finished cells' files are byte-identical with unchanged
   mtimes, how many training runs continued from a checkpoint, and that the results equal run 1's.
The machine is shared: the load average is recorded before and after every run.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The imports below follow the sys.path set-up above, hence their noqa: E402.
from hwsim import SWEEP_TIMING_COLUMNS  # noqa: E402

GRID = """[grid]
model = ["mlp:64-32-10", "mlp:64-64-10"]
data = "digits"
precision = ["fp32", "fixed16", "fixed8", "fixed4"]
seed = [0, 1, 2]
epochs = {epochs}
batch = 32
lr = 3e-3
devices = ["stm32h743", "jetson-orin-nano", "h100-sxm"]
"""


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def _sweep_cmd(spec: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hwsim.cli", "sweep", str(spec), "--out", str(out), "--quiet", *extra]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _reproducible(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in SWEEP_TIMING_COLUMNS} for r in rows]


def _task_seconds(rows: list[dict]) -> float:
    """Σ over training runs of the task's wall time (train + evaluate + cost): the workers' busy time."""
    return sum(max(float(r["task_seconds"]) for r in rows if r["run"] == run)
               for run in {r["run"] for r in rows})


def _timed_run(spec: Path, out: Path, workers: int) -> dict:
    load0 = _load()
    t0 = time.perf_counter()
    subprocess.run(_sweep_cmd(spec, out, "--workers", str(workers)), check=True, env=_env(), cwd=ROOT)
    return {"workers": workers, "seconds": time.perf_counter() - t0, "load_before": load0,
            "load_after": _load(), "out": out}


def _files(out: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in (out / "cells").glob("*.json")}


def _kill_and_resume(spec: Path, out: Path, kill_after: int, reference: list[dict]) -> dict:
    proc = subprocess.Popen(_sweep_cmd(spec, out, "--workers", "2"), env=_env(), cwd=ROOT,
                            start_new_session=True, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()

    def checkpointed() -> list[Path]:
        return [p for p in (out / "runs").glob("*.partial") if (p / "checkpoint.npz").is_file()]

    # kill once enough cells are done and a run is mid-training with a checkpoint (or after 60 s more)
    while proc.poll() is None and (len(list((out / "cells").glob("*.json"))) < kill_after
                                   or not checkpointed() and time.perf_counter() - t0 < 60 + kill_after * 10):
        time.sleep(0.05)
    partial = checkpointed()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.perf_counter() - t0
    time.sleep(0.5)
    before = _files(out)
    partial_names = sorted(p.name for p in (out / "runs").glob("*.partial"))
    load0 = _load()
    t1 = time.perf_counter()
    subprocess.run(_sweep_cmd(spec, out, "--workers", "2", "--resume"), check=True, env=_env(), cwd=ROOT,
                   stderr=subprocess.DEVNULL)
    resume_s = time.perf_counter() - t1
    after = _files(out)
    rows = _rows(out)
    sessions = sorted({r["session"] for r in rows})
    resume_session = max(sessions)
    return {
        "killed_after_s": killed_at, "finished_at_kill": len(before), "partial_at_kill": partial_names,
        "partial_with_checkpoint_seen": len(partial),
        "unchanged": sum(after.get(name) == v for name, v in before.items()),
        "recomputed": sum(r["session"] == resume_session for r in rows),
        "resumed_from_checkpoint": [(r["run"], r["resumed_from_epoch"]) for r in rows
                                    if r["session"] == resume_session and r["resumed_from_epoch"]],
        "resume_seconds": resume_s, "load": load0,
        "identical": _reproducible(rows) == _reproducible(reference),
        "cells": len(rows),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--kill-after", type=int, default=8, help="cells finished before the SIGKILL")
    ap.add_argument("--out", default=str(ROOT / "reports" / "benchmarks" / "sweep.md"))
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    spec = tmp / "grid.toml"
    spec.write_text(GRID.format(epochs=args.epochs))
    runs = []
    for rep in range(args.repeats):
        for workers in (1, 2):
            runs.append(_timed_run(spec, tmp / f"w{workers}-{rep}", workers))
            print(f"workers {workers}: {runs[-1]['seconds']:.1f} s (load {runs[-1]['load_before']})",
                  flush=True)
    reference = _rows(runs[0]["out"])
    for r in runs:
        r["identical"] = _reproducible(_rows(r["out"])) == _reproducible(reference)
        r["task_seconds"] = _task_seconds(_rows(r["out"]))
    kr = _kill_and_resume(spec, tmp / "killed", args.kill_after, reference)
    print(kr, flush=True)

    med = {w: statistics.median(r["seconds"] for r in runs if r["workers"] == w) for w in (1, 2)}
    ok = [r for r in reference if r["status"] == "ok"]
    lines = [
        "# hwsim sweep: 1 vs 2 workers, kill and resume", "",
        (f"Command: `python benchmarks/bench_sweep.py --repeats {args.repeats} --epochs {args.epochs} "
        f"--kill-after {args.kill_after}` (machine: {os.cpu_count()} CPUs, shared with other jobs; "
        f"load average 1 / 5 / 15 min recorded per run)."), "",
        f"Grid ({len(reference)} cells, {len(ok)} ok; each cell its own training run):", "",
        "```toml", GRID.format(epochs=args.epochs).strip(), "```", "",
        "## Wall time (fresh output folder each run; LocalCluster start and shutdown included)", "",
        "| run | workers | wall time (s) | Σ task time (s) | load before | load after | results identical to "
        "run 1 |",
        "|---|---|---|---|---|---|---|",
        *(f"| {i + 1} | {r['workers']} | {r['seconds']:.1f} | {r['task_seconds']:.1f} | {r['load_before']} | "
          f"{r['load_after']} | {'yes' if r['identical'] else 'NO'} |" for i, r in enumerate(runs)),
        "",
        (f"Median: 1 worker {med[1]:.1f} s, 2 workers {med[2]:.1f} s: speedup **{med[1] / med[2]:.2f}×** "
        f"(ideal 2× on 2 otherwise idle cores). Σ task time is the workers' busy time (each task's "
        f"own wall clock, summed); the rest of the wall time is start-up (Python and hwsim imports, grid "
        f"validation, cluster and worker start), shutdown and the report's plots."), "",
        (f"Identical results: every run's `results.csv` equals run 1's on all "
        f"{len([c for c in reference[0] if c not in SWEEP_TIMING_COLUMNS])} reproducible columns "
        f"(coordinates, accuracy, loss, parameters, model bytes, latency and energy per device): "
        f"**{'yes' if all(r['identical'] for r in runs) else 'NO'}** for all {len(runs)} runs. "
        f"Excluded (timing and bookkeeping): {', '.join(SWEEP_TIMING_COLUMNS)}."), "",
        "## Kill and resume", "",
        (f"`hwsim sweep --workers 2` was SIGKILLed (its whole process group: driver, scheduler, workers) "
        f"{kr['killed_after_s']:.1f} s after start, when {kr['finished_at_kill']} of {kr['cells']} cells had "
        f"a result; {len(kr['partial_at_kill'])} training run(s) were unfinished on disk "
        f"(`runs/*.partial`: {', '.join(kr['partial_at_kill']) or 'none'}). Then `--resume` (load "
        f"{kr['load']}), {kr['resume_seconds']:.1f} s:"), "",
        "| quantity | value |", "|---|---|",
        f"| cells finished before the kill | {kr['finished_at_kill']} |",
        f"| of those, result files byte-identical with unchanged mtime after resume | {kr['unchanged']} |",
        (f"| cells computed by the resume session | {kr['recomputed']} (= {kr['cells']} − "
         f"{kr['finished_at_kill']}"
         f"{' ✓' if kr['recomputed'] == kr['cells'] - kr['finished_at_kill'] else ' ✗'}) |"),
        (f"| training runs continued from their last checkpoint (run, epoch) | "
        f"{', '.join(f'{r} @ {e}' for r, e in kr['resumed_from_checkpoint']) or 'none'} |"),
        f"| results identical to the uninterrupted run 1 | {'yes' if kr['identical'] else 'NO'} |", "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out} (work folder {tmp})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
