"""Fixed-point quantization speed: our Numba kernels against numpy, a streaming copy and anchors.

    python benchmarks/bench_numerics.py --n 10000000 --repeats 7

``--n`` float32 values (normal, sigma 64, so about 5% saturate in s16.8) quantized to s16.8, all
cases timed side by side in one process, round robin by ``bench_matmul._time`` (each repeat runs
every case once, after a short pause, so load changes hit all cases alike), median of ``--repeats``
(min also shown):

* ``np.clip(np.round(x*256), -32768, 32767)/256`` (numpy, the baseline expression);
* a parallel streaming copy of the same array (Numba ``prange``; the memory-bound floor), into a
  preallocated array and into a new one (``quantize`` returns a new array, so it pays the page
  faults of first touch too);
* ``fxp.quantize`` with the Numba backend: nearest_even and stochastic, saturate; nearest_away and
  nearest_even with wrap; the numpy oracle backend for reference;
* anchors, when installed (benchmark environment only, never dependencies): pychop ``Chopf(8, 8)``
  (s16.8, round to nearest even, saturating), APyTypes ``APyFixedArray.from_float`` (ties away,
  wrap: compared with our nearest_away/wrap) and ``from_float`` at 60 fraction bits then
  ``cast(TIES_EVEN, SAT)``, fxpmath ``Fxp(..., rounding="around", overflow="saturate")``.

A second section times ``quantize(x, s16.8, out=out)`` into a preallocated array against a
parallel copy into a preallocated array (Numba ``prange``), ``np.copyto`` and the numpy expression
written into a preallocated array through the ufuncs' ``out=`` (``--only-out`` runs only it and
replaces it in the existing report).

Before timing, every result is compared with ours for the matching mode and the report says
whether all values are equal. The exact matmul section of ``bench_matmul.py`` is appended.
Writes ``reports/benchmarks/numerics.md``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

import fixedpoint as fxp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_matmul  # noqa: E402  (the matmul section, and the shared round-robin timer)
from bench_matmul import _time  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FMT = fxp.Fixed(16, 8)
CALLS = 200  # calls per timed run of the small-array section
OUT_HEADING = "## `out=`: quantizing into a preallocated array"
TARGETS = {"numpy": 8.0, "copy": 1.5, "stochastic": 3.0, "pychop": 20.0, "out": 1.3}


@njit(parallel=True, cache=True)
def _parallel_copy(x, out):
    for i in prange(x.size):
        out[i] = x[i]


def _anchors(x: np.ndarray) -> tuple[dict, dict]:
    """Anchor cases ``{name: fn}`` and ``{name: (our_mode, our_overflow)}`` for those installed."""
    cases, modes = {}, {}
    try:
        from pychop import Chopf

        chop = Chopf(8, 8)  # 8 integer bits including the sign + 8 fraction bits = s16.8
        cases["pychop Chopf(8, 8)"] = lambda: np.asarray(chop(x))
        modes["pychop Chopf(8, 8)"] = ("nearest_even", "saturate")
    except ImportError:
        pass
    try:
        import apytypes as apy

        cases["APyTypes from_float (ties away, wrap)"] = lambda: apy.APyFixedArray.from_float(
            x, int_bits=8, frac_bits=8).to_numpy()
        modes["APyTypes from_float (ties away, wrap)"] = ("nearest_away", "wrap")
        cases["APyTypes from_float + cast(TIES_EVEN, SAT)"] = lambda: apy.APyFixedArray.from_float(
            x, int_bits=10, frac_bits=60).cast(int_bits=8, frac_bits=8,
                                               quantization=apy.QuantizationMode.TIES_EVEN,
                                               overflow=apy.OverflowMode.SAT).to_numpy()
        modes["APyTypes from_float + cast(TIES_EVEN, SAT)"] = ("nearest_even", "saturate")
    except ImportError:
        pass
    try:
        from fxpmath import Fxp

        cases["fxpmath Fxp(around, saturate)"] = lambda: Fxp(
            x, signed=True, n_word=16, n_frac=8, rounding="around", overflow="saturate").get_val()
        modes["fxpmath Fxp(around, saturate)"] = ("nearest_even", "saturate")
    except ImportError:
        pass
    return cases, modes


def _cases(x: np.ndarray) -> tuple[dict, dict]:
    out = np.empty_like(x)
    ours = {
        "numpy clip(round(x*256))/256": lambda: np.clip(np.round(x * 256), -32768, 32767) / 256,
        "parallel streaming copy (Numba)": lambda: _parallel_copy(x, out),
        "parallel streaming copy into a new array (Numba)": lambda: _parallel_copy(
            x, np.empty_like(x)),
        "fxp nearest_even, saturate (numba)": lambda: fxp.quantize(x, FMT, backend="numba"),
        "fxp stochastic, saturate (numba)": lambda: fxp.quantize(x, FMT, "stochastic", seed=1,
                                                                 backend="numba"),
        "fxp nearest_away, wrap (numba)": lambda: fxp.quantize(x, FMT, "nearest_away", "wrap",
                                                               backend="numba"),
        "fxp nearest_even, saturate (numpy oracle)": lambda: fxp.quantize(x, FMT, backend="numpy"),
    }
    anchors, modes = _anchors(x)
    modes["numpy clip(round(x*256))/256"] = ("nearest_even", "saturate")
    return {**ours, **anchors}, modes


def _check(cases: dict, modes: dict, x: np.ndarray) -> list[str]:
    """One line per case with a mode: do its values equal ours for that mode?"""
    lines = []
    for name, (rounding, overflow) in modes.items():
        ours = fxp.quantize(x, FMT, rounding, overflow, backend="numba").astype(np.float64)
        theirs = np.asarray(cases[name]()).astype(np.float64).reshape(x.shape)
        differ = np.flatnonzero(theirs != ours)
        if differ.size == 0:
            lines.append(f"- {name}: all {x.size} values equal ours ({rounding}, {overflow}).")
        else:
            i = differ[0]
            lines.append(f"- {name}: **{differ.size} values differ** from ours ({rounding}, "
                         f"{overflow}); first at {i}: x={x[i]!r}, theirs={theirs[i]!r}, ours={ours[i]!r}.")
    return lines


def _verdict(ratio: float, target: float, at_least: bool) -> str:
    met = ratio >= target if at_least else ratio <= target
    return f"target {'>=' if at_least else '<='} {target:g}x: {'met' if met else 'NOT met'}"


def run(n: int, repeats: int, command: str) -> str:
    """The markdown report (without the matmul section)."""
    x = np.random.default_rng(0).normal(0.0, 64.0, n).astype(np.float32)
    cases, modes = _cases(x)
    checks = _check(cases, modes, x)
    load_before = _load()
    t = _time(cases, repeats)
    ne = t["fxp nearest_even, saturate (numba)"][0]
    rows = [f"| {name} | {med * 1e3:.1f} | {med / ne:.2f} | {mn * 1e3:.1f} |"
            for name, (med, mn) in t.items()]
    r_numpy = t["numpy clip(round(x*256))/256"][0] / ne
    r_copy = ne / t["parallel streaming copy (Numba)"][0]
    r_new = ne / t["parallel streaming copy into a new array (Numba)"][0]
    r_sr = t["fxp stochastic, saturate (numba)"][0] / ne
    lines = [
        "# Fixed-point quantization benchmark",
        "",
        "```",
        command,
        "```",
        "",
        f"{n} float32 values (normal, sigma 64) to s16.8; median of {repeats} round-robin runs "
        f"(min also shown); numpy {np.__version__}, numba {numba.__version__}, {os.cpu_count()} "
        f"CPUs, {numba.get_num_threads()} Numba threads; load average before timing: "
        f"{load_before}, after: {_load()}. The machine is shared with other jobs, so absolute "
        "times are noisy; ratios come from the same round-robin run.",
        "",
        "| case | median ms | time / ours (nearest_even, numba) | min ms |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        "Targets (medians):",
        "",
        f"- numpy expression / ours nearest_even: **{r_numpy:.2f}x** "
        f"({_verdict(r_numpy, TARGETS['numpy'], True)}).",
        f"- ours nearest_even / parallel streaming copy: **{r_copy:.2f}x** "
        f"({_verdict(r_copy, TARGETS['copy'], False)}); / the same copy into a newly allocated "
        f"array, as `quantize` returns one (its first-touch page faults included): "
        f"**{r_new:.2f}x**.",
        f"- ours stochastic / ours nearest_even: **{r_sr:.2f}x** "
        f"({_verdict(r_sr, TARGETS['stochastic'], False)}).",
    ]
    if "pychop Chopf(8, 8)" in t:
        r_chop = t["pychop Chopf(8, 8)"][0] / ne
        lines.append(f"- pychop Chopf(8, 8) / ours nearest_even: **{r_chop:.2f}x** "
                     f"({_verdict(r_chop, TARGETS['pychop'], True)}).")
    new_copy = t["parallel streaming copy into a new array (Numba)"][0]
    bound = t["numpy clip(round(x*256))/256"][0] / new_copy
    lines += ["", "Memory bound: `quantize` returns a new array, so it reads 4 bytes and writes 4 "
              f"bytes per element into fresh pages, like the copy into a new array ({new_copy * 1e3:.1f} ms, "
              f"{8 * n / new_copy / 1e9:.1f} GB/s of reads + writes). Even a kernel that did no "
              f"arithmetic would be only **{bound:.2f}x** faster than the numpy expression here"
              + (f" and {t['pychop Chopf(8, 8)'][0] / new_copy:.2f}x faster than pychop"
                 if "pychop Chopf(8, 8)" in t else "")
              + "; ours runs at "
              f"{ne / new_copy:.2f}x that copy's time."]
    lines += ["", "Equality with our results for the matching modes (checked before timing):", "",
              *checks, ""]
    return "\n".join(lines)


def _numpy_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``np.clip(np.round(x*256), -32768, 32767)/256`` written into ``out`` (the ufuncs' ``out=``;
    exact in float32: scaling by 2**8 and rounding to an integer below 2**24 round nothing)."""
    np.multiply(x, 256, out=out)
    np.round(out, out=out)
    np.clip(out, -32768, 32767, out=out)
    return np.divide(out, 256, out=out)


