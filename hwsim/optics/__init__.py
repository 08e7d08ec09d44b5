"""The 4f optical system as numerics: what a convolution or circulant product reads back through a DAC,
a Fourier-plane mask, lenses, a camera with shot and read noise and an ADC.

``FourF.from_profile("optical4f", photons_per_pixel=1000, adc_bits=8, detection="coherent", seed=0)``
builds a system from a device profile (any field overridden); ``FourF.parse("optical4f:photons=1000,
adc_bits=8")`` from the CLI's spec. ``fourf.circulant(x, h)`` and ``fourf.conv2d(x, w, padding)`` return
the digital result the electronics read back; with ``photons_per_pixel=None`` and every ``*_bits=None``
that is the exact product (the ideal limit). ``fourf.device_profile()`` is the cost profile of the same
settings (``devices.estimate``), ``fourf.noise_model()`` the analytic ``devices.OpticalNoise``.

Model and assumptions (the seeds fix only the 4f principle, 000:737–767; everything here is a named,
configurable choice):

- full scale: inputs are scaled per tensor to the modulator's [0, 1]; the mask's amplitude per tensor
  to ``max |H| = 1``; the laser/exposure so that the brightest output the encoded operands can give
  (all inputs at 1; incoherent: the largest PSF sum, coherent: the largest Σ|h|) is ``photons_per_pixel``
  photons. A typical output is a fraction of that;
- signed inputs: two non-negative modulator planes (x⁺, x⁻). Incoherent detection: signed kernels too
  (w⁺, w⁻; the mask holds the coherent response √w, its PSF |·|² is w), four planes per product.
  Coherent detection: the kernel's sign sits in the mask's phase and the field is read by balanced
  homodyne detection (two frames, ``|A ± E|²/4A²``), two planes × two frames. Both need four camera
  readouts per product, as the cost model counts;
- the camera: Poisson photoelectrons (mean = intensity × photons × quantum efficiency) clipped at the
  full well, Gaussian read noise, an ADC whose codes span a black level of 4 read-noise σ below zero
  up to the full-scale signal plus 4σ of its noise (gain matched to the light, at most the full
  well), digital subtraction of the ± planes and sum over input channels;
- noise is counter-based (`hwsim.optics._rng`: fixedpoint's SplitMix64 rule): a call's draws are a
  function of ``seed`` and the element index alone.

Signal-chain steps are public functions (`split_signed`, `dac_encode`, `mask_encode`, `pad_to`,
`propagate`, `psf_of`, `propagate_intensity`, `coherent_intensities`, `coherent_field`, `shot_noise`,
`read_noise`, `full_well_clip`, `adc_read`, `recombine`). numpy only (no CuPy path).
"""
from ._chain import (
    adc_read,
    coherent_field,
    coherent_intensities,
    dac_encode,
    full_well_clip,
    mask_encode,
    pad_to,
    propagate,
    propagate_intensity,
    psf_of,
    read_noise,
    recombine,
    shot_noise,
    split_signed,
)
from ._fourf import DETECTIONS, SPEC_KEYS, FourF

__all__ = ["DETECTIONS", "SPEC_KEYS", "FourF", "adc_read", "coherent_field", "coherent_intensities",
           "dac_encode", "full_well_clip", "mask_encode", "pad_to", "propagate", "propagate_intensity",
           "psf_of", "read_noise", "recombine", "shot_noise", "split_signed"]
