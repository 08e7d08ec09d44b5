"""The signal chain of a 4f system, one function per physical step (numpy arrays, float or complex).

Units: modulator and mask values are transmissions in [0, 1] (amplitude for the mask); detector
values are *normalised intensities* in units of the full-scale intensity (1.0 = the brightest output
the encoded operands can produce); photoelectrons are counted in electrons. Every conversion goes
through ``fixedpoint.quantize`` with an unsigned integer format (``Fixed(bits, 0, signed=False)``:
codes 0 .. 2**bits - 1, round to nearest even, saturate); ``bits=None`` skips the conversion (ideal).

Steps, in the order light meets them:

1. `split_signed`: a signed tensor becomes two non-negative planes, ``x = x⁺ - x⁻`` (a modulator and a
   camera only handle non-negative intensities);
2. `dac_encode`: a non-negative tensor on the modulator: per-tensor scale ``max x``, levels
   ``k / (2**bits - 1)``;
3. `mask_encode`: the Fourier-plane mask, a complex transmission ``|H| e^{iφ}`` with ``|H| <= 1``:
   amplitude on ``2**bits - 1`` levels, phase on ``2**bits`` levels over 2π (wrapping), or
   phase-only (``|H| = 1``; the unitary ``F D F⁻¹`` of 000:761–765);
4. `pad_to` and `propagate`: lens, mask, lens as ``ifft(fft(field) · mask)`` on a tile zero-padded so
   that a linear convolution does not wrap; `psf_of` / `propagate_intensity` for incoherent light;
5. detection: `coherent_intensities` (balanced homodyne with a reference beam of full-scale amplitude:
   two camera frames ``|A ± E|² / 4A²``, whose difference is ``Re E / A``) or the intensity itself
   (incoherent);
6. `shot_noise` (Poisson photoelectrons), `full_well_clip` (the collected charge), `read_noise`
   (Gaussian electrons of the readout), `adc_read` (the camera ADC; `FourF` sets its gain so that
   the full-scale signal and 4σ of its noise fit);
7. `recombine`: the ± planes subtracted and the scales multiplied back, digitally.
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft

import fixedpoint

from . import _rng

__all__ = ["adc_read", "coherent_field", "coherent_intensities", "dac_encode", "full_well_clip",
           "mask_encode",
           "pad_to", "propagate", "propagate_intensity", "psf_of", "read_noise", "recombine", "shot_noise",
           "split_signed"]


def _unsigned_levels(v: np.ndarray, bits: int) -> np.ndarray:
    """``v`` in [0, 1] rounded onto ``k / (2**bits - 1)`` through ``fixedpoint`` (saturating)."""
    top = float(2 ** bits - 1)
    return fixedpoint.quantize(v * top, fixedpoint.Fixed(bits, 0, signed=False)) / top


def split_signed(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x⁺, x⁻) = (max(x, 0), max(-x, 0))``: two non-negative planes with ``x = x⁺ - x⁻``."""
    return np.maximum(x, 0), np.maximum(-x, 0)


