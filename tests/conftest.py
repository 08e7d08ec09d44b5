"""Shared test configuration: bounded hypothesis profiles and the shared-data location."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: ../shared beside the project root (data for tests; may be absent: tests must skip).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def cupy_device():
    """The ``cupy`` module when CuPy finds a CUDA device; the test is skipped otherwise."""
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception:  # noqa: BLE001 (CUDARuntimeError: no driver or device)
        pytest.skip("no CUDA device")
    return cp
