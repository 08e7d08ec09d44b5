"""Profile schema: validates the dict parsed from a profile TOML file.

Every error is a :class:`ProfileError` naming the file and the dotted key. Unknown keys are errors.
"""
from __future__ import annotations

import math
import re
from typing import Any

from ._energy import ANCHOR_NM, ANCHOR_V, tech_energy_scale

KINDS = ("gpu", "cpu", "edge", "mcu", "optical4f")
#: peak-throughput classes, ops/s (a MAC counts 2 ops)
CLASSES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int64", "int32", "int16", "int8", "int4", "binary")
FAMILIES = ("matmul", "conv", "elementwise", "transform", "memory")
TRANSFORMS = ("fft", "dct", "fwht", "acdc")
#: sub-kinds of a family with their own efficiency / overhead, each falling back to its family's
#: (depthwise: Conv2d with groups == cin; fastconv: a dense stride-1 Conv2d larger than 1x1, Conv2d.fastconv)
SUBKINDS = ("depthwise", "fastconv")
#: keys of [efficiency] / [overhead_s]: an op family, a transform kind or a sub-kind
EFF_KEYS = FAMILIES + TRANSFORMS + SUBKINDS
ENERGY_KEY = re.compile(r"^(int|fp)(\d+)_(add|mul|mac)$")
#: efficiency curve keys: <family or transform>[_<class>][@<qualifier>],
#: qualifier = a memory level or "batched"
CURVE_KEY = re.compile(rf"^({'|'.join(EFF_KEYS)})(_({'|'.join(CLASSES)}))?(@[A-Za-z0-9_-]+)?$")


class ProfileError(ValueError):
    """A profile file is malformed: the message names the file and the key."""


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, msg: str) -> None:
        raise ProfileError(f"{self.source}: key '{key}': {msg}")

    def table(self, data: Any, key: str) -> dict:
        if not isinstance(data, dict):
            self.fail(key, f"must be a table, got {type(data).__name__}")
        return data

    def keys(self, data: dict, prefix: str, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
        for k in required:
            if k not in data:
                self.fail(prefix + k, "missing (required)")
        unknown = sorted(set(data) - set(required) - set(optional))
        if unknown:
            self.fail(prefix + unknown[0], f"unknown key (allowed: {', '.join(required + optional)})")

    def number(self, data: dict, key: str, prefix: str = "", *, positive: bool = False,
               at_most: float | None = None, integer: bool = False) -> float:
        v = data[key]
        name = prefix + key
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(name, f"must be a number, got {v!r}")
        if math.isnan(v) or v < 0 or (positive and v == 0) or v == math.inf:
            self.fail(name, f"must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")
        if integer and v != int(v):
            self.fail(name, f"must be a whole number, got {v!r}")
        if at_most is not None and v > at_most:
            self.fail(name, f"must be <= {at_most}, got {v!r}")
        return float(v)

    def string(self, data: dict, key: str, prefix: str = "", choices: tuple[str, ...] | None = None) -> str:
        v = data[key]
        if not isinstance(v, str) or not v:
            self.fail(prefix + key, f"must be a non-empty string, got {v!r}")
        if choices is not None and v not in choices:
            self.fail(prefix + key, f"must be one of {choices}, got {v!r}")
        return v

    def boolean(self, data: dict, key: str, prefix: str = "") -> bool:
        if not isinstance(data[key], bool):
            self.fail(prefix + key, f"must be true or false, got {data[key]!r}")
        return data[key]

    def number_table(self, data: dict, key: str, allowed, *, positive: bool = False,
                     at_most: float | None = None) -> dict[str, float]:
        tab = self.table(data.get(key, {}), key)
        out = {}
        for k in tab:
            ok = allowed(k) if callable(allowed) else k in allowed
            if not ok:
                self.fail(f"{key}.{k}", "unknown key")
            out[k] = self.number(tab, k, key + ".", positive=positive, at_most=at_most)
        return out


TOP_REQUIRED = ("name", "kind", "static_w")
TOP_OPTIONAL = ("description", "tdp_w", "exploits_sparsity", "main_memory", "clock_hz", "peak", "peak_matrix",
                "cycles_per_mac", "memory", "bandwidth_curve", "energy_pj", "overhead_s", "efficiency",
                "efficiency_curves", "optical", "process_nm", "voltage_v", "energy_scale",
                "read_bandwidth_curve", "write_bandwidth_curve", "weights_memory", "overflow_memory",
                "gemm_tiles")
MEM_REQUIRED = ("name", "capacity_bytes", "bandwidth_bytes_per_s", "energy_pj_per_byte")
OPTICAL_SECTIONS = {
    "modulator": (("pixels_x", "pixels_y", "rate_hz", "bits", "dac_pj"), ("binary_rate_hz",)),
    "mask": (("pixels_x", "pixels_y", "rate_hz"), ("bits",)),
    "camera": (("pixels_x", "pixels_y", "fps", "adc_bits", "adc_pj", "read_noise_e"),
               ("exposure_s", "quantum_efficiency", "full_well_e")),
    "laser": (("power_w", "wall_plug_efficiency", "wavelength_nm"), ("transmission",)),
}


def _curve(c: _Checker, data: Any, key: str) -> list[tuple[float, float]]:
    if not isinstance(data, list) or not data:
        c.fail(key, "must be a non-empty list of [x, y] pairs")
    pts = []
    for i, p in enumerate(data):
        if (not isinstance(p, list) or len(p) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf
                       for v in p)):
            c.fail(f"{key}[{i}]", f"must be a pair of finite positive numbers, got {p!r}")
        pts.append((float(p[0]), float(p[1])))
    if any(b[0] <= a[0] for a, b in zip(pts, pts[1:])):
        c.fail(key, "x values must be strictly increasing")
    return pts


