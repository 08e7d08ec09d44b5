"""Profile schema: missing, negative, mistyped and unknown keys give errors naming file and key."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import devices
from devices import ProfileError

MINIMAL = """\
name = "tiny"
kind = "cpu"
static_w = 1.0
main_memory = "dram"

[peak]
fp32 = 1e9

[[memory]]
name = "dram"
capacity_bytes = 1e9
bandwidth_bytes_per_s = 1e9
energy_pj_per_byte = 100.0
"""


def write(tmp_path: Path, text: str, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_profile_loads(tmp_path):
    prof = devices.load(write(tmp_path, MINIMAL))
    assert prof.name == "tiny" and prof.kind == "cpu"
    assert prof.peak("matmul", "int8") == ("fp32", 1e9)  # int8 -> int16 -> int32 -> fp32


@pytest.mark.parametrize("key", ["name", "kind", "static_w", "main_memory", "memory"])
def test_missing_required_key_names_file_and_key(tmp_path, key):
    lines = MINIMAL.splitlines()
    if key == "memory":
        text = "\n".join(lines[: lines.index("[[memory]]")])
    else:
        text = "\n".join(ln for ln in lines if not ln.startswith(f"{key} ="))
    path = write(tmp_path, text)
    with pytest.raises(ProfileError, match=re.escape(str(path.resolve())) + f".*'{key}'.*missing"):
        devices.load(path)


@pytest.mark.parametrize("old,new,key", [
    ("static_w = 1.0", "static_w = -1.0", "static_w"),
    ("fp32 = 1e9", "fp32 = -5.0", "peak.fp32"),
    ("fp32 = 1e9", "fp32 = 0.0", "peak.fp32"),
    ("energy_pj_per_byte = 100.0", "energy_pj_per_byte = -1", "memory[0].energy_pj_per_byte"),
    ("bandwidth_bytes_per_s = 1e9", 'bandwidth_bytes_per_s = "fast"', "memory[0].bandwidth_bytes_per_s"),
    ('kind = "cpu"', 'kind = "toaster"', "kind"),
    ('main_memory = "dram"', 'main_memory = "hbm"', "main_memory"),
])
def test_bad_values_name_the_key(tmp_path, old, new, key):
    path = write(tmp_path, MINIMAL.replace(old, new))
    with pytest.raises(ProfileError, match=re.escape(f"key '{key}'")) as info:
        devices.load(path)
    assert str(path.resolve()) in str(info.value)


@pytest.mark.parametrize("extra,key", [
    ("colour = 'red'\n", "colour"),
    ("[peak]\nfp32 = 1e9\nfp12 = 3.0\n", "peak.fp12"),
    ("[efficiency]\nmatmul = 1.5\n", "efficiency.matmul"),
    ("[efficiency]\nmatmull = 0.5\n", "efficiency.matmull"),
    ("[energy_pj]\nint8_div = 1.0\n", "energy_pj.int8_div"),
    ("[energy_pj]\nint8_add = 0.5\nint16_add = 0.1\n", "energy_pj.int16_add"),
    ("[overhead_s]\nwarp = 1.0\n", "overhead_s.warp"),
    ("[efficiency_curves]\nmatmul_fp32 = [[1e3, 0.1], [1e3, 0.2]]\n", "efficiency_curves.matmul_fp32"),
    ("[efficiency_curves]\nfft_fp32 = [[1e3, 0.05], [1e4, 1.0]]\n", "efficiency_curves.fft_fp32"),
    ("[efficiency_curves]\nconvolution = [[1e3, 0.5]]\n", "efficiency_curves.convolution"),
])
def test_unknown_or_inconsistent_keys_are_errors(tmp_path, extra, key):
    text = MINIMAL.replace("[peak]\nfp32 = 1e9\n", "") if extra.startswith("[peak]") else MINIMAL
    head, tail = text.split("[[memory]]")
    if not extra.startswith("["):
        head = extra + head
    else:
        head = head + extra
    path = write(tmp_path, head + "[[memory]]" + tail)
    with pytest.raises(ProfileError, match=re.escape(f"key '{key}'")):
        devices.load(path)


def test_unknown_key_in_memory_level(tmp_path):
    path = write(tmp_path, MINIMAL + "latency_ns = 80\n")
    with pytest.raises(ProfileError, match=r"memory\[0\]\.latency_ns.*unknown"):
        devices.load(path)


def test_cache_chain_must_not_get_faster_with_size(tmp_path):
    cache = ('[[memory]]\nname = "l2"\ncapacity_bytes = 1e6\nbandwidth_bytes_per_s = 1e8\n'
             'energy_pj_per_byte = 10.0\ncache = true\n\n')
    path = write(tmp_path, MINIMAL.replace("[[memory]]", cache + "[[memory]]", 1))
    with pytest.raises(ProfileError, match="memory.dram.bandwidth_bytes_per_s"):
        devices.load(path)


def test_invalid_toml_names_file(tmp_path):
    path = write(tmp_path, MINIMAL + "[peak\n")
    with pytest.raises(ProfileError, match="not valid TOML"):
        devices.load(path)


def test_cycles_per_mac_needs_clock_and_excludes_peak(tmp_path):
    with pytest.raises(ProfileError, match="'clock_hz'"):
        devices.load(write(tmp_path, MINIMAL + "\n[cycles_per_mac]\nint8 = 1.0\n", "a.toml"))
    text = (MINIMAL.replace("static_w = 1.0", "static_w = 1.0\nclock_hz = 1e8")
            + "\n[cycles_per_mac]\nfp32 = 2.0\n")
    with pytest.raises(ProfileError, match="cycles_per_mac.fp32"):
        devices.load(write(tmp_path, text, "b.toml"))


def test_optical_profile_needs_its_sections(tmp_path):
    shipped = (Path(devices.__file__).parent / "profiles" / "optical4f.toml").read_text()
    broken = shipped.replace("adc_pj = 64.0", "")
    with pytest.raises(ProfileError, match="optical.camera.adc_pj.*missing"):
        devices.load(write(tmp_path, broken, "o.toml"))
    with pytest.raises(ProfileError, match="'optical'.*only allowed"):
        devices.load(write(tmp_path, MINIMAL + "\n[optical]\nhost = 'x'\n", "p.toml"))


def test_product_curves_may_dip_and_the_model_follows(tmp_path):
    # A BLAS runs a GEMM's rows in register blocks: 4 rows in full blocks can cost less than 3 rows with a
    # partial one, so matmul curves are exempt from the larger-size-never-cheaper rule; other curves are not.
    curve = "[[1, 0.1], [3, 0.1], [4, 0.4], [64, 0.9]]"
    path = write(tmp_path, MINIMAL.replace("[[memory]]",
                                           f"[efficiency_curves]\nmatmul_fp32 = {curve}\n\n[[memory]]"))
    prof = devices.load(path)
    rows = {m: devices.estimate(devices.Workload([devices.MatMul("mm", m=m, k=512, n=512)]), prof).rows[0]
            for m in (3, 4)}
    assert rows[4].compute_s < rows[3].compute_s
    assert rows[4].compute_s == pytest.approx(2 * 4 * 512 * 512 / (1e9 * 0.4))
    for i, key in enumerate(("conv_fp32", "depthwise", '"fastconv_fp32@dram"')):
        text = MINIMAL.replace("[[memory]]", f"[efficiency_curves]\n{key} = {curve}\n\n[[memory]]")
        devices.load(write(tmp_path, text, f"product{i}.toml"))
    bad = write(tmp_path, MINIMAL.replace("[[memory]]", f"[efficiency_curves]\nelementwise_fp32 = {curve}\n\n"
                                                          "[[memory]]"))
    with pytest.raises(ProfileError, match="efficiency_curves.elementwise_fp32"):
        devices.load(bad)