def _out_section(n: int, repeats: int, command: str) -> str:
    """``quantize(..., out=)`` into a preallocated array against copies and numpy into one."""
    x = np.random.default_rng(0).normal(0.0, 64.0, n).astype(np.float32)
    out, copy_out, numpy_out = (np.empty_like(x) for _ in range(3))
    inplace = fxp.quantize(x, FMT)  # already on the grid: rounding it again is the same work
    quantizer = fxp.Quantizer(FMT)
    cases = {
        "fxp.quantize(x, s16.8, out=out)": lambda: fxp.quantize(x, FMT, out=out),
        "fxp.Quantizer(s16.8)(x, out=out)": lambda: quantizer(x, out=out),
        "fxp.quantize(y, s16.8, out=y) (in place)": lambda: fxp.quantize(inplace, FMT, out=inplace),
        "parallel copy into a preallocated array (Numba prange)": lambda: _parallel_copy(x, copy_out),
        "np.copyto(out, x) (numpy, one thread)": lambda: np.copyto(copy_out, x),
        "numpy clip(round(x*256))/256 into a preallocated array": lambda: _numpy_into(x, numpy_out),
    }
    results = {"fxp.quantize(x, s16.8, out=out)": out, "fxp.Quantizer(s16.8)(x, out=out)": out,
               "fxp.quantize(y, s16.8, out=y) (in place)": inplace,
               "numpy clip(round(x*256))/256 into a preallocated array": numpy_out}
    want = fxp.quantize(x, FMT)
    checks = []
    for name, result in results.items():
        if result is not inplace:
            result.fill(np.nan)  # so that a call that writes nothing shows
        cases[name]()
        ours_bits = not name.startswith("numpy")  # numpy keeps -0.0 where the grid value is +0.0
        equal = result.tobytes() == want.tobytes() if ours_bits else np.array_equal(result, want)
        checks.append(f"{name}: {'equal' if equal else '**NOT equal**'}"
                      f" ({'bits' if ours_bits else 'values'})")
    load_before = _load()
    t = _time(cases, repeats)
    ours = t["fxp.quantize(x, s16.8, out=out)"][0]
    copy = t["parallel copy into a preallocated array (Numba prange)"][0]
    rows = [f"| {name} | {med * 1e3:.2f} | {med / ours:.2f} | {mn * 1e3:.2f} |"
            for name, (med, mn) in t.items()]
    r_copy = ours / copy
    r_copy_min = t["fxp.quantize(x, s16.8, out=out)"][1] / t[
        "parallel copy into a preallocated array (Numba prange)"][1]
    r_paired = _paired_ratio(cases["fxp.quantize(x, s16.8, out=out)"],
                             cases["parallel copy into a preallocated array (Numba prange)"], 3 * repeats)
    r_copyto = ours / t["np.copyto(out, x) (numpy, one thread)"][0]
    r_numpy = t["numpy clip(round(x*256))/256 into a preallocated array"][0] / ours
    r_inplace = t["fxp.quantize(y, s16.8, out=y) (in place)"][0] / ours
    return "\n".join([
        OUT_HEADING, "",
        "```", command, "```", "",
        f"{n} float32 values (normal, sigma 64) to s16.8, nearest_even, saturate, `backend=\"auto\"` "
        f"(the Numba short path); median of {repeats} round-robin runs (min also shown); "
        f"{os.cpu_count()} CPUs, {numba.get_num_threads()} Numba threads; load average before "
        f"timing: {load_before}, after: {_load()} (the machine is shared with other jobs).", "",
        "| case | median ms | time / quantize(out=) | min ms |", "|---|---:|---:|---:|", *rows, "",
        f"- quantize(out=) / parallel copy into a preallocated array: **{r_copy:.2f}x** "
        f"({_verdict(r_copy, TARGETS['out'], False)}); the ratio of the minima (both cores free): "
        f"{r_copy_min:.2f}x; the median of {3 * repeats} paired ratios (a quantize call and a copy "
        f"timed back to back, in alternating order): **{r_paired:.2f}x** "
        f"({_verdict(r_paired, TARGETS['out'], False)}); "
        f"/ `np.copyto`: {r_copyto:.2f}x. On a shared machine a parallel case runs about twice as "
        "long whenever another job holds one of the cores, so the medians of the table (and their "
        "ratio) depend on when the other jobs ran; the paired ratios and the minima do much less.",
        f"- numpy expression into a preallocated array / quantize(out=): **{r_numpy:.2f}x**.",
        f"- in place (`out=y` for `y`): {r_inplace:.2f}x quantize(out=): an `out` that overlaps x "
        "goes through a temporary array and a copy (the kernels read x again after writing).",
        f"- Compared with `fxp.quantize(x, s16.8)` before timing: {'; '.join(checks)}.",
        ""])