def _memory(c: _Checker, data: Any) -> list[dict]:
    if not isinstance(data, list) or not data:
        c.fail("memory", "must be a non-empty array of tables ([[memory]])")
    levels = []
    for i, lv in enumerate(data):
        p = f"memory[{i}]."
        c.table(lv, f"memory[{i}]")
        c.keys(lv, p, MEM_REQUIRED, ("cache", "scale_energy", "stalls"))
        levels.append({
            "name": c.string(lv, "name", p),
            "capacity_bytes": c.number(lv, "capacity_bytes", p, positive=True, integer=True),
            "bandwidth_bytes_per_s": c.number(lv, "bandwidth_bytes_per_s", p, positive=True),
            "energy_pj_per_byte": c.number(lv, "energy_pj_per_byte", p),
            "cache": c.boolean(lv, "cache", p) if "cache" in lv else False,
            "stalls": c.boolean(lv, "stalls", p) if "stalls" in lv else False,
        })
        cache = levels[-1]["cache"]
        levels[-1]["scale_energy"] = c.boolean(lv, "scale_energy", p) if "scale_energy" in lv else cache
    names = [lv["name"] for lv in levels]
    if len(set(names)) != len(names):
        c.fail("memory", f"level names must be unique, got {names}")
    return levels


def _cache_chain(c: _Checker, levels: list[dict], main: str) -> None:
    """Cache levels (file order) then main memory must grow in capacity and energy per byte and not
    gain bandwidth, so that a larger working set never gets cheaper."""
    chain = [lv for lv in levels if lv["cache"] and lv["name"] != main]
    chain += [lv for lv in levels if lv["name"] == main]
    for a, b in zip(chain, chain[1:]):
        for key, sign in (("capacity_bytes", 1), ("energy_pj_per_byte", 1), ("bandwidth_bytes_per_s", -1)):
            if (b[key] - a[key]) * sign < 0:
                c.fail(f"memory.{b['name']}.{key}", f"must be {'>=' if sign > 0 else '<='} that of "
                       f"level {a['name']!r} (cache levels in file order, then main memory)")


#: curves over a product's smallest dimension (matmul, conv and conv's sub-kinds): exempt from
#: `_monotone_cost`. A BLAS runs rows in register blocks, and a partial block is slower per row than a
#: full one: a (4, k, k) product can take less time than a (3, k, k) one (devices/_calibrate.py,
#: _PANEL_ROWS; measured rates in reports/benchmarks/devices.md).
PRODUCT_CURVES = ("matmul", "conv") + SUBKINDS


