"""hwsim for PyTorch users: hwsim's low-precision numerics inside a ``torch.nn.Module``.

Optional: needs PyTorch (``pip install -e '.[torch]'``); importing ``hwsim`` never imports torch.

- `Quantize`: a module (and autograd function) that puts a tensor on a format's grid in the forward
  pass and the incoming gradient on another's in the backward pass, with the straight-through mask
  of a saturating forward format.
- `quantize_model`: replaces each supported leaf module of a model (``nn.Linear``, ``nn.Conv2d``,
  activations, pooling, ``nn.Flatten``, ``nn.Dropout``, ``nn.BatchNorm1d/2d``) by a wrapper that runs
  hwsim's own layer on zero-copy views of the tensors, so weights, activations, errors and gradients
  go through the roles of a `hwsim.Precision` exactly as in hwsim's own engine; its ``nn.Sequential``
  containers become `HwsimSequential`s, which run consecutive wrapped layers as one autograd node.
- `LowPrecisionOptimizer`: wraps a ``torch.optim`` optimizer; after each step the master weights go
  through the ``update`` role (Gupta et al.: stochastic rounding), the moments stay in float.
- `workload`: the ``devices.Workload`` of a model, to cost it on every device profile.

Every random draw (stochastic rounding, dropout) is counter-based from (precision seed, layer index,
role, training step), hwsim's seed rule (`hwsim._precision`): the same on every run, CPU or GPU.
"""
from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("hwsim.torch needs PyTorch: pip install -e '.[torch]' (or pip install torch)") from e

from ._convert import as_array, as_tensor
from ._modules import HwsimModule, HwsimSequential, hwsim_layers, quantize_model, to_hwsim, workload
from ._optim import LowPrecisionOptimizer
from ._quantize import Quantize

__all__ = ["HwsimModule", "HwsimSequential", "LowPrecisionOptimizer", "Quantize", "as_array", "as_tensor",
           "hwsim_layers", "quantize_model", "to_hwsim", "workload"]
