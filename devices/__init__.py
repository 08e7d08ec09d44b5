"""Device profiles (TOML data) and a latency / energy cost model for workloads.

Public API: ``list_profiles``, ``load``, ``Workload`` with ``MatMul``, ``Conv2d``, ``Elementwise``,
``Transform``, ``Memory`` ops, ``estimate`` → ``Estimate`` (rows and totals), ``calibrate`` (measure
this machine into a profile), ``time_call``, ``aligned_empty`` / ``aligned_full`` (the timer and
64-byte-aligned buffers calibrate uses). Imports no other package of ours.
"""
from ._calibrate import aligned_empty, aligned_full, calibrate, time_call
from ._energy import EnergyTable
from ._model import Estimate, Row, estimate
from ._ops import Conv2d, Elementwise, MatMul, Memory, Transform, Workload
from ._optical import OpticalNoise, OpticalPlan, OpticalSpec
from ._profile import Profile, list_profiles, load
from ._schema import ProfileError

__all__ = [
    "Conv2d", "Elementwise", "aligned_empty", "aligned_full", "EnergyTable", "Estimate", "MatMul", "Memory",
    "OpticalNoise", "OpticalPlan",
    "OpticalSpec", "Profile", "ProfileError", "Row", "Transform", "Workload", "calibrate", "estimate",
    "list_profiles", "load", "time_call",
]