def _paired_ratio(case, base, pairs: int) -> float:
    """Median over ``pairs`` rounds of time(case) / time(base), the two timed back to back (so
    that both see the same load) after a short pause, in alternating order (the first call after
    the pause may find the cores slower)."""
    ratios = []
    for i in range(pairs):
        time.sleep(bench_matmul.SETTLE_S)
        seconds = {}
        for fn in (case, base) if i % 2 == 0 else (base, case):
            start = time.perf_counter()
            fn()
            seconds[fn] = time.perf_counter() - start
        ratios.append(seconds[case] / seconds[base])
    return statistics.median(ratios)


def _replace_section(report: str, heading: str, section: str) -> str:
    """``report`` with its ``heading`` section (up to the next ``## `` heading) replaced by
    ``section``, or ``section`` inserted before the first ``## `` heading when it has none."""
    start = report.find(heading)
    if start < 0:
        start = end = report.find("\n## ") + 1
    else:
        following = report.find("\n## ", start + len(heading))
        end = len(report) if following < 0 else following + 1
    return report[:start] + section + "\n" + report[end:]


def _small_sizes(repeats: int) -> str:
    """Per-call time of small arrays (the ``backend="auto"`` choice): oracle against Numba."""
    rows = []
    for n in (1, 16, 1024, 16384, 65536):
        x = np.random.default_rng(1).normal(0.0, 64.0, n).astype(np.float32)
        cases = {b: (lambda b=b: [fxp.quantize(x, FMT, backend=b) for _ in range(CALLS)])
                 for b in ("numpy", "numba")}
        t = _time(cases, repeats)
        rows.append(f"| {n} | {t['numpy'][0] / CALLS * 1e6:.1f} | "
                    f"{t['numba'][0] / CALLS * 1e6:.1f} |")
    return "\n".join([
        "## Small arrays (per call, nearest_even + saturate, s16.8, float32)", "",
        f"Median of {repeats} round-robin runs of {CALLS} calls each; the whole call (validation, "
        "allocation, kernel). `backend=\"auto\"` picks Numba from "
        f"{fxp._backend.FIXED_NUMBA_THRESHOLD} element(s) for Fixed formats.", "",
        "| elements | numpy oracle (us) | numba (us) |", "|---:|---:|---:|", *rows, ""])


def _matmul_section() -> str:
    try:
        return bench_matmul.main()
    except ImportError as err:  # fxp.matmul missing
        return f"## Exact fixed-point matmul\n\nNot run: {err}.\n"


def _load() -> str:
    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks" / "numerics.md")
    parser.add_argument("--no-matmul", action="store_true", help="skip the matmul section")
    parser.add_argument("--only-out", action="store_true",
                        help="run only the out= section and replace it in the existing --out report")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/bench_numerics.py", *argv])
    if args.only_out:
        section = _out_section(args.n, args.repeats, command)
        args.out.write_text(_replace_section(args.out.read_text(), OUT_HEADING, section))
        print(section)
        return
    report = run(args.n, args.repeats, command)
    report += "\n" + _out_section(args.n, args.repeats, command)
    report += "\n" + _small_sizes(args.repeats)
    if not args.no_matmul:
        report += "\n" + _matmul_section()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
