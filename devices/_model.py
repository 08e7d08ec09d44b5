"""The latency / energy model: one :class:`Row` per op, an :class:`Estimate` per workload.

Electronic op:  compute_s = ops / (peak(class) × efficiency × tile utilisation);
memory_s = Σ bytes / bandwidth(level) = overlapped_s + stall_s;
latency = max(compute_s, overlapped_s) + stall_s + overhead;  bound = the largest of compute_s, memory_s
and overhead. stall_s is the traffic at levels marked ``stalls`` (an in-order MCU core waiting on flash
line fills: Arm documents the Cortex-M7 as an in-order pipeline), which does not run under the compute;
tile utilisation (GPU profiles with ``[gemm_tiles]``) is Profile.tile_utilisation, 1 elsewhere.
Energy = ops-energy (pJ per MAC / add / mul by class and bits) + Σ bytes × E(level) + static_w × latency.
Ops run one after another: workload totals are sums.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from . import _report
from ._ops import Op, Workload
from ._profile import Profile, load

PJ = 1e-12


@dataclass(frozen=True)
class Row:
    """Cost of one op. ``utilisation``: achieved / peak ops/s of the class used (bytes/s / bandwidth
    for Memory ops; used tiles / offered tiles for optical ops). ``part``: the profile's name,
    ``optical`` or ``host:<name>``."""

    name: str
    latency_s: float
    energy_j: float
    bound: str
    utilisation: float
    part: str
    family: str
    op_class: str
    ops: float
    bytes: float
    compute_s: float
    memory_s: float
    overhead_s: float
    levels: str
    compute_j: float
    memory_j: float
    static_j: float

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, ops per byte (inf when the op moves no bytes)."""
        return self.ops / self.bytes if self.bytes else float("inf")


@dataclass(frozen=True)
class Estimate:
    """Per-op rows and totals of a workload on a profile."""

    profile: str
    rows: tuple[Row, ...]
    profiles: dict[str, Profile] = field(default_factory=dict, repr=False, compare=False)

    @property
    def latency_s(self) -> float:
        return sum(r.latency_s for r in self.rows)

    @property
    def energy_j(self) -> float:
        return sum(r.energy_j for r in self.rows)

    def to_dict(self) -> dict:
        """JSON-ready: profile, totals and rows (plain floats and strings)."""
        rows = [{**asdict(r), "intensity": r.intensity if r.bytes else None} for r in self.rows]
        return {"profile": self.profile, "latency_s": self.latency_s, "energy_j": self.energy_j, "rows": rows}

    def to_markdown(self) -> str:
        return _report.markdown(self)

    def to_csv(self, path: str | Path) -> Path:
        return _report.csv(self, path)

    def plot_roofline(self, path: str | Path) -> Path:
        return _report.roofline(self, path)


def _sub(op: Op) -> str:
    """The op's efficiency / overhead key before its family: depthwise, fastconv, a transform's kind."""
    if op.family == "conv" and op.depthwise:
        return "depthwise"
    if op.family == "conv" and op.fastconv:
        return "fastconv"
    return op.kind if op.family == "transform" else op.family


def _ops_energy_pj(op: Op, prof: Profile, ops_scale: float) -> float:
    table = prof.energy
    if op.family in ("matmul", "conv"):
        kind = op.number_kind
        if kind == "binary":
            per = table.binary_mac()
        elif kind == "shift":
            per = table.shift_mac(op.a_bits, op.acc_bits)
        else:
            per = table.mac("int" if kind == "int" else "fp", op.a_bits, op.b_bits, op.acc_bits)
        return op.macs * ops_scale * per
    if op.family == "elementwise":
        num = "fp" if op.number_kind == "float" else "int"
        per = {"add": lambda: table.add(num, op.bits), "max": lambda: table.add(num, op.bits),
               "mul": lambda: table.mul(num, op.bits, op.bits),
               "mac": lambda: table.mac(num, op.bits, op.bits, op.bits)}[op.op]()
        return op.ops * per
    if op.family == "transform":
        num = "fp" if op.op_class.startswith("fp") or op.op_class in ("tf32", "bf16") else "int"
        if op.kind == "fwht":
            return op.ops * table.add(num, op.bits)
        return op.ops * (table.add(num, op.bits) + table.mul(num, op.bits, op.bits)) / 2
    return 0.0


def _weights_home(op: Op, prof: Profile) -> tuple:
    """The op's traffic, with unplaced weights of a product sent to the profile's ``weights_memory``
    (read-only storage such as an MCU's flash) when it names one; activations are placed by their
    own working set."""
    traffic = op.traffic()
    home = prof.data.get("weights_memory")
    if home and op.family in ("matmul", "conv") and traffic[1].level is None:
        traffic = (traffic[0], replace(traffic[1], level=home))
    return traffic