def _monotone_cost(c: _Checker, pts: list[tuple[float, float]], key: str) -> None:
    """x / y (time per unit of work) may not fall as x grows: y at most doubles when x doubles."""
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x1 / y1 < x0 / y0 * (1 - 1e-9):
            c.fail(key, f"point [{x1:g}, {y1:g}] makes a larger size cheaper than [{x0:g}, {y0:g}] "
                        "(x/y must not decrease)")


def _gemm_tiles(c: _Checker, data: Any) -> dict | None:
    """[gemm_tiles]: ``shapes`` = the library's output tile shapes [[rows, cols], ...], ``units`` =
    the tiles that run at once (one per SM) and optional ``gemv_max`` (default 0): a product whose
    smaller output dimension min(m, n) is at most this runs as a matrix-vector (GEMV) kernel, without
    tile or wave quantization."""
    if data is None:
        return None
    tab = c.table(data, "gemm_tiles")
    c.keys(tab, "gemm_tiles.", ("shapes", "units"), ("gemv_max",))
    shapes = tab["shapes"]
    def bad(sh: Any) -> bool:
        return (not isinstance(sh, list) or len(sh) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sh))

    if not isinstance(shapes, list) or not shapes or any(map(bad, shapes)):
        c.fail("gemm_tiles.shapes",
               f"must be a non-empty list of [rows, cols] positive integers, got {shapes!r}")
    units = c.number(tab, "units", "gemm_tiles.", positive=True, integer=True)
    gemv_max = c.number(tab, "gemv_max", "gemm_tiles.", integer=True) if "gemv_max" in tab else 0
    return {"shapes": [(int(a), int(b)) for a, b in shapes], "units": int(units), "gemv_max": int(gemv_max)}


def _energy(c: _Checker, data: dict) -> dict[str, float]:
    anchors = c.number_table(data, "energy_pj", lambda k: bool(ENERGY_KEY.match(k)))
    series: dict[tuple[str, str], list[tuple[int, float, str]]] = {}
    for k, v in anchors.items():
        num, bits, op = ENERGY_KEY.match(k).groups()
        series.setdefault((num, op), []).append((int(bits), v, k))
    for pts in series.values():
        pts.sort()
        for (_, e0, k0), (_, e1, k1) in zip(pts, pts[1:]):
            if e1 < e0:
                c.fail(f"energy_pj.{k1}",
                       f"must be >= energy_pj.{k0} ({e0}): energy may not fall as bits grow")
    return anchors


def _optical(c: _Checker, data: Any) -> dict:
    tab = c.table(data, "optical")
    c.keys(tab, "optical.", ("host", "photons_per_pixel", *OPTICAL_SECTIONS), ())
    out: dict[str, Any] = {"host": c.string(tab, "host", "optical."),
                           "photons_per_pixel": c.number(tab, "photons_per_pixel", "optical.", positive=True)}
    for sec, (req, opt) in OPTICAL_SECTIONS.items():
        p = f"optical.{sec}."
        sub = c.table(tab[sec], f"optical.{sec}")
        c.keys(sub, p, req, opt)
        vals = {}
        for k in sub:
            positive = k not in ("rate_hz", "read_noise_e", "dac_pj", "adc_pj", "exposure_s")
            at_most = 1.0 if k in ("wall_plug_efficiency", "quantum_efficiency", "transmission") else None
            vals[k] = c.number(sub, k, p, positive=positive, at_most=at_most)
        out[sec] = vals
    return out


