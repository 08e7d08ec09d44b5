"""`FourF`: a 4f system's numerics, configured from a device profile, and its spec strings."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

import devices

from . import _chain as ch
from ._rng import derive_seed

__all__ = ["DETECTIONS", "SPEC_KEYS", "FourF"]

DETECTIONS = ("incoherent", "coherent")
#: Spec keys (``--optical PROFILE:KEY=VALUE,...``) -> FourF field.
SPEC_KEYS = {"photons": "photons_per_pixel", "dac_bits": "dac_bits", "mask_bits": "mask_bits",
             "adc_bits": "adc_bits", "detection": "detection", "phase_only": "phase_only",
             "qe": "quantum_efficiency", "read_noise": "read_noise_e", "full_well": "full_well_e",
             "seed": "seed"}
_MAX_BITS = 24
#: Mask bit depth when the profile gives none (estimate: 8-bit LCoS drive electronics, typical).
DEFAULT_MASK_BITS = 8


@dataclass(frozen=True)
class FourF:
    """A 4f system as numerics: what a convolution through it reads back.

    Fields (all overridable; see the module ``hwsim.optics`` for the model and its assumptions):
    ``photons_per_pixel`` photons reaching a camera pixel at full-scale intensity (None: no shot or
    read noise, no full-well clipping); ``dac_bits`` modulator levels, ``mask_bits`` Fourier-mask
    amplitude/phase levels, ``adc_bits`` camera ADC (None: unquantised); ``detection``
    ``"incoherent"`` (intensity, PSF ``|h|²``, signed kernels by ± split) or ``"coherent"``
    (field by balanced homodyne detection; signed kernels in the mask's phase); ``phase_only`` mask;
    ``quantum_efficiency`` electrons per photon; ``read_noise_e`` electrons rms; ``full_well_e``
    pixel capacity (None: unlimited); ``seed`` of the counter-based noise; ``profile`` the device
    profile costs come from.
    """

    photons_per_pixel: float | None = None
    dac_bits: int | None = None
    mask_bits: int | None = None
    adc_bits: int | None = None
    detection: str = "incoherent"
    phase_only: bool = False
    quantum_efficiency: float = 1.0
    read_noise_e: float = 0.0
    full_well_e: float | None = None
    seed: int = 0
    profile: str = "optical4f"

    def __post_init__(self) -> None:
        p = self.photons_per_pixel
        if p is not None and not (isinstance(p, (int, float)) and math.isfinite(p) and p > 0):
            raise ValueError(f"FourF photons_per_pixel must be a positive number or None, got {p!r}")
        for name in ("dac_bits", "mask_bits", "adc_bits"):
            b = getattr(self, name)
            if b is not None and (isinstance(b, bool) or int(b) != b or not 1 <= b <= _MAX_BITS):
                raise ValueError(f"FourF {name} must be an integer in 1..{_MAX_BITS} or None, got {b!r}")
        if self.detection not in DETECTIONS:
            raise ValueError(f"FourF detection must be one of {', '.join(DETECTIONS)}, got "
                             f"{self.detection!r}")
        if not 0 < self.quantum_efficiency <= 1:
            raise ValueError(f"FourF quantum_efficiency must be in (0, 1], got {self.quantum_efficiency!r}")
        if not (self.read_noise_e >= 0 and math.isfinite(self.read_noise_e)):
            raise ValueError(f"FourF read_noise_e must be >= 0 electrons, got {self.read_noise_e!r}")
        if self.full_well_e is not None and not self.full_well_e > 0:
            raise ValueError(f"FourF full_well_e must be > 0 electrons or None, got {self.full_well_e!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed:
            raise ValueError(f"FourF seed must be an integer, got {self.seed!r}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_profile(cls, profile: str = "optical4f", **overrides) -> FourF:
        """The system of an ``optical4f`` device profile (name or TOML path), fields overridden by
        keyword (``photons_per_pixel=100, adc_bits=8, detection="coherent", seed=3`` ...)."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)} - {"profile"})
        if unknown:
            raise ValueError(f"FourF.from_profile: unknown field {unknown[0]!r}; valid: "
                             f"{', '.join(f.name for f in dataclasses.fields(cls) if f.name != 'profile')}")
        prof = devices.load(profile)
        if prof.optical is None:
            raise ValueError(f"FourF.from_profile: profile {prof.name!r} is not an optical4f profile "
                             f"(kind {prof.kind!r})")
        opt = prof.optical
        base = {"photons_per_pixel": float(opt.data["photons_per_pixel"]),
                "dac_bits": int(opt.modulator["bits"]),
                "mask_bits": int(opt.mask.get("bits", DEFAULT_MASK_BITS)),
                "adc_bits": int(opt.camera["adc_bits"]),
                "quantum_efficiency": float(opt.camera.get("quantum_efficiency", 1.0)),
                "read_noise_e": float(opt.camera["read_noise_e"]),
                "full_well_e": opt.camera.get("full_well_e"),
                "profile": str(profile)}
        return cls(**{**base, **overrides})

    @classmethod
    def parse(cls, text: str) -> FourF:
        """A system from a spec ``PROFILE[:KEY=VALUE,...]``, e.g. ``optical4f:photons=1000,adc_bits=8``.

        Keys: photons, dac_bits, mask_bits, adc_bits (``none`` = ideal), detection
        (incoherent|coherent), phase_only (true|false), qe, read_noise (e⁻), full_well (e⁻ or none),
        seed. A bad key or value is a ValueError naming it (and listing the valid keys)."""
        profile, _, body = str(text).partition(":")
        if not profile:
            raise ValueError(f"optical spec {text!r}: expected PROFILE[:KEY=VALUE,...], e.g. "
                             f"optical4f:photons=1000,adc_bits=8")
        overrides = {}
        for item in filter(None, (s.strip() for s in body.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip()
            if key not in SPEC_KEYS:
                raise ValueError(f"optical spec {text!r}: unknown key {key!r}; valid keys: "
                                 f"{', '.join(SPEC_KEYS)}")
            if not eq:
                raise ValueError(f"optical spec {text!r}: key {key!r} needs a value ({key}=...)")
            overrides[SPEC_KEYS[key]] = _spec_value(text, key, value.strip())
        return cls.from_profile(profile, **overrides)

    @property
    def spec(self) -> str:
        """The spec string that `parse` turns back into this system (all fields spelled out)."""
        parts = []
        for key, name in SPEC_KEYS.items():
            v = getattr(self, name)
            parts.append(f"{key}={'none' if v is None else str(v).lower() if isinstance(v, bool) else v}")
        return f"{self.profile}:{','.join(parts)}"

    def replace(self, **changes) -> FourF:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def is_ideal(self) -> bool:
        """True when nothing is quantised and no noise is drawn (the digital result up to rounding)."""
        return (self.photons_per_pixel is None and self.dac_bits is None and self.mask_bits is None
                and self.adc_bits is None and not self.phase_only)

    # ------------------------------------------------------------------ cost and analytic noise
    def noise_model(self) -> devices.OpticalNoise:
        """The analytic noise parameters (``devices.OpticalNoise``) of these settings (needs photons
        and bits)."""
        if self.photons_per_pixel is None or self.dac_bits is None or self.adc_bits is None:
            raise ValueError("FourF.noise_model needs photons_per_pixel, dac_bits and adc_bits (not None)")
        return devices.OpticalNoise(self.dac_bits, self.adc_bits, self.photons_per_pixel, self.read_noise_e,
                                    self.quantum_efficiency, self.full_well_e)

    def device_profile(self) -> devices.Profile:
        """The cost profile with these settings: photons per pixel set the laser energy per pass, the
        DAC and ADC bits the conversion energies (unset fields keep the profile's figures)."""
        return devices.load(self.profile).with_optical(
            photons_per_pixel=self.photons_per_pixel, dac_bits=self.dac_bits, adc_bits=self.adc_bits)

    # ------------------------------------------------------------------ operations
    def circulant(self, x: np.ndarray, h: np.ndarray, *, seed: int | None = None) -> np.ndarray:
        """Rows of ``x`` (..., n) circularly convolved with ``h`` (n,): ``y[i] = Σ_j h[(i-j) mod n] x[j]``,
        as read back through the optics (one cyclic 1-D tile of n pixels per row, no padding)."""
        x = np.asarray(x)
        h = np.asarray(h)
        if h.ndim != 1 or x.ndim < 1 or x.shape[-1] != h.shape[0]:
            raise ValueError(f"FourF.circulant: x (..., n) and h (n,) needed, got {x.shape} and {h.shape}")
        lead = x.shape[:-1]
        y = self._linear(x.reshape(-1, x.shape[-1]), h, ndim=1, tile=h.shape,
                         embed_x=lambda t: t, crop=lambda v: v, reduce=lambda v: v, seed=seed)
        return y.reshape(*lead, h.shape[0])

    def conv2d(self, x: np.ndarray, w: np.ndarray, padding: int = 0, stride: int = 1, *,
               seed: int | None = None) -> np.ndarray:
        """Cross-correlation of ``x`` (N, C, H, W) with ``w`` (O, C, kh, kw), zero ``padding`` and
        ``stride`` (what ``hwsim.Conv2d`` computes), as read back through the optics.

        Each (image, input channel, output channel) is one plane on a tile of (H+kh-1)×(W+kw-1)
        pixels (zero padding: the linear convolution does not wrap); the camera reads the valid
        pixels (every ``stride``-th) and the channel sum is digital."""
        x, w = np.asarray(x), np.asarray(w)
        if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
            raise ValueError(f"FourF.conv2d: x (N, C, H, W) and w (O, C, kh, kw) with equal C needed, "
                             f"got {x.shape} and {w.shape}")
        if int(padding) != padding or padding < 0 or int(stride) != stride or stride < 1:
            raise ValueError(f"FourF.conv2d: padding >= 0 and stride >= 1 integers needed, got {padding}, "
                             f"{stride}")
        if padding:
            x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        kh, kw = w.shape[2:]
        h_in, w_in = x.shape[2:]
        if kh > h_in or kw > w_in:
            raise ValueError(f"FourF.conv2d: kernel {kh}x{kw} larger than the padded input {h_in}x{w_in}")
        tile = (h_in + kh - 1, w_in + kw - 1)
        kernel = w[:, :, ::-1, ::-1][None]  # (1, O, C, kh, kw): correlation = convolution with the flip
        rows = slice(kh - 1, h_in, stride)
        cols = slice(kw - 1, w_in, stride)
        return self._linear(x[:, None], kernel, ndim=2, tile=tile, embed_x=lambda t: t,
                            crop=lambda v: v[..., rows, cols], reduce=lambda v: v.sum(axis=2), seed=seed)

    # ------------------------------------------------------------------ the chain
    def _linear(self, x, kernel, *, ndim, tile, embed_x, crop, reduce, seed):
        """Shared path: ± split and DAC of x, mask(s) of the kernel, propagation, detection, recombination."""
        real = np.float64 if x.dtype == np.float64 or kernel.dtype == np.float64 else np.float32
        x = x.astype(real, copy=False)
        kernel = kernel.astype(real, copy=False)
        seed = self.seed if seed is None else int(seed)
        x_pos, x_neg = ch.split_signed(x)
        scale_x = float(np.max(np.abs(x))) if x.size else 0.0
        inputs = [(1.0, x_pos)] + ([(-1.0, x_neg)] if np.any(x_neg) else [])
        spectra = []
        for sign, plane in inputs:
            t, scale_x = ch.dac_encode(plane, self.dac_bits, scale_x)
            spectra.append((sign, sfft.fftn(ch.pad_to(embed_x(t), tile), axes=tuple(range(-ndim, 0)))))
        ndim_axes = tuple(range(-ndim, 0))
        sums: dict[float, np.ndarray] = {}            # sign of the plane -> digital sum of its readings
        if self.detection == "incoherent":
            k_pos, k_neg = ch.split_signed(kernel)
            kernels = [(s, k) for s, k in ((1.0, k_pos), (-1.0, k_neg)) if np.any(k)] or [(1.0, k_pos)]
            fields = [(s, sfft.fftn(ch.pad_to(np.sqrt(k), tile), axes=ndim_axes)) for s, k in kernels]
            amp = max((float(np.max(np.abs(f))) for _, f in fields), default=1.0) or 1.0
            psfs = [(s, ch.psf_of(ch.mask_encode(f / amp, self.mask_bits, phase_only=self.phase_only), ndim))
                    for s, f in fields]
            full = max((float(np.max(p.sum(axis=ndim_axes))) for _, p in psfs), default=1.0) or 1.0
            otfs = [(s, sfft.fftn(p / full, axes=ndim_axes)) for s, p in psfs]
            for i, (sa, xf) in enumerate(spectra):
                for j, (sb, otf) in enumerate(otfs):
                    intensity = crop(sfft.ifftn(xf * otf, axes=ndim_axes).real)
                    reading = self._detect(intensity, derive_seed(seed, i, j))
                    sums[sa * sb] = reduce(reading) + sums.get(sa * sb, 0.0)
            gain = scale_x * amp ** 2 * full
        else:
            spectrum = sfft.fftn(ch.pad_to(kernel, tile), axes=ndim_axes)
            amp = float(np.max(np.abs(spectrum))) or 1.0
            mask = ch.mask_encode(spectrum / amp, self.mask_bits, phase_only=self.phase_only)
            full = float(np.max(np.abs(sfft.ifftn(mask, axes=ndim_axes)).sum(axis=ndim_axes))) or 1.0
            for i, (sa, xf) in enumerate(spectra):
                field = crop(sfft.ifftn(xf * (mask / full), axes=ndim_axes))
                i_plus, i_minus = ch.coherent_intensities(field)
                re = ch.coherent_field(self._detect(i_plus, derive_seed(seed, i, 0)),
                                       self._detect(i_minus, derive_seed(seed, i, 1)))
                sums[sa] = reduce(re) + sums.get(sa, 0.0)
            gain = scale_x * amp * full
        return ch.recombine(sums.get(1.0, 0.0), sums.get(-1.0), gain).astype(real, copy=False)

    def _detect(self, intensity: np.ndarray, seed: int) -> np.ndarray:
        """Normalised intensity (1 = full scale) -> the camera's reading in the same units: shot noise,
        read noise, full-well clipping, ADC (each skipped when its setting is None)."""
        if self.photons_per_pixel is None:
            return ch.adc_read(intensity, self.adc_bits, 1.0)
        gain = self.photons_per_pixel * self.quantum_efficiency        # electrons at full scale
        e = ch.full_well_clip(ch.shot_noise(intensity * gain, seed), self.full_well_e)
        e = ch.read_noise(e, self.read_noise_e, seed)
        return ch.adc_read(e, self.adc_bits, self.adc_full_scale_e, 4.0 * self.read_noise_e) / gain

    @property
    def adc_full_scale_e(self) -> float:
        """Electrons at the ADC's top code (assumption: the camera gain is set so that the full-scale
        signal S plus 4 standard deviations of its noise, ``S + 4·sqrt(S + read²)``, fits; at most the
        full well; the black level below zero is 4 read-noise σ). 1.0 (normalised units) without photons."""
        if self.photons_per_pixel is None:
            return 1.0
        s = self.photons_per_pixel * self.quantum_efficiency
        top = s + 4.0 * math.sqrt(s + self.read_noise_e ** 2)
        return min(top, self.full_well_e) if self.full_well_e is not None else top


def _spec_value(text: str, key: str, value: str):
    name = SPEC_KEYS[key]
    low = value.lower()
    try:
        if name == "detection":
            if low not in DETECTIONS:
                raise ValueError
            return low
        if name == "phase_only":
            if low not in ("true", "false", "1", "0"):
                raise ValueError
            return low in ("true", "1")
        if low == "none" and name in ("photons_per_pixel", "dac_bits", "mask_bits", "adc_bits",
                                      "full_well_e"):
            return None
        if name in ("dac_bits", "mask_bits", "adc_bits", "seed"):
            return int(value)
        return float(value)
    except ValueError:
        allowed = {"detection": "|".join(DETECTIONS), "phase_only": "true|false", "seed": "an integer"}.get(
            name, "an integer or none" if name.endswith("bits") else "a number" + (
                " or none" if name in ("photons_per_pixel", "full_well_e") else ""))
        raise ValueError(f"optical spec {text!r}: bad value {value!r} for {key} "
                         f"(expected {allowed})") from None
