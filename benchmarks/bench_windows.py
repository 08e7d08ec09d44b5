"""Convolution and pooling window kernels → reports/benchmarks/windows.md.

1. Each window operation of `hwsim.layers` (the im2col copy, the window scatter-add of a
   convolution's backward, max-pool forward and backward) on the sizes of a small MNIST CNN, batch 64,
   float32: the Numba kernel (`hwsim.layers._window_kernels`) beside the numpy code it replaces
   (the same bits; tests/hwsim/test_window_kernels.py), median of interleaved repeats.
2. One training step of that CNN (conv 1→16 3×3 pad 1, ReLU, max-pool 2, conv 16→32 3×3 pad 1, ReLU,
   max-pool 2, linear 1568→10; SGD momentum 0.9, batch 64 of random inputs): torch fp32;
   ``hwsim.torch`` with ``--weight s8.7 --activation s8.4 --update s16.14:stochastic`` with the kernels
   and with the numpy code; QPyTorch (``qtorch``, if importable) with the same policy as in
   bench_torch.py. Engines interleaved, median over rounds.

Run: ``python benchmarks/bench_windows.py [--rounds 7]`` (default threads).
"""
from __future__ import annotations

# isort: split

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from hwsim import md_table  # noqa: E402
from hwsim.layers import _window_kernels as kernels  # noqa: E402
from hwsim.layers._conv import scatter_windows, windows, windows_as_rows  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # bench_torch: QPyTorch wrapper, report header, timer
from bench_torch import median_ms, report_header, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64
POLICY = {"weight": "s8.7", "activation": "s8.4", "update": "s16.14:stochastic"}


@contextmanager
def numpy_code():
    """The layers' numpy code instead of the kernels (`kernels.takes` answers False)."""
    takes = kernels.takes
    kernels.takes = lambda *arrays: False
    try:
        yield
    finally:
        kernels.takes = takes


def _max_pool_numpy(x, k):
    win = windows(x, k, k, k)
    flat = win.reshape(*win.shape[:4], -1)
    arg = flat.argmax(axis=-1)
    return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0], arg


def _operations(rng) -> list:
    """(name, kernel call, numpy call) on the small CNN's sizes."""
    x1 = np.pad(rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32), ((0, 0), (0, 0), (1, 1), (1, 1)))
    x2 = np.pad(rng.standard_normal((BATCH, 16, 14, 14)).astype(np.float32), ((0, 0), (0, 0), (1, 1), (1, 1)))
    d2 = rng.standard_normal((BATCH * 14 * 14, 16 * 9)).astype(np.float32)
    dwin2 = d2.reshape(BATCH, 14, 14, 16, 3, 3).transpose(0, 3, 1, 2, 4, 5)
    p1 = rng.standard_normal((BATCH, 16, 28, 28)).astype(np.float32)
    y1, arg1 = kernels.max_windows(p1, 2, 2, 14, 14)
    dy1 = rng.standard_normal(y1.shape).astype(np.float32)

    def scatter(dwin, shape):
        def run():
            dx = np.zeros(shape, np.float32)
            scatter_windows(dx, dwin, 1)
        return run

    def max_back_kernel():
        kernels.scatter_max_windows(np.zeros(p1.shape, np.float32), dy1, arg1, 2, 2)

    def max_back_numpy():
        dwin = (np.arange(4) == arg1[..., None]) * dy1[..., None]
        scatter_windows(np.zeros(p1.shape, np.float32), dwin.reshape(*dy1.shape, 2, 2), 2)

    return [
        ("im2col, conv 1 (64×1×30×30, 3×3)", lambda: windows_as_rows(x1, 3, 3, 1),
         lambda: windows_as_rows(x1, 3, 3, 1)),
        ("im2col, conv 2 (64×16×16×16, 3×3)", lambda: windows_as_rows(x2, 3, 3, 1),
         lambda: windows_as_rows(x2, 3, 3, 1)),
        ("window scatter-add, conv 2 backward", scatter(dwin2, x2.shape), scatter(dwin2, x2.shape)),
        ("max-pool 2×2 forward (64×16×28×28)", lambda: kernels.max_windows(p1, 2, 2, 14, 14),
         lambda: _max_pool_numpy(p1, 2)),
        ("max-pool 2×2 backward", max_back_kernel, max_back_numpy),
    ]


def _cnn():
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 10))


