"""One sweep task, run on a Dask worker: train one run (or load it), then evaluate and cost its cells.

Files under the sweep folder ``OUT``:

* ``OUT/runs/<run>/`` — a finished training run, exactly what ``hwsim train --out`` writes
  (``run.json``, ``metrics.json``, ``checkpoint.npz``), so ``hwsim eval``, ``hwsim report`` and
  ``hwsim quantize`` work on it. It is trained in ``OUT/runs/<run>.partial/`` (a checkpoint every
  epoch) and renamed when training ends: a run folder without the suffix is complete. A task that
  finds a ``.partial`` folder with a checkpoint resumes from it (``hwsim train --resume``).
* ``OUT/cells/<cell>.json`` — one cell's result row (``status`` ``"ok"`` or ``"failed"`` with the
  error), written atomically (temp file + rename) after its evaluation and costing.

Locking (a stop-gap until run directories lock themselves): the task holds an exclusive
``fcntl.flock`` on ``OUT/runs/<run>.lock`` while it trains or evaluates that run, so a task that Dask
re-runs while a lost worker still runs it waits rather than writing the same files.

Threads: the task sets Numba's thread count to ``threads`` (default 1) for its own thread; BLAS
threads are set by the worker's environment (Dask's nanny starts workers with
``OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1``).
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import shutil
import statistics
import time
import traceback
from pathlib import Path

import devices
import fixedpoint as fxp
from hwsim._checkpoint import write_json
from hwsim._cli_run import cmd_train, load_trained_run
from hwsim._precision import ROLES, Precision, RoleFormat
from hwsim._sweep_grid import optical_label, optical_profile
from hwsim._train import evaluate
from hwsim._workload import workload
from hwsim.compression import post_training_quantize
from hwsim.schemes import parse_scheme

__all__ = ["cell_path", "failed_row", "read_cell", "run_path", "run_task"]

_QUANTIZED_PARAMS = ("W", "b")


def run_path(out: Path, run_id: str) -> Path:
    return Path(out) / "runs" / run_id


def cell_path(out: Path, cell_id: str) -> Path:
    return Path(out) / "cells" / f"{cell_id}.json"


def read_cell(out: Path, cell_id: str) -> dict | None:
    """The stored row of a cell, or None when it has none (or an unreadable one)."""
    path = cell_path(out, cell_id)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def failed_row(cell: dict, error: str, session: str, tb: str = "") -> dict:
    """The row of a cell that could not be computed: its coordinates, the error and its traceback."""
    return {**cell, "optical": optical_label(cell["optical"]), "status": "failed", "error": error,
            "traceback": tb, "session": session}


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _train_argv(run: dict, out: Path, resume: bool) -> list[str]:
    argv = ["train", "--model", run["model"], "--data", run["data"], "--epochs", str(run["epochs"]),
            "--batch", str(run["batch"]), "--optimizer", run["optimizer"], "--lr", repr(run["lr"]),
            "--momentum", repr(run["momentum"]), "--weight-decay", repr(run["weight_decay"]),
            "--seed", str(run["seed"]), "--precision", run["precision"], "--mode", run["mode"],
            "--out", str(out), "--quiet"]
    for key, flag in (("split", "--split"), ("schedule", "--schedule"), ("scheme", "--scheme"),
                      *((r, f"--{r}") for r in ROLES)):
        if run[key] is not None:
            argv += [flag, str(run[key])]
    return argv + (["--resume"] if resume else [])


def _ensure_trained(out: Path, run_id: str, run: dict) -> tuple[Path, dict]:
    """The finished run folder of ``run`` (training it, or resuming its partial folder, when needed)
    and ``{"trained_here": bool, "resumed_from_epoch": int | None}``."""
    final = run_path(out, run_id)
    if (final / "metrics.json").is_file():
        return final, {"trained_here": False, "resumed_from_epoch": None}
    partial = final.with_name(run_id + ".partial")
    resume = (partial / "checkpoint.npz").is_file() and (partial / "run.json").is_file()
    resumed_from = json.loads((partial / "checkpoint.json").read_text())["epoch"] if resume else None
    if not resume and partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    from hwsim.cli import (  # here: `python -m hwsim.cli` must not find it imported
        build_parser,
        explicit_flags,
    )

    parser, argv = build_parser(), _train_argv(run, partial, resume)
    args = parser.parse_args(argv)
    args.explicit = explicit_flags(parser, argv)  # --resume compares only the flags the cell sets
    with open(partial / "train.log", "a") as log, contextlib.redirect_stdout(log):
        cmd_train(args)
    os.replace(partial, final)
    return final, {"trained_here": True, "resumed_from_epoch": resumed_from}


def _model_bytes(model, ptq_bits: int | None) -> int:
    """Stored bytes of the parameters: W and b at the layer's weight width (``ptq_bits`` after
    post-training quantization, 32 for a float weight role), other parameters float32."""
    total = 0.0
    for layer in model.layers:
        q = getattr(layer, "precision", None)
        wbits = ptq_bits or (q.weight.bits if q is not None and q.weight is not None else 32)
        for name, arr in layer.params().items():
            total += arr.size * (wbits if name in _QUANTIZED_PARAMS else 32) / 8
    return math.ceil(total)


def _cost_precision(run: dict, precision: Precision, ptq_bits: int | None) -> Precision:
    """The policy the devices cost: the scheme's workload policy when it has one (BNN: binary
    activations too), with weights at ``ptq_bits`` after post-training quantization."""
    if run["scheme"] is not None:
        scheme = parse_scheme(run["scheme"])
        precision = getattr(scheme, "workload_precision", scheme.precision)(run["seed"])
    if ptq_bits is not None:   # the cost depends on the width only
        precision = precision.replace(weight=RoleFormat(fxp.Fixed(ptq_bits, ptq_bits - 1)))
    return precision


def _evaluate_cell(cell: dict, loaded: tuple, metrics: dict, names: list[str]) -> dict:
    run, data, model = loaded
    precision = Precision.from_dict(run["precision"])
    bits = cell["ptq_bits"]
    net = post_training_quantize(model, bits)[0] if bits is not None else model
    ev = evaluate(net, data.X_test, data.y_test, precision)
    cost_prec = _cost_precision(cell, precision, bits)
    wl = workload(net, cost_prec, batch=cell["cost_batch"])
    row = {**cell, "optical": optical_label(cell["optical"]), "status": "ok", "error": "",
           "policy": str(precision) if bits is None else f"{precision} + PTQ weights {bits} bits",
           **{f"bits[{r}]": (32 if getattr(cost_prec, r) is None else int(getattr(cost_prec, r).bits))
              for r in ROLES},
           "test_accuracy": float(ev["accuracy"]), "test_loss": float(ev["loss"]),
           "train_loss": float(metrics["train_loss"][-1]),
           "epoch_seconds": float(statistics.median(metrics["epoch_seconds"])),
           "train_seconds": float(sum(metrics["epoch_seconds"])),
           "parameters": int(sum(a.size for layer in net.layers for a in layer.params().values())),
           "model_bytes": _model_bytes(net, bits)}
    for name in names:
        est = devices.estimate(wl, optical_profile(name, cell["optical"]))
        row[f"latency_s[{name}]"] = float(est.latency_s)
        row[f"energy_j[{name}]"] = float(est.energy_j)
    return row


def _announce_start(run_id: str, session: str) -> None:
    """Tell the sweep's client that this task started (a Dask worker event; nothing outside Dask)."""
    try:
        from distributed import get_worker

        get_worker().log_event(f"hwsim-sweep-{session}", {"run": run_id})
    except (ImportError, ValueError):
        pass


