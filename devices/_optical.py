"""First-order cost model of a 4f optical correlator, and its numerics parameters.

A 4f system convolves the modulator image with the mask's point-spread function; a camera reads
the intensity. Geometry (all counted, see :func:`plan`):

- Conv2d: one *plane* = one (input channel, output channel, image) 2-D convolution. It occupies a
  tile of (h+kh−1)×(w+kw−1) pixels (a linear-convolution frame) on the modulator, the mask and the
  camera; a pass runs as many tiles as the smallest of the three holds. A plane larger than a
  device is cut into blocks (overlap-add).
- MatMul with structure circulant / fourier_diagonal: one row of A is a cyclic 1-D convolution of
  n pixels; a pass runs ⌊pixels / n⌋ rows.
- Intensity is non-negative: signed activations double the planes (x = x⁺ − x⁻), signed weights
  double them again (w = w⁺ − w⁻), subtracted digitally.
- Activations wider than the modulator's bits are sent as bit slices (one pass set per slice).
- latency = passes × max(1/f_modulator, 1/f_camera, exposure) + mask loads / f_mask
- energy = DAC conversions × E_DAC(b_dac) + ADC conversions × E_ADC(b_adc) + E_laser
  (+ static power × latency, added by the model). E_DAC and E_ADC scale ∝ 2^b from their anchors
  (the modulator's and the camera's bits; Walden figure of merit).
- E_laser (assumption): the laser is gated to the exposure and delivers ``photons_per_pixel``
  photons of energy hc/λ to every lit modulator pixel (one per DAC conversion), divided by the
  optical ``transmission`` (modulator, mask, lenses) and the wall-plug efficiency. A full-scale
  output pixel then gathers about ``photons_per_pixel`` photons (point-spread weights sum to at most
  1). When that light needs longer than a pass at the laser's power, the pass is stretched.
- Settings (`OpticalSpec.settings`, from ``devices.Profile.with_optical``) replace the profile's
  photons per pixel, DAC bits (the modulator's bit depth) and ADC bits, so one configuration gives
  both the emulated numerics and the cost.
Everything else (dense MatMul, Elementwise, Transform, Memory) runs on the host profile.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OpticalNoise:
    """Conversion and noise parameters for emulating the optical numerics.

    dac_bits: modulator levels (input quantisation); adc_bits: camera ADC resolution;
    photons_per_pixel: photons reaching a pixel at full scale; read_noise_e: camera read noise
    (electrons rms); quantum_efficiency: electrons per photon; full_well_e: pixel capacity.
    """

    dac_bits: int
    adc_bits: int
    photons_per_pixel: float
    read_noise_e: float
    quantum_efficiency: float = 1.0
    full_well_e: float | None = None

    @property
    def signal_e(self) -> float:
        """Photoelectrons at full scale (clipped at the full well)."""
        e = self.photons_per_pixel * self.quantum_efficiency
        return min(e, self.full_well_e) if self.full_well_e else e

    @property
    def relative_sigma(self) -> float:
        """Noise rms relative to full scale: sqrt(shot² + read²) / signal (shot² = signal electrons)."""
        return math.sqrt(self.signal_e + self.read_noise_e ** 2) / self.signal_e

    @property
    def effective_bits(self) -> float:
        """min(adc_bits, log2 SNR): shot-noise-limited b bits need 4^b photoelectrons (Hamerly 2019)."""
        return min(float(self.adc_bits), math.log2(1.0 / self.relative_sigma))


@dataclass(frozen=True)
class OpticalPlan:
    """How one op runs on the 4f system (all counts are totals for the op)."""

    planes: int            # plane convolutions including the ± split
    sign_split: int        # 1, 2 or 4
    bit_slices: int
    tiles_per_pass: int
    passes: int
    mask_loads: int
    dac_conversions: int
    adc_conversions: int
    dac_bits: int
    t_pass_s: float


class OpticalSpec:
    """The ``[optical]`` table of an optical4f profile."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.host_name: str = data["host"]
        self.modulator = data["modulator"]
        self.mask = data["mask"]
        self.camera = data["camera"]
        self.laser = data["laser"]

        self.settings: dict[str, Any] = data.get("settings", {})

    @property
    def photons_per_pixel(self) -> float:
        """Photons per camera pixel at full scale (the setting, else the profile's figure)."""
        return float(self.settings.get("photons_per_pixel", self.data["photons_per_pixel"]))

    @property
    def modulator_bits(self) -> int:
        """The modulator's DAC bits in use (the setting, else the profile's)."""
        return int(self.settings.get("dac_bits", self.modulator["bits"]))

    @property
    def adc_bits(self) -> int:
        """The camera ADC bits in use (the setting, else the profile's)."""
        return int(self.settings.get("adc_bits", self.camera["adc_bits"]))

    def noise_model(self) -> OpticalNoise:
        cam = self.camera
        return OpticalNoise(
            dac_bits=self.modulator_bits, adc_bits=self.adc_bits,
            photons_per_pixel=self.photons_per_pixel, read_noise_e=cam["read_noise_e"],
            quantum_efficiency=cam.get("quantum_efficiency", 1.0), full_well_e=cam.get("full_well_e"))

    def dac_pj(self, bits: int) -> float:
        """Energy of one DAC conversion at ``bits`` (∝ 2^bits from the modulator's anchor)."""
        return self.modulator["dac_pj"] * 2.0 ** (bits - self.modulator["bits"])

    def adc_pj(self, bits: int | None = None) -> float:
        """Energy of one ADC conversion at ``bits`` (default: in use), ∝ 2^bits from the camera's anchor."""
        bits = self.adc_bits if bits is None else bits
        return self.camera["adc_pj"] * 2.0 ** (bits - self.camera["adc_bits"])

    def laser_j(self, plan: "OpticalPlan") -> float:
        """Electrical laser energy of an op: photons per lit modulator pixel × hc/λ × DAC conversions,
        / (transmission × wall-plug efficiency)."""
        photon_j = 6.62607015e-34 * 299792458.0 / (self.laser["wavelength_nm"] * 1e-9)
        optical = (plan.dac_conversions * self.photons_per_pixel * photon_j
                   / self.laser.get("transmission", 1.0))
        return optical / self.laser["wall_plug_efficiency"]

    def pass_s(self, plan: "OpticalPlan") -> float:
        """Time of one pass: the plan's, stretched when the laser's power cannot deliver a pass's light."""
        optical = self.laser_j(plan) * self.laser["wall_plug_efficiency"] / max(plan.passes, 1)
        return max(plan.t_pass_s, optical / self.laser["power_w"])

    def _devices(self) -> tuple[dict, ...]:
        return self.modulator, self.mask, self.camera

    def _t_pass(self, a_bits: int) -> float:
        mod = self.modulator
        rate = mod.get("binary_rate_hz", mod["rate_hz"]) if a_bits == 1 else mod["rate_hz"]
        times = [1.0 / self.camera["fps"], self.camera.get("exposure_s", 0.0)]
        if rate > 0:
            times.append(1.0 / rate)
        return max(times)

    def plan(self, op: Any) -> OpticalPlan | None:
        """Geometry of ``op`` on this system, or None when it cannot run optically."""
        family = getattr(op, "family", None)
        if family == "conv":
            return self._plan_conv(op)
        if family == "matmul" and op.structure != "dense":
            return self._plan_circulant(op)
        return None

    def _finish(self, op: Any, planes_unsigned: int, kernels: int, tiles: int, mask_tiles: int,
                in_px: int, out_px: int) -> OpticalPlan | None:
        split = (2 if op.a_signed else 1) * (2 if op.b_signed else 1)
        kernels *= 2 if op.b_signed else 1
        mask_loads = math.ceil(kernels / mask_tiles)
        if self.mask["rate_hz"] == 0 and mask_loads > 1:
            return None  # a passive mask holds one fixed pattern
        dac_bits = min(op.a_bits, self.modulator_bits)
        slices = math.ceil(op.a_bits / dac_bits)
        planes = planes_unsigned * split
        passes = math.ceil(planes / tiles) * slices
        return OpticalPlan(
            planes=planes, sign_split=split, bit_slices=slices, tiles_per_pass=tiles, passes=passes,
            mask_loads=mask_loads, dac_conversions=planes * in_px * slices,
            adc_conversions=planes * out_px * slices, dac_bits=dac_bits, t_pass_s=self._t_pass(op.a_bits))

    def _plan_conv(self, op: Any) -> OpticalPlan | None:
        xmin = min(int(d["pixels_x"]) for d in self._devices())
        ymin = min(int(d["pixels_y"]) for d in self._devices())
        bx, by = min(op.w, xmin - op.kw + 1), min(op.h, ymin - op.kh + 1)
        if bx < 1 or by < 1:
            return None
        nbx, nby = math.ceil(op.w / bx), math.ceil(op.h / by)
        blocks = nbx * nby
        tx, ty = bx + op.kw - 1, by + op.kh - 1
        caps = [(int(d["pixels_x"]) // tx) * (int(d["pixels_y"]) // ty) for d in self._devices()]
        out_px = math.ceil(op.h_out / nby) * math.ceil(op.w_out / nbx)
        return self._finish(op, op.batch * op.cin * op.cout * blocks, op.cin * op.cout,
                            min(caps), caps[1], bx * by, out_px)

    def _plan_circulant(self, op: Any) -> OpticalPlan | None:
        caps = [int(d["pixels_x"] * d["pixels_y"]) // op.n for d in self._devices()]
        if min(caps) < 1:
            return None
        return self._finish(op, op.m, 1, min(caps), caps[1], op.n, op.n)
