"""Device profiles: load TOML files (shipped or from $HWSIM_DEVICES) and answer rate questions.

Fallback rules (documented in the README):
- peak: an op's class missing from the profile runs at the next wider class it has —
  binary → int4 → int8 → int16 → int32 → fp32 → fp64; fp8 → fp16 → fp32 → fp64; bf16 / tf32 → fp32 → fp64;
  int64 → fp64; with none of those, the widest class the profile has (emulation cost not modelled).
  Matrix ops (matmul, conv) look in ``[peak_matrix]`` before ``[peak]`` at each step.
- efficiency: curve ``<kind>_<class>``, ``<kind>``, ``<family>_<class>``, ``<family>``, each first
  with the op's qualifiers (``@<level>`` for the level its working set sits in and every larger
  cache level, for matmul / conv and single transforms; ``@batched`` for transforms with count > 1;
  ``@<op>`` (add, mul, mac, max) for elementwise ops)
  then without; log-log interpolation
  over the op's size index (matmul / conv: min(m, k, n) of the (im2col) product; transforms: ops
  per transform; elementwise: ops), clamped at the ends. Then the scalars ``[efficiency].<kind>``,
  ``<family>``, else 1.
- overhead: ``[overhead_s].<kind>``, ``<family>``, ``default``, else 0.
- GEMM tiles (GPU profiles with ``[gemm_tiles]``): the efficiency of a dense matmul / non-depthwise conv
  is multiplied by :meth:`Profile.tile_utilisation` (tile and wave quantization), except for a
  matrix-vector product (min(m, n) <= ``gemm_tiles.gemv_max``), which runs as a GEMV kernel.
- A memory level marked ``stalls = true`` (an MCU's flash read by an in-order core) does not overlap the
  arithmetic: its traffic time adds to the op's latency instead of running under the compute time.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from ._energy import EnergyTable
from ._optical import OpticalSpec
from ._schema import CLASSES, ProfileError, validate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
ENV_VAR = "HWSIM_DEVICES"

_CHAINS = {
    "binary": ("int4", "int8", "int16", "int32", "fp32", "fp64"),
    "int4": ("int8", "int16", "int32", "fp32", "fp64"),
    "int8": ("int16", "int32", "fp32", "fp64"),
    "int16": ("int32", "fp32", "fp64"),
    "int32": ("fp32", "fp64"),
    "int64": ("fp64",),
    "fp8": ("fp16", "fp32", "fp64"),
    "fp16": ("fp32", "fp64"),
    "bf16": ("fp32", "fp64"),
    "tf32": ("fp32", "fp64"),
    "fp32": ("fp64",),
    "fp64": (),
}
MATRIX_FAMILIES = ("matmul", "conv")
MAIN_ALIASES = ("main", "dram")


def interp_loglog(points: list[tuple[float, float]], x: float) -> float:
    """Piecewise-linear interpolation in log x / log y, clamped to the end values."""
    if x <= points[0][0]:
        return points[0][1]
    if x >= points[-1][0]:
        return points[-1][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            t = math.log(x / x0) / math.log(x1 / x0)
            return math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0)))
    raise AssertionError("unreachable: x inside the curve's range")


@dataclass(frozen=True)
class Profile:
    """A validated device profile. Rates in ops/s and bytes/s, energies in pJ, power in W."""

    name: str
    kind: str
    source: str
    data: dict = field(repr=False)

    @property
    def static_w(self) -> float:
        return self.data["static_w"]

    @property
    def exploits_sparsity(self) -> bool:
        return self.data["exploits_sparsity"]

    @cached_property
    def energy(self) -> EnergyTable:
        """Built once per profile (the model asks for it on every op)."""
        return EnergyTable(self.data["energy_pj"], self.energy_scale)

    @property
    def energy_scale(self) -> float:
        """Technology factor on the 45 nm / 0.9 V energy anchors (see devices._energy)."""
        return self.data.get("energy_scale", 1.0)

    def level_energy_pj(self, level: dict[str, Any]) -> float:
        """pJ per byte at ``level``: its figure, times :attr:`energy_scale` when the level is marked
        ``scale_energy`` (an on-chip SRAM figure given at 45 nm; default for cache levels)."""
        return level["energy_pj_per_byte"] * (self.energy_scale if level.get("scale_energy") else 1.0)

    @cached_property
    def optical(self) -> OpticalSpec | None:
        return OpticalSpec(self.data["optical"]) if self.kind == "optical4f" else None

    def with_optical(self, *, photons_per_pixel: float | None = None, dac_bits: int | None = None,
                     adc_bits: int | None = None) -> "Profile":
        """This optical4f profile run at other settings (None keeps the profile's figure): photons per
        camera pixel at full scale (they set the laser energy per pass), the modulator's DAC bits and
        the camera's ADC bits (conversion energies scale ∝ 2^bits from the profile's anchors)."""
        if self.optical is None:
            raise ValueError(f"profile {self.name!r} is not an optical4f profile: no optical settings")
        settings = dict(self.data["optical"].get("settings", {}))
        for key, value, lo in (("photons_per_pixel", photons_per_pixel, 0), ("dac_bits", dac_bits, 1),
                               ("adc_bits", adc_bits, 1)):
            if value is None:
                continue
            if isinstance(value, bool) or not value > 0 or value < lo or (key != "photons_per_pixel"
                                                                          and int(value) != value):
                wanted = "number" if lo == 0 else "integer"
                raise ValueError(f"with_optical: {key} must be a positive {wanted}, "
                                 f"got {value!r}")
            settings[key] = value
        data = {**self.data, "optical": {**self.data["optical"], "settings": settings}}
        return Profile(name=self.name, kind=self.kind, source=self.source, data=data)

    @property
    def host(self) -> "Profile | None":
        """The profile that runs what a 4f system cannot (None for electronic profiles)."""
        return load(self.optical.host_name) if self.optical is not None else None

    def level(self, name: str) -> dict[str, Any]:
        """The memory level called ``name``; ``"main"`` and ``"dram"`` also mean main memory on a
        profile without a level of that name (so a workload can say "dram" for any device)."""
        for lv in self.data["memory"]:
            if lv["name"] == name:
                return lv
        if name in MAIN_ALIASES and self.data["main_memory"]:
            return self.level(self.data["main_memory"])
        names = [lv["name"] for lv in self.data["memory"]]
        raise ValueError(f"profile {self.name!r} has no memory level {name!r} (levels: {names})")

    def place(self, working_set: float) -> dict[str, Any]:
        """Level holding a working set of ``working_set`` bytes: the first ``cache = true`` level
        (file order) that holds it, else main memory, else (larger than main memory) the profile's
        ``overflow_memory`` level when it names one (e.g. an MCU's external SDRAM)."""
        for lv in self.data["memory"]:
            if lv["cache"] and working_set <= lv["capacity_bytes"]:
                return lv
        main = self.level(self.data["main_memory"])
        spill = self.data.get("overflow_memory")
        if spill and working_set > main["capacity_bytes"]:
            return self.level(spill)
        return main

    def stream_s(self, level: dict[str, Any], working_set: float, placed: bool, nbytes: float,
                 written: float) -> float:
        """Seconds to move ``nbytes`` (``written`` of them stores) at ``level``. With read and write
        bandwidth curves (placed traffic): loads / read(ws) + stores / write(ws); else nbytes over
        :meth:`bandwidth`."""
        rd, wr = self.data.get("read_bandwidth_curve"), self.data.get("write_bandwidth_curve")
        if placed and rd and wr:
            return ((nbytes - written) / interp_loglog(rd, working_set)
                    + written / interp_loglog(wr, working_set))
        return nbytes / self.bandwidth(level, working_set, placed)

    def bandwidth(self, level: dict[str, Any], working_set: float, placed: bool) -> float:
        """Achievable bytes/s: a measured bandwidth curve (over working-set bytes) for placed
        traffic when the profile has one, else the level's bandwidth × efficiency.memory."""
        curve = self.data["bandwidth_curve"]
        if placed and curve:
            return interp_loglog(curve, working_set)
        return level["bandwidth_bytes_per_s"] * self.data["efficiency"].get("memory", 1.0)

    def peak(self, family: str, op_class: str) -> tuple[str, float]:
        """(class used, ops/s) for ``op_class`` after the fallback rules."""
        tables = ([self.data["peak_matrix"]] if family in MATRIX_FAMILIES else []) + [self.data["peak"]]
        for cls in (op_class, *_CHAINS[op_class], *CLASSES):  # chain, then the widest class it has
            for tab in tables:
                if cls in tab:
                    return cls, tab[cls]
        raise AssertionError("unreachable: a validated profile has a peak")

    def cache_chain_from(self, level: str) -> tuple[str, ...]:
        """``level`` and every larger cache level after it, then main memory."""
        chain = [lv["name"] for lv in self.data["memory"] if lv["cache"]] + [self.data["main_memory"]]
        return tuple(chain[chain.index(level):]) if level in chain else (level,)

    def efficiency(self, family: str, sub: str, op_class: str, size: float,
                   qualifiers: tuple[str, ...] = ()) -> float:
        """Achievable fraction of peak for an op of size index ``size`` (see module docstring)."""
        curves = self.data["efficiency_curves"]
        for qual in (*(f"@{q}" for q in qualifiers), ""):
            for key in (f"{sub}_{op_class}", sub, f"{family}_{op_class}", family):
                if key + qual in curves:
                    return interp_loglog(curves[key + qual], max(size, 1e-9))
        eff = self.data["efficiency"]
        return eff.get(sub, eff.get(family, 1.0))

    def tile_utilisation(self, m: int, n: int, groups: int = 1) -> float:
        """Fraction of the launched GEMM tiles' work that is useful, for an (m x k) @ (k x n) product
        (``groups`` of them in one launch) on a profile with ``[gemm_tiles]``; 1 without it.

        Tile and wave quantization (NVIDIA, "Matrix Multiplication Background User's Guide", ch. 3): the
        output is cut into tiles of one of the library's shapes (tm x tn), ceil(m/tm)·ceil(n/tn) per
        group; they run in waves of ``units`` tiles (one per SM), and a partial tile or a partial last
        wave costs as much as a full one. Utilisation = m·n·groups / (waves · units · tm · tn), for the
        tile shape that maximises it (the library's heuristic picks among its tile shapes). In (0, 1];
        1 when m and n are multiples of a tile shape and the tiles fill whole waves, and 1 for a
        matrix-vector product: min(m, n) <= ``gemv_max`` (a GEMV kernel, no output tiles; its cost is
        then the roofline's, memory bound: the weights are read once)."""
        spec = self.data.get("gemm_tiles")
        if not spec or min(m, n) <= spec["gemv_max"]:
            return 1.0
        best = 0.0
        for tm, tn in spec["shapes"]:
            tiles = groups * math.ceil(m / tm) * math.ceil(n / tn)
            waves = math.ceil(tiles / spec["units"])
            best = max(best, m * n * groups / (waves * spec["units"] * tm * tn))
        return best

    def overhead(self, family: str, sub: str) -> float:
        ovh = self.data["overhead_s"]
        return ovh.get(sub, ovh.get(family, ovh.get("default", 0.0)))


def _env_dirs() -> list[Path]:
    raw = os.environ.get(ENV_VAR, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def _search_dirs() -> list[Path]:
    """$HWSIM_DEVICES directories first (they override shipped profiles), then the shipped ones."""
    return [*_env_dirs(), PROFILE_DIR]


def list_profiles() -> list[str]:
    """Names (file stems) of the shipped profiles and of ``*.toml`` files in $HWSIM_DEVICES dirs."""
    names = set()
    for d in _search_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


@lru_cache(maxsize=64)
def _load_file(path: str, mtime_ns: int) -> Profile:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    data = validate(raw, path)
    return Profile(name=data["name"], kind=data["kind"], source=path, data=data)


def load(name_or_path: str | os.PathLike) -> Profile:
    """Load a profile by name (searched in $HWSIM_DEVICES, then the shipped profiles) or by path."""
    text = os.fspath(name_or_path)
    candidate = Path(text).expanduser()
    if text.endswith(".toml") or os.sep in text or (os.altsep and os.altsep in text):
        if not candidate.is_file():
            raise FileNotFoundError(f"profile file not found: {candidate}")
        path = candidate
    else:
        found = [d / f"{text}.toml" for d in _search_dirs() if (d / f"{text}.toml").is_file()]
        if not found:
            raise ValueError(f"unknown profile {text!r}; available: {', '.join(list_profiles())}")
        path = found[0]
    path = path.resolve()
    return _load_file(str(path), path.stat().st_mtime_ns)
