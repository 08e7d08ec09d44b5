"""FloatFormat quantization and the extreme quantizers: Numba kernels against library casts.

On ``--n`` float32 values (standard normal * 100), median of ``--repeats`` runs each, all timed
side by side in one process: our Numba kernel for float16 / bfloat16 / float8 e4m3fn / e5m2
(nearest_even, and stochastic for e4m3fn) against the numpy / ml_dtypes round trip
``x.astype(narrow).astype(float32)`` (after checking the bits are equal), the numpy oracle, a
parallel streaming copy (the memory-bound floor), and binarize / ternarize / pow2 (Numba vs the
numpy oracle). Writes a markdown report (default ``reports/benchmarks/float_formats.md``) with the
exact command line.

    python benchmarks/bench_float_formats.py --n 10000000 --repeats 5
"""
from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import ml_dtypes
import numba
import numpy as np
from numba import njit, prange

import fixedpoint as fxp


@njit(parallel=True, cache=True)
def _parallel_copy(x, out):
    for i in prange(x.size):
        out[i] = x[i]


def _median_times(ops: dict, repeats: int) -> dict:
    """Median seconds of each zero-argument callable; the runs are interleaved (one round times
    every op once), so load changes on a shared machine hit all ops alike."""
    for fn in ops.values():
        fn()  # warm up (compilation, page faults)
    times: dict = {name: [] for name in ops}
    for _ in range(repeats):
        for name, fn in ops.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/float_formats.md"))
    args = parser.parse_args(argv)
    x = (np.random.default_rng(0).standard_normal(args.n) * 100).astype(np.float32)
    out = np.empty_like(x)
    casts = [(fxp.FP16, np.float16, "inf"), (fxp.BF16, ml_dtypes.bfloat16, "inf"),
             (fxp.FP8_E4M3, ml_dtypes.float8_e4m3fn, "nan"), (fxp.FP8_E5M2, ml_dtypes.float8_e5m2, "inf")]
    ops = {"copy": lambda: _parallel_copy(x, out)}
    checks = {}
    for fmt, dtype, overflow in casts:
        lib = "numpy" if dtype is np.float16 else "ml_dtypes"
        ours = functools.partial(fxp.quantize, x, fmt, "nearest_even", overflow, backend="numba")
        theirs = functools.partial(lambda d: x.astype(d).astype(np.float32), dtype)
        checks[str(fmt)] = np.array_equal(ours(), theirs(), equal_nan=True)
        ops[f"{fmt} ours"], ops[f"{fmt} {lib}"] = ours, theirs
    e4m3 = fxp.FP8_E4M3
    ops["e4m3fn stochastic"] = lambda: fxp.quantize(x, e4m3, "stochastic", seed=1, backend="numba")
    ops["e4m3fn oracle"] = lambda: fxp.quantize(x, e4m3, "nearest_even", backend="numpy")
    quantizers = {"binarize": lambda b: fxp.binarize(x, backend=b),
                  "binarize stochastic": lambda b: fxp.binarize(x, True, 1, backend=b),
                  "ternarize (0.7 mean|x|)": lambda b: fxp.ternarize(x, backend=b),
                  "pow2 nearest [-8, 8]": lambda b: fxp.pow2(x, -8, 8, backend=b),
                  "pow2 stochastic [-8, 8]": lambda b: fxp.pow2(x, -8, 8, "stochastic", 1, backend=b)}
    for name, call in quantizers.items():
        ops[f"{name} numba"] = functools.partial(call, "numba")
        ops[f"{name} numpy"] = functools.partial(call, "numpy")
    t = _median_times(ops, args.repeats)
    rows = [("parallel streaming copy (Numba)", t["copy"], "", "")]
    for fmt, dtype, _ in casts:
        lib = "numpy" if dtype is np.float16 else "ml_dtypes"
        mine, other = t[f"{fmt} ours"], t[f"{fmt} {lib}"]
        rows.append((f"{fmt} nearest_even, Numba", mine,
                     f"{other / mine:.2f}x the speed of the {lib} round trip; {mine / t['copy']:.1f}x copy",
                     "bits equal" if checks[str(fmt)] else "BITS DIFFER"))
        rows.append((f"{fmt}: `x.astype({lib}).astype(float32)`", other, "", ""))
    ne = t["e4m3fn ours"]
    rows += [("e4m3fn stochastic, Numba", t["e4m3fn stochastic"],
              f"{t['e4m3fn stochastic'] / ne:.2f}x our nearest_even", ""),
             ("e4m3fn nearest_even, numpy oracle", t["e4m3fn oracle"],
              f"{t['e4m3fn oracle'] / ne:.1f}x our Numba", "")]
    for name in quantizers:
        nb, npy = t[f"{name} numba"], t[f"{name} numpy"]
        rows.append((f"{name}, Numba", nb, f"{npy / nb:.1f}x faster than the numpy oracle", ""))
    lines = [
        "# Float formats and quantizers",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        "",
        f"{args.n:,} float32 values (standard normal x 100), median of {args.repeats} interleaved "
        f"runs each, one process; numpy {np.__version__}, numba {numba.__version__}, ml_dtypes "
        f"{ml_dtypes.__version__}, {numba.config.NUMBA_NUM_THREADS} Numba threads.",
        "",
        "| operation | median time (ms) | ratio | check |",
        "|---|---:|---|---|",
    ]
    lines += [f"| {name} | {t * 1e3:.1f} | {ratio} | {check} |" for name, t, ratio, check in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
