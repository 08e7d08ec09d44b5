"""Microbenchmark this machine with numpy / scipy and write a ``cpu`` profile TOML.

Measured (median of several timed batches each):
- per-call overhead of a tiny matmul, FFT and DCT;
- streaming bandwidth ``np.add(a, b, out=c)`` (fp32) over working sets from 4 KiB upward (doubling, and by
  √2 across the last-level cache's edge): the profile's ``bandwidth_curve`` and its cache-level bandwidths;
- read-only bandwidth: a GEMV ``x[1, k] @ W[k, k]`` (fp32, BLAS at this process's thread setting)
  over the same working sets: ``read_bandwidth_curve``; the store bandwidth
  ``write_bandwidth_curve`` is what remains of the copy time at each working set once its two
  loads are paid at the read bandwidth: 1 / write = 3 / copy − 2 / read (write-allocate included),
  floored at 1 / write ≥ 1 / (3 · copy);
- elementwise compute rate per class (np.add, cache-resident): ``efficiency_curves.elementwise_<class>``,
  and of a compare-and-select (np.maximum with a scalar, a ReLU): ``elementwise_<class>@max``;
- per-call overhead of an elementwise op: median of array+array, array*scalar and max(array, scalar);
- sgemm / dgemm at square sizes and (m, k, k) panels with small m (k up to 3584: out of cache, where
  BLAS packs the panel instead of streaming it; m covering BLAS's full and partial row blocks, see
  ``_PANEL_ROWS``): peak = best rate;
  ``efficiency_curves.matmul_<class>@<level>`` = rate / peak over min(m, k, n), one curve per
  cache level the working sets sit in (the largest also unqualified), not forced monotone;
- scipy.fft.fft (complex) and scipy.fft.dct (type II) at power-of-two sizes, single calls and
  batches of rows (``@batched``; pocketfft vectorises across rows): curves over ops per transform,
  and per cache level of the single transforms' working set (``@<level>``: out-of-cache transforms
  run at their own, lower efficiency).
Cache capacities come from /sys/devices/system/cpu/cpu0/cache (defaults if absent).
"""
from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._io import write_toml
from ._profile import Profile, interp_loglog, load

#: rows m of the (m, k, k) calibration panels. A BLAS GEMM runs rows in register blocks (OpenBLAS on
#: AVX-512: blocks of 4 and 8 rows), and a partial block runs at a fraction of the rate, so the rate is
#: not monotone in m below 16 (the calibrated rates per m: reports/benchmarks/devices.md). The panels
#: sample both full blocks (1, 2, 4, 8, 16) and partial ones (3, 6, 12).
_PANEL_ROWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 48, 96)
_SIZES = {  # quick / full settings; GEMM panels are (m, k, k) with small m
    True: {"gemm": (32, 96, 256), "panels": ((4, 384), (16, 384)), "ws_max": 32 << 20, "ws_step": 4,
           "read_max": 32 << 20,
           "fft_log2": (9, 13, 17), "batched_log2": (9,), "min_time": 1e-3, "repeat": 3},
    False: {"gemm": (24, 48, 96, 192, 320, 640, 1280, 2560),
            "panels": tuple((m, k) for k in (384, 640, 1536, 3584) for m in _PANEL_ROWS),
            "ws_max": 2 << 30, "ws_step": 2, "read_max": 512 << 20,
            "fft_log2": (9, 11, 13, 15, 17, 19, 21, 23), "batched_log2": (7, 9, 11, 13, 15), "min_time": 5e-3,
            "repeat": 7},
}
_DEFAULT_CACHES = [("l1", 32 << 10), ("l2", 1 << 20), ("l3", 8 << 20)]
#: energy per byte by level (Horowitz ISSCC 2014, 45 nm: SRAM 64-bit read 20 pJ @ 32 KB, 100 pJ @ 1 MB;
#: DRAM 1.3-2.6 nJ / 64 bit)
_LEVEL_PJ = {"l1": (2.5, "Horowitz 2014: 20 pJ per 64-bit read, 32 KB SRAM"),
             "l2": (12.5, "Horowitz 2014: 100 pJ per 64-bit read, 1 MB SRAM"),
             "l3": (25.0, "estimate: 2x the 1 MB SRAM figure for a larger shared SRAM"),
             "dram": (162.5, "Horowitz 2014: DRAM 1.3 nJ per 64 bits (low end)")}


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_call(fn: Callable[[], object], *, min_time: float = 2e-3, repeat: int = 5,
              clock: str = "wall") -> float:
    """Seconds per call of ``fn``: the median over ``repeat`` batches of each batch's mean, a batch
    running ``fn`` often enough to last at least ``min_time`` seconds (after one warm-up call).

    clock: ``wall`` (time.perf_counter) or ``cpu`` (time.process_time: CPU time of this process,
    which excludes time the OS gives to other processes; equals latency for single-threaded code).
    """
    if repeat < 1 or min_time <= 0:
        raise ValueError(f"repeat must be >= 1 and min_time > 0, got {repeat}, {min_time}")
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {tuple(CLOCKS)}, got {clock!r}")
    now = CLOCKS[clock]
    fn()
    number = 1
    while True:
        t0 = now()
        for _ in range(number):
            fn()
        dt = now() - t0
        if dt >= min_time:
            break
        number = max(number * 2, int(number * min_time / max(dt, 1e-9) * 1.2))
    times = [dt / number]
    for _ in range(repeat - 1):
        t0 = now()
        for _ in range(number):
            fn()
        times.append((now() - t0) / number)
    return statistics.median(times)


