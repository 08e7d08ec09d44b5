"""``hwsim sweep`` / ``hwsim.sweep``: run a design-space grid (`hwsim._sweep_grid`) on Dask.

One Dask task per training run (`hwsim._sweep_cell.run_task`): it trains the run (or loads it when it
is already trained), then evaluates and costs every cell that shares it. By default the tasks run on a
``dask.distributed.LocalCluster`` of ``workers`` single-threaded worker processes (default: one per
CPU the process may use); ``scheduler`` connects to an existing cluster instead (its workers must see
``out`` at the same path). Results do not depend on the worker count: every random stream is seeded
from the cell's ``seed``.

``out`` holds ``sweep.json`` (the spec and the cell ids), ``runs/``, ``cells/`` (see
`hwsim._sweep_cell`), ``results.csv``, ``results.json`` and ``report.md``. A second sweep into the
same ``out`` is refused unless ``resume=True``: then the cells with a result are kept as they are,
failed and missing cells run again, and an interrupted training run continues from its last
checkpoint. While a sweep runs it holds an exclusive lock on ``out/.sweep.lock``.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from hwsim._checkpoint import write_json
from hwsim._sweep_cell import failed_row, read_cell, run_task
from hwsim._sweep_grid import Grid, expand_grid, load_grid
from hwsim._sweep_report import load_average, write_results, write_sweep_report

__all__ = ["SWEEP_FILE", "cmd_sweep", "sweep"]

SWEEP_FILE = "sweep.json"
_EXTRA_HINT = ("hwsim sweep needs dask.distributed: pip install -e '.[sweep]' "
               "(or pip install 'dask[distributed]')")


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(_EXTRA_HINT) from exc
    return distributed


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _check_out(out: Path, resume: bool) -> None:
    if resume:
        if not (out / SWEEP_FILE).is_file():
            raise FileNotFoundError(f"nothing to resume: {out / SWEEP_FILE} does not exist")
        return
    if (out / SWEEP_FILE).is_file():
        raise ValueError(f"{out} already holds a sweep: pass --resume (resume=True) to continue it, "
                         f"or choose a new --out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} exists and is not empty (and holds no sweep): choose a new folder")


@contextlib.contextmanager
def _sweep_lock(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".sweep.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another hwsim sweep is running on {out} "
                             f"(lock {out / '.sweep.lock'})") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Progress:
    """``cells: D done, R running, F failed, W waiting of N`` on stderr: rewritten in place on a
    terminal, one line per change otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.tty = total, enabled, sys.stderr.isatty()
        self.t0, self.last = time.perf_counter(), None

    def show(self, done: int, running: int, failed: int, final: bool = False) -> None:
        if not self.enabled:
            return
        counts = (done, running, failed)
        if counts == self.last and not self.tty:
            return
        self.last = counts
        waiting = self.total - done - running - failed
        text = (f"hwsim sweep: {done} done, {running} running, {failed} failed, {waiting} waiting of "
                f"{self.total} cells ({time.perf_counter() - self.t0:.0f} s)")
        if self.tty:
            sys.stderr.write("\r" + text.ljust(79) + ("\n" if final else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _client(distributed, scheduler: str | None, workers: int | None):
    if scheduler is not None:
        return distributed.Client(scheduler), None
    import dask

    # queued on the scheduler, not on the workers: a worker that frees up takes the next task.
    # Workers start with SIGINT ignored: Ctrl-C reaches this process only, which cancels the tasks and
    # closes the cluster (a worker interrupted on its own would print a traceback mid-import).
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
            cluster = distributed.LocalCluster(n_workers=workers or _cpu_count(), threads_per_worker=1,
                                               processes=True, dashboard_address=":0",
                                               silence_logs=logging.CRITICAL)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    return distributed.Client(cluster), cluster


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _run_tasks(distributed, client, grid: Grid, todo: dict[str, list[dict]], out: Path, session: str,
               threads: int, progress: _Progress, done: int, failed: int) -> None:
    started: set[str] = set()
    client.subscribe_topic(f"hwsim-sweep-{session}", lambda event: started.add(event[1]["run"]))
    futures = {}
    for run_id, cells in todo.items():
        fut = client.submit(run_task, str(out), run_id, grid.runs[run_id], cells, grid.devices, session,
                            threads, pure=False, key=f"hwsim-sweep-{session}-{run_id}")
        futures[fut.key] = (fut, run_id)
    pending = {f for f, _ in futures.values()}
    try:
        while pending:
            try:
                finished, pending = distributed.wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:
                finished = set()
            for fut in finished:
                run_id = futures[fut.key][1]
                try:
                    rows = fut.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker, a cancelled task
                    rows = [failed_row(c, f"task failed: {type(exc).__name__}: {exc}", session)
                            for c in todo[run_id]]
                    for row in rows:
                        write_json(out / "cells" / f"{row['cell']}.json", row)
                failed += sum(r["status"] != "ok" for r in rows)
                done += sum(r["status"] == "ok" for r in rows)
            running = sum(len(todo[run_id]) for f, run_id in futures.values()
                          if f in pending and run_id in started)
            progress.show(done, running, failed)
    except BaseException:
        client.cancel([f for f, _ in futures.values()])
        raise
    progress.show(done, 0, failed, final=True)


def sweep(spec: str | Path | dict, out: str | Path, *, scheduler: str | None = None,
          workers: int | None = None,
          resume: bool = False, progress: bool = True, threads: int = 1) -> list[dict]:
    """Run the sweep ``spec`` (TOML path or parsed dict, see `hwsim._sweep_grid`) into folder ``out``;
    returns the result rows (one dict per cell, in grid order, as in ``out/results.json``).

    ``workers``: LocalCluster size (default: the CPUs this process may use); ``scheduler``: address of
    an existing Dask scheduler (``workers`` is then ignored); ``resume``: continue the sweep in ``out``;
    ``threads``: Numba threads per task (default 1 — parallel kernels on shared cores slow each other).
    Raises ValueError / FileNotFoundError for a bad spec or ``out`` before writing anything, ImportError
    naming the ``sweep`` extra without dask.distributed; Ctrl-C cancels the tasks (resume later).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    doc = load_grid(spec)
    grid = expand_grid(doc)
    out = Path(out).resolve()
    _check_out(out, resume)
    distributed = _import_distributed()
    t0 = time.perf_counter()
    session = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    load = load_average()
    with _sweep_lock(out):
        write_json(out / SWEEP_FILE, {"spec": doc, "devices": grid.devices, "axes": grid.axes,
                                      "cells": [c["cell"] for c in grid.cells]})
        todo: dict[str, list[dict]] = {}
        kept = []
        for cell in grid.cells:
            row = read_cell(out, cell["cell"])
            if row is not None and row.get("status") == "ok":
                kept.append(row)
            else:
                todo.setdefault(cell["run"], []).append(cell)
        bar = _Progress(len(grid.cells), progress)
        if resume and progress:
            print(f"hwsim sweep: resuming {out}: {len(kept)} of {len(grid.cells)} cells already done",
                  file=sys.stderr)
        n_workers = None
        environ = dict(os.environ)  # Dask's nanny sets OMP/MKL/OPENBLAS_NUM_THREADS=1 here to spawn workers
        if todo:
            client, cluster = _client(distributed, scheduler, workers)
            try:
                n_workers = len(client.scheduler_info()["workers"])
                if progress:
                    print(f"hwsim sweep: {len(grid.cells) - len(kept)} cells on {n_workers} worker(s); Dask "
                          f"dashboard: {client.dashboard_link}", file=sys.stderr)
                _run_tasks(distributed, client, grid, todo, out, session, threads, bar, len(kept), 0)
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
                    os.environ.clear()   # ... and leaves them in this process: restore its environment
                    os.environ.update(environ)
        rows = [read_cell(out, c["cell"]) or failed_row(c, "no result (task lost)", session)
                for c in grid.cells]
        write_results(out, rows, grid.devices, grid.axes)
        where = f"scheduler {scheduler}" if scheduler else f"a LocalCluster of {n_workers} worker(s)"
        header = (f"Session {session}: {sum(len(v) for v in todo.values())} cell(s) computed on "
                  f"{where if todo else 'no cluster (all cells were done)'}, {len(kept)} kept from earlier "
                  f"sessions, in {time.perf_counter() - t0:.1f} s (load average at start {load}). Spec: "
                  f"`{spec if not isinstance(spec, dict) else 'a dict'}`; devices: "
                  f"{', '.join(grid.devices)}.")
        write_sweep_report(out, rows, grid.devices, grid.axes, header)
    return rows


def cmd_sweep(args: argparse.Namespace) -> int:
    try:
        rows = sweep(args.spec, args.out, scheduler=args.scheduler, workers=args.workers, resume=args.resume,
                     progress=not args.quiet, threads=args.threads)
    except ImportError as exc:
        print(f"hwsim sweep: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"sweep interrupted; finished cells are kept in {args.out}: continue with "
                                f"hwsim sweep {args.spec} --out {args.out} --resume") from None
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"hwsim sweep: {len(rows) - len(failed)} of {len(rows)} cells ok; wrote "
          f"{Path(args.out) / 'results.csv'}, "
          f"results.json, report.md")
    if failed:
        print(f"hwsim sweep: {len(failed)} cell(s) failed, e.g. {failed[0]['cell']}: {failed[0]['error']} "
              f"(all errors in results.csv)", file=sys.stderr)
        return 1
    return 0