def _engines() -> dict:
    """name -> (model, optimizer, context) of the step comparison (same initial weights)."""
    import torch

    import hwsim.torch as ht

    def fresh():
        torch.manual_seed(0)
        return _cnn()

    engines = {}
    m = fresh()
    engines["torch fp32"] = (m, torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9), None)
    variants = (("hwsim.torch 8-bit, kernels", None), ("hwsim.torch 8-bit, numpy code", numpy_code))
    for name, context in variants:
        m = ht.quantize_model(fresh(), "fp32", **POLICY)
        opt = ht.LowPrecisionOptimizer(torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9))
        engines[name] = (m, opt, context)
    try:
        from bench_torch import _qtorch_parts

        m, opt = _qtorch_parts(fresh())
        engines["QPyTorch 8-bit"] = (m, opt, None)
    except ImportError as err:
        print(f"QPyTorch left out: {err}", flush=True)
    return engines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--out", default=str(ROOT / "reports" / "benchmarks" / "windows.md"))
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error(f"--rounds must be >= 1, got {args.rounds}")
    t_start, load_before = time.perf_counter(), os.getloadavg()
    rng = np.random.default_rng(0)
    ops = _operations(rng)
    op_times = {name: ([], []) for name, _, _ in ops}
    for name, fast, slow in ops:  # compile and warm up
        fast()
        with numpy_code():
            slow()
    for _ in range(args.rounds):
        for name, fast, slow in ops:
            op_times[name][0].append(median_ms(fast, 5))
            with numpy_code():
                op_times[name][1].append(median_ms(slow, 5))
    op_rows = [[name, f"{statistics.median(k):.2f}", f"{statistics.median(n):.2f}",
                f"{statistics.median(n) / statistics.median(k):.1f}×"] for name, (k, n) in op_times.items()]
    print(md_table(["operation", "kernel (ms)", "numpy code (ms)", "speed-up"], op_rows), flush=True)

    import torch

    x, y = torch.randn(BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.arange(BATCH) % 10
    engines = _engines()
    step_times: dict[str, list[float]] = {name: [] for name in engines}

    def steps(model, opt, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return 1e3 * (time.perf_counter() - t0) / n

    for _ in range(args.rounds + 1):  # the first round warms up and is not kept
        for name, (model, opt, context) in engines.items():
            if context is None:
                ms = steps(model, opt, 5)
            else:
                with context():
                    ms = steps(model, opt, 5)
            step_times[name].append(ms)
    med = {name: statistics.median(v[1:]) for name, v in step_times.items()}
    base = med["torch fp32"]
    step_rows = [[name, f"{med[name]:.2f}", f"{med[name] / base:.2f}",
                  ", ".join(f"{t:.1f}" for t in step_times[name][1:])] for name in engines]
    print(md_table(["engine", "median step (ms)", "/ torch fp32", "rounds (ms, 5 steps each)"], step_rows))

    text = "\n".join([
        "# Convolution and pooling window kernels", "",
        *report_header("bench_windows.py", argv, t_start, load_before),
        "## The operations (float32, batch 64; median over "
        f"{args.rounds} interleaved rounds of the median of 5 calls)", "",
        md_table(["operation", "kernel (ms)", "numpy code (ms)", "speed-up"], op_rows), "",
        "The kernels (`hwsim/layers/_window_kernels.py`) do the numpy code's work element for element in "
        "its order (the batch axis in parallel), so Conv2d, MaxPool2d and AvgPool2d give the same bits "
        "with either (tests/hwsim/test_window_kernels.py; a NaN stays NaN, its sign and payload aside). "
        "They run for numpy float32/float64 arrays; CuPy arrays and other dtypes keep the numpy code.", "",
        f"## One training step of a small MNIST CNN (batch 64; median over {args.rounds} interleaved rounds "
        "of 5 steps)", "",
        md_table(["engine", "median step (ms)", "/ torch fp32", "rounds (ms, 5 steps each)"], step_rows), "",
        "The CNN: conv 1→16 3×3 pad 1, ReLU, max-pool 2, conv 16→32 3×3 pad 1, ReLU, max-pool 2, linear "
        "1568→10; SGD lr 0.05, momentum 0.9, one fixed batch of random inputs. The 8-bit rows use "
        "`--weight s8.7 --activation s8.4 --update s16.14:stochastic` (QPyTorch: the same policy, as in "
        "bench_torch.py). \"numpy code\": the same hwsim.torch model with the kernels switched off.", "",
    ])
    write_report(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
