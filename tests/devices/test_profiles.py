"""Shipped profiles load; list_profiles and load honour $HWSIM_DEVICES."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import devices

SHIPPED = ["h100-sxm", "jetson-orin-nano", "optical4f", "stm32h743", "titan-x-maxwell", "xeon-8380"]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads(name):
    prof = devices.load(name)
    assert prof.name == name
    assert name in devices.list_profiles()


def test_every_number_in_shipped_profiles_has_a_source_comment():
    for path in (Path(devices.__file__).parent / "profiles").glob("*.toml"):
        for ln in path.read_text().splitlines():
            if "=" in ln and not ln.lstrip().startswith(("#", "name", "kind", "description", "host",
                                                         "main_memory",
                                                         "cache", "exploits_sparsity")):
                assert "#" in ln, f"{path.name}: no source comment on {ln!r}"


def test_h100_uses_dense_not_sparse_rates():
    prof = devices.load("h100-sxm")
    assert prof.peak("matmul", "fp16") == ("fp16", 989.4e12)
    assert prof.peak("matmul", "int8") == ("int8", 1978.9e12)
    assert prof.peak("matmul", "int4") == ("int8", 1978.9e12)  # no int4 class: next wider
    assert prof.peak("elementwise", "fp64") == ("fp64", 34e12)  # vector, not tensor core
    assert prof.peak("matmul", "fp64") == ("fp64", 67e12)


def test_mcu_peak_from_cycles_per_mac():
    prof = devices.load("stm32h743")
    assert prof.peak("matmul", "int8") == ("int8", 2 * 400e6 / 1.0)


def test_mcu_has_its_own_binary_rate():
    """stm32h743 declares an XNOR-popcount rate (11 cycles per 32 binary MACs, an estimate derived
    from the instruction sequence in the profile) instead of falling back to int8."""
    prof = devices.load("stm32h743")
    assert prof.peak("matmul", "binary") == ("binary", pytest.approx(2 * 400e6 * 32 / 11))


def test_env_dirs_add_and_override_profiles(tmp_path, monkeypatch):
    src = Path(devices.__file__).parent / "profiles" / "xeon-8380.toml"
    text = src.read_text().replace('name = "xeon-8380"', 'name = "my-xeon"')
    (tmp_path / "my-xeon.toml").write_text(text)
    override = tmp_path / "other"
    override.mkdir()
    shutil.copy(src, override / "titan-x-maxwell.toml")  # shadows the shipped one
    assert "my-xeon" not in devices.list_profiles()
    monkeypatch.setenv("HWSIM_DEVICES", f"{tmp_path}:{override}")
    names = devices.list_profiles()
    assert "my-xeon" in names and set(SHIPPED) <= set(names)
    assert devices.load("my-xeon").name == "my-xeon"
    assert devices.load("titan-x-maxwell").kind == "cpu"


def test_unknown_profile_and_missing_file():
    with pytest.raises(ValueError, match="unknown profile 'nope'.*h100-sxm"):
        devices.load("nope")
    with pytest.raises(FileNotFoundError):
        devices.load("/no/such/profile.toml")