def aligned_empty(shape: int | tuple[int, ...], dtype=np.float64, align: int = 64) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an ``align``-byte boundary.

    numpy only guarantees 16-byte alignment for small arrays; with AVX-512 an output that is not
    64-byte aligned splits every store across two cache lines and halves in-cache elementwise
    throughput, so calibration and validation use aligned buffers."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + align, np.uint8)
    start = (-buf.ctypes.data) % align
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def aligned_full(shape: int | tuple[int, ...], value, dtype=np.float64) -> np.ndarray:
    """:func:`aligned_empty` filled with ``value``."""
    out = aligned_empty(shape, dtype)
    out[...] = value
    return out


def cache_sizes() -> list[tuple[str, int]]:
    """(name, bytes) of the data/unified caches of cpu0, smallest first."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    found = {}
    for idx in sorted(base.glob("index*")):
        try:
            kind = (idx / "type").read_text().strip()
            level = int((idx / "level").read_text())
            size = (idx / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
        found[f"l{level}"] = int(size.rstrip("KMG")) * mult
    return sorted(found.items(), key=lambda kv: kv[1]) or list(_DEFAULT_CACHES)


def _net(t: float, ovh: float) -> float:
    """Call time less the per-call overhead, floored at 5 % of the call time."""
    return max(t - ovh, t * 0.05)


def _add_time(n: int, dtype, timer) -> float:
    a, b, c = aligned_full(n, 1, dtype), aligned_full(n, 1, dtype), aligned_empty(n, dtype)
    return timer(lambda: np.add(a, b, out=c))


def _working_sets(start: int, ws_max: int, step: int, llc: int) -> list[int]:
    """Working sets (bytes) from ``start`` to ``ws_max`` by factors of ``step``, and by factors of
    √2 from half the last-level cache ``llc`` to four times it: bandwidth falls by a step there (a
    streamed working set just above the cache misses on every line), which a coarse grid would
    interpolate over."""
    grid, ws = set(), start
    while ws <= ws_max:
        grid.add(ws)
        ws *= step
    fine = llc / 2
    while fine <= min(4 * llc, ws_max):
        grid.add(int(fine))
        fine *= math.sqrt(2.0)
    return sorted(w for w in grid if w >= start)


def _bandwidth_curve(sets: list[int], ovh: float, timer) -> list[tuple[float, float]]:
    """[(working-set bytes, bytes/s)] of np.add on three fp32 arrays at each working set of ``sets``
    (fp32 moves more bytes per instruction than fp64, so in-cache sizes come closer to the cache's
    bandwidth)."""
    pts = []
    for ws in sets:
        n = ws // 12
        t = _add_time(n, np.float32, timer)
        pts.append((float(12 * n), 12 * n / _net(t, ovh)))
    return pts


def _read_curve(sets: list[int], ovh: float, timer) -> list[tuple[float, float]]:
    """[(working-set bytes, bytes/s)] of a GEMV np.matmul(x[1, k], W[k, k]) in fp32 at each working
    set of ``sets``: a read-only stream of W (the output is k values)."""
    pts = []
    for ws in sets:
        k = int(math.sqrt(ws / 4))
        x, w = aligned_full((1, k), 1, np.float32), aligned_full((k, k), 1, np.float32)
        y = aligned_empty((1, k), np.float32)
        t = timer(lambda: np.matmul(x, w, out=y))
        nbytes = 4.0 * (k * k + 2 * k)
        pts.append((nbytes, nbytes / _net(t, ovh)))
    return pts


def _write_curve(read: list[list[float]], copy: list[list[float]]) -> list[list[float]]:
    """Store bandwidth at each read-curve working set: 1/write = 3/copy − 2/read (np.add moves two
    loads and one store), floored at 1/write ≥ 1/(3·copy)."""
    pts = []
    for ws, rd in read:
        cp = interp_loglog([tuple(p) for p in copy], ws)
        pts.append((ws, 1.0 / max(3.0 / cp - 2.0 / rd, 1.0 / (3.0 * cp))))
    return _monotone(pts)


def _monotone(pts: list[tuple[float, float]]) -> list[list[float]]:
    """Cap y so that x / y never decreases (a larger size never predicted cheaper)."""
    out = [list(pts[0])]
    for x, y in pts[1:]:
        x0, y0 = out[-1]
        out.append([x, min(y, y0 * x / x0)])
    return out


def _rate_curve(points: list[tuple[float, float]], peak: float, monotone: bool = True) -> list[list[float]]:
    """[(size, ops/s)] -> [[size, efficiency]] sorted by size (rates at equal sizes averaged); with
    ``monotone``, capped so that a larger size is never predicted cheaper (see `_monotone`)."""
    by_size: dict[float, list[float]] = {}
    for size, rate in points:
        by_size.setdefault(size, []).append(rate)
    pts = [(x, min(statistics.mean(r) / peak, 1.0)) for x, r in sorted(by_size.items())]
    return _monotone(pts) if monotone else [list(p) for p in pts]


def _place(caches: list[tuple[str, int]], ws: float) -> str:
    """The level a working set sits in (same rule as Profile.place)."""
    return next((name for name, cap in caches if ws <= cap), "dram")


def _gemm_points(shapes, dtype, ovh, timer, caches) -> dict[str, list[tuple[float, float]]]:
    """{level: [(min(m, k, n), ops/s)]} for np.matmul at each (m, k, n)."""
    size = np.dtype(dtype).itemsize
    groups: dict[str, list[tuple[float, float]]] = {}
    for m, k, n in shapes:
        a, b, c = aligned_full((m, k), 1, dtype), aligned_full((k, n), 1, dtype), aligned_empty((m, n), dtype)
        t = timer(lambda: np.matmul(a, b, out=c))
        ops, nbytes = 2.0 * m * k * n, float(size * (m * k + k * n + m * n))
        groups.setdefault(_place(caches, nbytes), []).append((min(m, k, n), ops / _net(t, ovh)))
    return groups


def _transform_points(kind, log2s, dtype, ovh, timer, batched) -> list[tuple[float, float, float]]:
    """[(ops per transform, ops/s, working-set bytes)] for scipy.fft.fft / dct, single calls or
    batches of rows (working set: the input and output arrays, as devices.Transform counts it)."""
    import scipy.fft  # imported here: `import devices` stays light
    pts = []
    for lg in log2s:
        n = 1 << lg
        rows = max(2, (1 << 17) // n) if batched else 1
        shape = (rows, n) if batched else (n,)
        if kind == "fft":
            x = aligned_full(shape, 1 + 1j, dtype)
            ops = 5.0 * n * lg
            t = timer(lambda: scipy.fft.fft(x, axis=-1))
        else:
            x = aligned_full(shape, 1, dtype)
            ops = 2.5 * n * lg
            t = timer(lambda: scipy.fft.dct(x, axis=-1))
        pts.append((ops, rows * ops / _net(t, ovh), 2.0 * x.nbytes))
    return pts


def calibrate(out: str | os.PathLike = "local-cpu.toml", quick: bool = False, name: str | None = None,
              clock: str = "wall") -> Profile:
    """Measure this machine and write a profile to ``out`` (atomically); return the loaded profile.

    ``quick=True`` uses small sizes and runs in seconds (for tests); the full setting takes about
    a minute and goes up to 2560² GEMMs, 2 GiB working sets and 2^23-point FFTs. ``clock`` is
    passed to :func:`time_call` (``cpu`` suits a shared machine with single-threaded BLAS).
    """
    cfg = _SIZES[bool(quick)]
    timer = lambda fn: time_call(fn, min_time=cfg["min_time"], repeat=cfg["repeat"], clock=clock)  # noqa: E731
    out = Path(out)
    t_start = time.perf_counter()
    ovh = _overheads(timer)
    caches = cache_sizes()
    bandwidth = _bandwidth_curves(cfg, ovh, timer, caches)
    peak, curves = _gemm_curves(cfg, ovh, timer, caches)
    curves.update(_transform_curves(cfg, ovh, timer, caches, peak))
    curves.update(_elementwise_curves(ovh, timer, peak))
    levels, comments = _memory_levels(caches, bandwidth["bandwidth_curve"], bandwidth["measured_ws"])
    description = (f"{_cpu_name()}, {os.cpu_count() or 1} logical CPUs, numpy {np.__version__}; measured by "
                   f"devices.calibrate (quick={bool(quick)}, clock={clock}) on "
                   f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    doc = _profile_doc(name or out.stem, description, bandwidth, peak, ovh, curves, levels)
    header = (f"Profile written by devices.calibrate in {time.perf_counter() - t_start:.1f} s. "
              "Energies per op: Horowitz ISSCC 2014 defaults.")
    write_toml(out, doc, {**comments, **_COMMENTS}, header=header)
    return load(out.resolve())


def _overheads(timer) -> dict[str, float]:
    """Seconds per call of tiny operations (all dispatch): ``matmul``, ``elementwise`` (median of
    array+array, array*scalar, max(array, scalar)), ``fft``, ``dct``."""
    import scipy.fft  # imported here: `import devices` stays light

    a2, b2, c2 = aligned_full((2, 2), 1), aligned_full((2, 2), 1), aligned_empty((2, 2))
    tiny, tiny_out, tiny_c = aligned_full(8, 1), aligned_empty(8), aligned_full(8, 1 + 1j, np.complex128)
    elementwise = [timer(lambda: np.add(tiny, tiny, out=tiny_out)),
                   timer(lambda: np.multiply(tiny, 2.0, out=tiny_out)),
                   timer(lambda: np.maximum(tiny, 0.0, out=tiny_out))]
    return {"matmul": timer(lambda: np.matmul(a2, b2, out=c2)),
            "elementwise": statistics.median(elementwise),
            "fft": timer(lambda: scipy.fft.fft(tiny_c)),
            "dct": timer(lambda: scipy.fft.dct(tiny))}


def _bandwidth_curves(cfg: dict, ovh: dict, timer, caches) -> dict:
    """The profile's ``bandwidth_curve`` (copy), ``read_bandwidth_curve`` and
    ``write_bandwidth_curve``, and ``measured_ws``: the largest copy working set measured (bytes)."""
    llc = caches[-1][1]
    bw_pts = _bandwidth_curve(_working_sets(4 << 10, cfg["ws_max"], cfg["ws_step"], llc), ovh["elementwise"],
                              timer)
    bw_curve = _monotone(bw_pts)
    read_sets = _working_sets(16 << 10, cfg["read_max"], cfg["ws_step"], llc)
    read_curve = _monotone(_read_curve(read_sets, ovh["matmul"], timer))
    return {"bandwidth_curve": bw_curve, "read_bandwidth_curve": read_curve,
            "write_bandwidth_curve": _write_curve(read_curve, bw_curve), "measured_ws": bw_pts[-1][0]}


_CLASSES = (("fp32", np.float32), ("fp64", np.float64))


def _gemm_curves(cfg: dict, ovh: dict, timer, caches) -> tuple[dict[str, float], dict]:
    """(``peak``: the best GEMM rate per class, ``matmul_<class>@<level>`` efficiency curves and
    ``matmul_<class>``: the largest level measured)."""
    shapes = [(s, s, s) for s in cfg["gemm"]] + [(m, k, k) for m, k in cfg["panels"]]
    order = [name for name, _ in caches] + ["dram"]
    peak, curves = {}, {}
    for cls, dt in _CLASSES:
        groups = _gemm_points(shapes, dt, ovh["matmul"], timer, caches)
        peak[cls] = max(r for pts in groups.values() for _, r in pts)
        for level in sorted(groups, key=order.index):
            # not capped: a (4, k, k) product really is cheaper than a (3, k, k) one (see _PANEL_ROWS)
            curves[f"matmul_{cls}@{level}"] = _rate_curve(groups[level], peak[cls], monotone=False)
        curves[f"matmul_{cls}"] = curves[f"matmul_{cls}@{level}"]  # the largest level measured
    return peak, curves


def _transform_curves(cfg: dict, ovh: dict, timer, caches, peak: dict) -> dict:
    """``fft_<class>`` / ``dct_<class>`` efficiency curves over ops per transform: single calls, per
    cache level of their working set (``@<level>``), and batches of rows (``@batched``)."""
    curves = {}
    for kind in ("fft", "dct"):
        for cls, dt in (("fp32", np.complex64 if kind == "fft" else np.float32),
                        ("fp64", np.complex128 if kind == "fft" else np.float64)):
            for batched, log2s, key in ((False, cfg["fft_log2"], f"{kind}_{cls}"),
                                        (True, cfg["batched_log2"], f"{kind}_{cls}@batched")):
                pts = _transform_points(kind, log2s, dt, ovh[kind], timer, batched)
                curves[key] = _rate_curve([(o, r) for o, r, _ in pts], peak[cls])
                if batched:
                    continue
                by_level: dict[str, list[tuple[float, float]]] = {}
                for o, r, ws in pts:
                    by_level.setdefault(_place(caches, ws), []).append((o, r))
                for level, lpts in by_level.items():
                    curves[f"{kind}_{cls}@{level}"] = _rate_curve(lpts, peak[cls])
    return curves


def _elementwise_curves(ovh: dict, timer, peak: dict) -> dict:
    """Elementwise compute rate per class over its GEMM peak: np.add on a 256 KiB (cache-resident)
    working set (``elementwise_<class>``) and np.maximum(a, 0), a ReLU, on as many elements
    (``elementwise_<class>@max``)."""
    curves = {}
    for cls, dt in _CLASSES:
        n = (256 << 10) // (3 * np.dtype(dt).itemsize)
        rate = n / max(_add_time(n, dt, timer) - ovh["elementwise"], 1e-12)
        curves[f"elementwise_{cls}"] = [[1.0, min(1.0, rate / peak[cls])]]
        a, c = aligned_full(n, 1, dt), aligned_empty(n, dt)
        zero = dt(0)
        rate = n / max(timer(lambda: np.maximum(a, zero, out=c)) - ovh["elementwise"], 1e-12)
        curves[f"elementwise_{cls}@max"] = [[1.0, min(1.0, rate / peak[cls])]]
    return curves


def _memory_levels(caches, bw_curve, measured_ws: float) -> tuple[list[dict], dict[str, str]]:
    """The ``memory`` levels (caches, then ``dram`` with the physical memory as capacity): bandwidth
    from the copy curve at half a cache's capacity (main memory: at the largest working set
    measured), never above an inner level's; energies from `_LEVEL_PJ`. Also their comments."""
    levels, comments = [], {}
    last_bw = float("inf")
    for lname, cap in caches + [("dram", 0)]:
        is_main = lname == "dram"
        bw = interp_loglog(bw_curve, measured_ws if is_main else cap / 2)
        last_bw = min(last_bw, bw)
        pj, note = _LEVEL_PJ.get(lname, _LEVEL_PJ["l3"])
        capacity = max(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), 1) if is_main else cap
        levels.append({"name": lname, "capacity_bytes": float(capacity), "bandwidth_bytes_per_s": last_bw,
                       "energy_pj_per_byte": pj, "cache": not is_main})
        comments[f"memory.{lname}.energy_pj_per_byte"] = note
        comments[f"memory.{lname}.bandwidth_bytes_per_s"] = "measured (np.add fp32 streaming)"
    return levels, comments