def dac_encode(x: np.ndarray, bits: int | None, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Modulator transmissions of a non-negative tensor and the per-tensor scale.

    ``t = Q(x / scale)`` with ``scale = max x`` unless given (1.0 for an all-zero tensor), ``Q`` the
    ``bits``-bit unsigned DAC (levels ``k / (2**bits - 1)``) or the identity for ``bits=None``.
    ``x ≈ scale · t``. Negative input is a ValueError (split it first).
    """
    if np.any(x < 0):
        raise ValueError("dac_encode: the modulator takes non-negative values; split_signed the tensor first")
    if scale is None:
        scale = float(np.max(x)) if x.size else 0.0
    scale = scale if scale > 0 else 1.0
    t = x / scale
    return (t if bits is None else _unsigned_levels(t, bits)), scale


def mask_encode(h: np.ndarray, bits: int | None, *, phase_only: bool = False) -> np.ndarray:
    """The Fourier-plane mask for the complex transmission ``h`` (``|h| <= 1``).

    Amplitude on ``2**bits - 1`` levels of [0, 1], phase on ``2**bits`` levels ``2πk / 2**bits``
    (wrapping: π and -π are one level); ``phase_only`` sets the amplitude to 1 (only the phase of
    ``h`` is kept). ``bits=None``: amplitude and phase unquantised.
    """
    amp = np.abs(h)
    if np.any(amp > 1 + 1e-9):
        raise ValueError("mask_encode: a passive mask needs |h| <= 1; normalise by max |h| first")
    phase = np.angle(h)
    if phase_only:
        amp = np.ones_like(amp)
    elif bits is not None:
        amp = _unsigned_levels(np.minimum(amp, 1.0), bits)
    if bits is not None:
        n = 2 ** bits
        steps = fixedpoint.quantize(phase * (n / (2 * np.pi)), fixedpoint.Fixed(bits + 1, 0),
                                    overflow="saturate")
        phase = np.mod(steps, n) * (2 * np.pi / n)
    return amp * np.exp(1j * phase)


def pad_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` zero-padded at the end of its trailing ``len(shape)`` axes to ``shape`` (the tile)."""
    lead = x.ndim - len(shape)
    pads = [(0, 0)] * lead + [(0, s - d) for s, d in zip(shape, x.shape[lead:])]
    if any(p[1] < 0 for p in pads):
        raise ValueError(f"pad_to: array of shape {x.shape} does not fit the tile {shape}")
    return np.pad(x, pads)


def _axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


def propagate(field: np.ndarray, mask: np.ndarray, ndim: int) -> np.ndarray:
    """Lens, mask, lens: ``ifft(fft(field) · mask)`` over the trailing ``ndim`` axes (complex).

    The two Fourier transforms are the 2f systems; with ``mask = fft(h)`` this is the cyclic
    convolution of the tile with ``h`` (the circulant ``F⁻¹ D F`` of 000:757–759)."""
    ax = _axes(ndim)
    return sfft.ifftn(sfft.fftn(field, axes=ax) * mask, axes=ax)


def psf_of(mask: np.ndarray, ndim: int) -> np.ndarray:
    """The intensity point-spread function ``|ifft(mask)|²`` (non-negative) of a mask."""
    return np.abs(sfft.ifftn(mask, axes=_axes(ndim))) ** 2


def propagate_intensity(intensity: np.ndarray, psf: np.ndarray, ndim: int) -> np.ndarray:
    """Incoherent imaging: the intensity cyclically convolved with the PSF over the tile (real)."""
    ax = _axes(ndim)
    return sfft.ifftn(sfft.fftn(intensity, axes=ax) * sfft.fftn(psf, axes=ax), axes=ax).real


def coherent_intensities(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Balanced homodyne frames ``|1 ± E|² / 4`` of a field in units of the reference amplitude
    (``|E| <= 1``): each in [0, 1], 1 at full scale; `coherent_field` recovers ``Re E``."""
    return np.abs(1 + field) ** 2 / 4, np.abs(1 - field) ** 2 / 4


def coherent_field(i_plus: np.ndarray, i_minus: np.ndarray) -> np.ndarray:
    """``Re E = I₊ - I₋`` (the digital difference of the two homodyne frames)."""
    return i_plus - i_minus


def shot_noise(mean_e: np.ndarray, seed: int) -> np.ndarray:
    """Poisson photoelectron counts with means ``mean_e`` (electrons; negatives from rounding are 0)."""
    return _rng.poisson(np.maximum(mean_e, 0.0), _rng.stream_seed(seed, _rng.STREAM_SHOT))


def read_noise(electrons: np.ndarray, sigma_e: float, seed: int) -> np.ndarray:
    """``electrons`` plus Gaussian read noise of ``sigma_e`` electrons rms."""
    if not sigma_e:
        return electrons
    return electrons + sigma_e * _rng.normal(electrons.shape, _rng.stream_seed(seed, _rng.STREAM_READ))


def full_well_clip(electrons: np.ndarray, full_well_e: float | None) -> np.ndarray:
    """Charge clipped to [0, full well] (a pixel holds no negative charge and saturates at the well)."""
    return np.clip(electrons, 0.0, full_well_e if full_well_e else None)


def adc_read(electrons: np.ndarray, bits: int | None, full_scale_e: float,
             black_e: float = 0.0) -> np.ndarray:
    """The camera ADC: codes 0 .. 2**bits - 1 span ``[-black_e, full_scale_e]`` electrons (a black
    level keeps read noise below zero on the scale), rounded to the nearest code and saturating at
    both ends; returned in electrons (black level subtracted). ``bits=None``: ideal (unchanged)."""
    if bits is None:
        return electrons
    span = full_scale_e + black_e
    return _unsigned_levels((electrons + black_e) / span, bits) * span - black_e


def recombine(pos: np.ndarray, neg: np.ndarray | None, scale: float = 1.0) -> np.ndarray:
    """``scale · (pos - neg)``: the ± planes subtracted and the per-tensor scales restored."""
    return scale * (pos if neg is None else pos - neg)