def _electronic_row(op: Op, prof: Profile, part: str) -> Row:
    sparse = getattr(op, "sparsity", 0.0) if prof.exploits_sparsity else 0.0
    ops = op.ops * (1.0 - sparse)
    sub = _sub(op)
    traffic = _weights_home(op, prof)
    working_set = sum(t.nbytes for t in traffic)
    home = prof.place(working_set if op.family == "memory" else
                      sum(t.nbytes for t in traffic if t.level is None))
    memory_s = memory_pj = stall_s = 0.0
    levels = []
    for t in traffic:
        if t.nbytes == 0:
            continue
        placed = t.level is None and op.family != "memory"
        lv = home if placed else prof.level(t.level or prof.data["main_memory"])
        seconds = prof.stream_s(lv, working_set, placed, t.nbytes, t.written)
        memory_s += seconds
        stall_s += seconds if lv.get("stalls") else 0.0
        memory_pj += t.nbytes * prof.level_energy_pj(lv)
        if lv["name"] not in levels:
            levels.append(lv["name"])
    cls, peak = prof.peak(op.family, op.op_class) if ops else (op.op_class, 0.0)
    if ops:
        if op.family in ("matmul", "conv"):
            size, quals = min(op.gemm_dims), prof.cache_chain_from(home["name"])
        elif op.family == "transform":
            size = ops / op.count
            quals = ("batched",) if op.count > 1 else prof.cache_chain_from(home["name"])
        else:
            size, quals = ops, (op.op,) if op.family == "elementwise" else ()
        eff = prof.efficiency(op.family, sub, cls, size, quals)
        dense = getattr(op, "structure", "dense") == "dense"
        if op.family in ("matmul", "conv") and sub != "depthwise" and dense:
            m, _, n = op.gemm_dims
            eff *= prof.tile_utilisation(m, n, getattr(op, "groups", 1))
        compute_s = ops / (peak * eff)
    else:
        compute_s = 0.0
    overhead_s = prof.overhead(op.family, sub)
    latency = max(compute_s, memory_s - stall_s) + stall_s + overhead_s
    terms = {"compute": compute_s, "memory": memory_s, "overhead": overhead_s}
    bound = max(terms, key=terms.get) if latency > 0 else "memory"
    if not latency:
        util = 0.0
    else:
        util = ops / (latency * peak) if ops else memory_s / latency
    compute_j = _ops_energy_pj(op, prof, 1.0 - sparse) * PJ
    static_j = prof.static_w * latency
    return Row(op.name, latency, compute_j + memory_pj * PJ + static_j, bound, util, part, op.family, cls,
               ops, working_set, compute_s, memory_s, overhead_s, "+".join(levels), compute_j,
               memory_pj * PJ, static_j)


def _optical_row(op: Op, prof: Profile) -> Row | None:
    spec = prof.optical
    plan = spec.plan(op)
    if plan is None:
        return None
    mask_s = plan.mask_loads / spec.mask["rate_hz"] if spec.mask["rate_hz"] > 0 else 0.0
    io_s = plan.passes * spec.pass_s(plan)
    latency = io_s + mask_s
    compute_j = (plan.dac_conversions * spec.dac_pj(plan.dac_bits)
                 + plan.adc_conversions * spec.adc_pj()) * PJ
    compute_j += spec.laser_j(plan)
    static_j = prof.static_w * latency
    util = plan.planes * plan.bit_slices / (plan.passes * plan.tiles_per_pass)
    return Row(op.name, latency, compute_j + static_j, "io", util, "optical", op.family, "optical",
               float(op.ops), 0.0, 0.0, 0.0, mask_s, "", compute_j, 0.0, static_j)


def estimate(workload: Workload, profile: Profile | str) -> Estimate:
    """Latency and energy of every op of ``workload`` on ``profile`` (a Profile or a name/path).

    On an optical4f profile, convolutions and circulant / Fourier-diagonal MatMuls run optically
    (part ``optical``); every other op runs on the host profile it names (part ``host:<name>``).
    """
    if not isinstance(workload, Workload):
        raise TypeError(f"workload must be a devices.Workload, got {type(workload).__name__}")
    prof = profile if isinstance(profile, Profile) else load(profile)
    rows = []
    profiles = {prof.name: prof}
    host = prof.host
    if host is not None:
        profiles[host.name] = host
    for op in workload:
        row = _optical_row(op, prof) if host is not None else None
        if row is None:
            row = _electronic_row(op, host or prof, f"host:{host.name}" if host else prof.name)
        rows.append(row)
    return Estimate(prof.name, tuple(rows), profiles)
