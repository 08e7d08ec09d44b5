"""hwsim: neural networks through emulated low-precision hardware arithmetic, and what they cost.

Public API (flat): precision policies, layers, models, optimizers, training, workload export
(``workload`` for hwsim models, ``workload_from_onnx`` for ONNX graphs; needs the ``onnx`` extra).

Importing hwsim sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is already set. A training step runs
BLAS products between fixedpoint's parallel Numba kernels; Numba's OpenMP workers otherwise spin
after each kernel and starve the BLAS threads (on 2 cores an 8-bit MNIST epoch takes about 2 s
instead of 0.24 s: reports/benchmarks/training.md). It takes effect when no OpenMP runtime was
loaded before hwsim; ``fixedpoint`` alone leaves the setting to you.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._data import Dataset, load_data  # noqa: E402  (after the OpenMP setting)
from ._model import Sequential, build_model
from ._optim import SGD, Adam, CosineLR, StepLR
from ._precision import PRESETS, ROLES, Precision, Quantizer, RoleFormat, fast_mode_is_exact, register_quantizer
from ._train import TrainConfig, evaluate, train
from ._workload import workload
from ._onnx_workload import workload_from_onnx
from .layers import (Activation, AvgPool2d, BatchNorm, Conv2d, Dense, DivergenceError, Dropout, Flatten,
                     Layer, MaxPool2d, SoftmaxCrossEntropy)
from . import compression, schemes  # noqa: E402  (schemes register their quantizer names)
from .schemes import Scheme, get_scheme

__all__ = [
    "Activation", "Adam", "AvgPool2d", "BatchNorm", "Conv2d", "CosineLR", "Dataset", "Dense", "DivergenceError",
    "Dropout", "Flatten", "Layer", "MaxPool2d", "PRESETS", "Precision", "Quantizer", "ROLES", "RoleFormat",
    "SGD", "Sequential", "SoftmaxCrossEntropy", "StepLR", "TrainConfig", "build_model", "evaluate",
    "fast_mode_is_exact", "load_data", "register_quantizer", "train", "workload", "workload_from_onnx",
    "compression", "schemes", "Scheme", "get_scheme",
]