def validate(data: Any, source: str) -> dict:
    """Check a parsed profile and return it normalised (floats, defaults filled in)."""
    c = _Checker(source)
    c.table(data, "<top level>")
    c.keys(data, "", TOP_REQUIRED, TOP_OPTIONAL)
    kind = c.string(data, "kind", choices=KINDS)
    out: dict[str, Any] = {
        "name": c.string(data, "name"),
        "kind": kind,
        "description": c.string(data, "description") if "description" in data else "",
        "static_w": c.number(data, "static_w"),
        "tdp_w": c.number(data, "tdp_w") if "tdp_w" in data else None,
        "exploits_sparsity": c.boolean(data, "exploits_sparsity") if "exploits_sparsity" in data else False,
        "energy_pj": _energy(c, data),
        "overhead_s": c.number_table(data, "overhead_s", EFF_KEYS + ("default",)),
        "efficiency": c.number_table(data, "efficiency", EFF_KEYS, positive=True, at_most=1.0),
    }
    curves = c.table(data.get("efficiency_curves", {}), "efficiency_curves")
    for k in curves:
        if not CURVE_KEY.match(k):
            c.fail(f"efficiency_curves.{k}",
                   "unknown key (use <family or transform>[_<class>][@<level or batched>], "
                   f"classes {CLASSES})")
    out["efficiency_curves"] = {k: _curve(c, v, f"efficiency_curves.{k}") for k, v in curves.items()}
    for key, eff in out["efficiency_curves"].items():
        if any(e > 1.0 for _, e in eff):
            c.fail(f"efficiency_curves.{key}", "efficiencies must be <= 1")
        if not key.startswith(PRODUCT_CURVES):
            _monotone_cost(c, eff, f"efficiency_curves.{key}")
    _technology(c, data, out)
    peak = c.number_table(data, "peak", CLASSES, positive=True)
    cycles = c.number_table(data, "cycles_per_mac", CLASSES, positive=True)
    if cycles:
        if "clock_hz" not in data:
            c.fail("clock_hz", "missing (required by cycles_per_mac)")
        clock = c.number(data, "clock_hz", positive=True)
        for cls, cyc in cycles.items():
            if cls in peak:
                c.fail(f"cycles_per_mac.{cls}", f"peak.{cls} is also given: give one of them")
            peak[cls] = 2.0 * clock / cyc
    elif "clock_hz" in data:
        c.number(data, "clock_hz", positive=True)
    out["peak"] = peak
    out["peak_matrix"] = c.number_table(data, "peak_matrix", CLASSES, positive=True)
    if kind == "optical4f":
        if "optical" not in data:
            c.fail("optical", "missing (required for kind = 'optical4f')")
        out["optical"] = _optical(c, data["optical"])
        out["memory"], out["main_memory"], out["bandwidth_curve"] = [], None, []
        for key in ("peak", "memory", "main_memory"):
            if key in data:
                c.fail(key, "not used by an optical4f profile (its host profile runs electronic ops)")
        return out
    if "optical" in data:
        c.fail("optical", f"only allowed for kind = 'optical4f', not {kind!r}")
    for key in ("memory", "main_memory"):
        if key not in data:
            c.fail(key, "missing (required)")
    if not peak:
        c.fail("peak", "missing: give at least one class in [peak] or [cycles_per_mac]")
    out["memory"] = _memory(c, data["memory"])
    out["main_memory"] = c.string(data, "main_memory")
    if out["main_memory"] not in [lv["name"] for lv in out["memory"]]:
        c.fail("main_memory", f"names no [[memory]] level: {out['main_memory']!r}")
    _cache_chain(c, out["memory"], out["main_memory"])
    out["gemm_tiles"] = _gemm_tiles(c, data.get("gemm_tiles"))
    for key in ("bandwidth_curve", "read_bandwidth_curve", "write_bandwidth_curve"):
        out[key] = _curve(c, data[key], key) if key in data else []
    _monotone_cost(c, out["bandwidth_curve"], "bandwidth_curve")
    if bool(out["read_bandwidth_curve"]) != bool(out["write_bandwidth_curve"]):
        c.fail("read_bandwidth_curve", "give read_bandwidth_curve and write_bandwidth_curve together")
    names = [lv["name"] for lv in out["memory"]]
    for key in ("weights_memory", "overflow_memory"):
        out[key] = c.string(data, key) if key in data else None
        if out[key] is not None and out[key] not in names:
            c.fail(key, f"names no [[memory]] level: {out[key]!r} (levels: {names})")
    return out


def _technology(c: _Checker, data: dict, out: dict) -> None:
    """process_nm / voltage_v (defaults: the 45 nm, 0.9 V of the energy anchors) and energy_scale."""
    out["process_nm"] = c.number(data, "process_nm", positive=True) if "process_nm" in data else ANCHOR_NM
    out["voltage_v"] = c.number(data, "voltage_v", positive=True) if "voltage_v" in data else ANCHOR_V
    if "energy_scale" in data:
        out["energy_scale"] = c.number(data, "energy_scale", positive=True)
    else:
        out["energy_scale"] = tech_energy_scale(out["process_nm"], out["voltage_v"])