def _cpu_name() -> str:
    """The ``model name`` of /proc/cpuinfo, else what `platform` knows."""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _profile_doc(name: str, description: str, bandwidth: dict, peak: dict, ovh: dict, curves: dict,
                 levels: list[dict]) -> dict:
    """The profile as a dict in the order of its TOML file."""
    return {
        "name": name,
        "kind": "cpu",
        "description": description,
        "static_w": 5.0 * (os.cpu_count() or 1),
        "main_memory": "dram",
        "bandwidth_curve": bandwidth["bandwidth_curve"],
        "read_bandwidth_curve": bandwidth["read_bandwidth_curve"],
        "write_bandwidth_curve": bandwidth["write_bandwidth_curve"],
        "peak": peak,
        "overhead_s": {**ovh, "transform": ovh["fft"], "conv": ovh["matmul"], "default": ovh["elementwise"]},
        "efficiency": {"memory": 1.0},
        "efficiency_curves": curves,
        "memory": levels,
    }


#: trailing comments of the profile's measured and estimated entries
_COMMENTS = {
    "static_w": "estimate: 5 W per logical CPU (not measured)",
    "bandwidth_curve": "measured: [working-set bytes, bytes/s] of np.add(a, b, out=c), fp32",
    "read_bandwidth_curve": "measured: [working-set bytes, bytes/s] of a GEMV x[1,k] @ W[k,k], fp32 (loads)",
    "write_bandwidth_curve": "derived: 1/write = 3/copy - 2/read at each working set (stores)",
    "peak.fp32": "measured: best sgemm rate (ops/s)", "peak.fp64": "measured: best dgemm rate (ops/s)",
    "efficiency_curves.elementwise_fp32": "measured: np.add on 256 KiB, elements/s over peak.fp32",
    "efficiency_curves.elementwise_fp64": "measured: np.add on 256 KiB, elements/s over peak.fp64",
}