def _set_threads(threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def run_task(out: str, run_id: str, run: dict, cells: list[dict], names: list[str], session: str,
             threads: int = 1) -> list[dict]:
    """Train (or load) run ``run_id`` under ``out`` and write the row of each of ``cells``; returns
    the rows. Errors are recorded in the rows (``status="failed"``), never raised, so one failing
    cell stops nothing else."""
    _set_threads(threads)
    _announce_start(run_id, session)
    out = Path(out)
    t0 = time.perf_counter()
    rows = []
    with _locked(run_path(out, run_id).with_name(run_id + ".lock")):
        try:
            run_dir, info = _ensure_trained(out, run_id, run)
            metrics = json.loads((run_dir / "metrics.json").read_text())
            r, _, data, model = load_trained_run(argparse.Namespace(run_dir=str(run_dir), data=None,
                                                                    split=None))
            loaded = (r, data, model)
        except Exception as exc:  # noqa: BLE001 - recorded in the cells' rows
            err, tb, loaded = f"{type(exc).__name__}: {exc}", traceback.format_exc(), None
        for cell in cells:
            if loaded is None:
                row = failed_row(cell, f"training failed: {err}", session, tb)
            else:
                try:
                    row = {**_evaluate_cell(cell, loaded, metrics, names), **info, "session": session}
                except Exception as exc:  # noqa: BLE001
                    row = failed_row(cell, f"{type(exc).__name__}: {exc}", session, traceback.format_exc())
            row["task_seconds"] = time.perf_counter() - t0
            cell_path(out, cell["cell"]).parent.mkdir(parents=True, exist_ok=True)
            write_json(cell_path(out, cell["cell"]), row)
            rows.append(row)
    return rows
