"""hwsim: neural networks through emulated low-precision hardware arithmetic, and what they cost.

Public API (flat): precision policies, layers, models, optimizers, training, design-space sweeps,
workload export (``workload`` for hwsim models, ``workload_from_onnx`` for ONNX graphs; needs the
``onnx`` extra).

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
from .layers import (ACDC, AFDF, Activation, AvgPool2d, BatchNorm, Circulant, Conv2d, Dense, DivergenceError,
                     Dropout, Fastfood, Flatten, Hashed, Layer, LowRank, MaxPool2d, MeanSquaredError,
                     SoftmaxCrossEntropy, set_optical)
from .layers import AnnealConstant, AnnealInverseSqrt, AnnealLinear, MollifiedDense, NoisyActivation
from . import optics  # noqa: E402  (the 4f system's numerics: hwsim.optics.FourF)
from . import compression, schemes  # noqa: E402  (schemes register their quantizer names)
from .schemes import Scheme, get_scheme
from ._sweep import sweep  # dask is imported only when a sweep runs
from . import _conditional_tokens  # noqa: F401,E402  (registers estdense, gru, cgru)
from ._estimator_gain import estimator_flops, estimator_gain, estimator_gain_nn  # noqa: E402
from ._text import TextData, load_text  # noqa: E402
from ._text_train import evaluate_text, train_text  # noqa: E402
from .layers import GRU, ConditionalGRU, EstimatedDense  # noqa: E402

__all__ = [
    "Activation", "Adam", "AvgPool2d", "BatchNorm", "Conv2d", "CosineLR", "Dataset", "Dense", "DivergenceError",
    "Dropout", "Flatten", "Layer", "MaxPool2d", "PRESETS", "Precision", "Quantizer", "ROLES", "RoleFormat",
    "SGD", "Sequential", "SoftmaxCrossEntropy", "StepLR", "TrainConfig", "build_model", "evaluate",
    "fast_mode_is_exact", "load_data", "register_quantizer", "train", "workload", "workload_from_onnx",
    "compression", "schemes", "Scheme", "get_scheme", "optics", "set_optical", "sweep",
    "ACDC", "AFDF", "Circulant", "Fastfood", "Hashed", "LowRank", "MeanSquaredError",
]
__all__ += ["ConditionalGRU", "EstimatedDense", "GRU", "TextData", "estimator_flops", "estimator_gain",
            "estimator_gain_nn", "evaluate_text", "load_text", "train_text"]
__all__ += ["AnnealConstant", "AnnealInverseSqrt", "AnnealLinear", "MollifiedDense", "NoisyActivation"]
