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

# Everything is imported after the OpenMP setting. Importing `schemes` registers the schemes' quantizer
# names, `_conditional_tokens` the model tokens estdense, gru, cgru; `_sweep` imports dask only when a
# sweep runs; `optics` holds the 4f system's numerics (hwsim.optics.FourF); `_precision` serves the
# deprecated ``Quantizer`` alias.
from . import _conditional_tokens, _precision, compression, optics, schemes  # noqa: F401
from ._data import Dataset, load_data
from ._estimator_gain import estimator_flops, estimator_gain, estimator_gain_nn
from ._model import Sequential, build_model
from ._onnx_workload import workload_from_onnx
from ._optim import SGD, Adam, CosineLR, StepLR
from ._precision import (
    PRESETS,
    ROLES,
    Precision,
    RoleFormat,
    RoleQuantizer,
    fast_mode_is_exact,
    register_quantizer,
)
from ._report import format_si, md_table
from ._sweep import sweep
from ._sweep_report import SWEEP_TIMING_COLUMNS, pareto_front, plot_pareto
from ._text import TextData, load_text
from ._text_train import evaluate_text, train_text
from ._train import TrainConfig, evaluate, train
from ._workload import workload
from .layers import (
    ACDC,
    AFDF,
    GRU,
    Activation,
    AnnealConstant,
    AnnealInverseSqrt,
    AnnealLinear,
    AvgPool2d,
    BatchNorm,
    Circulant,
    ConditionalGRU,
    Conv2d,
    Dense,
    DivergenceError,
    Dropout,
    EstimatedDense,
    Fastfood,
    Flatten,
    Hashed,
    Layer,
    LowRank,
    MaxPool2d,
    MeanSquaredError,
    MollifiedDense,
    NoisyActivation,
    SoftmaxCrossEntropy,
    set_optical,
)
from .schemes import Scheme, get_scheme

__all__ = [
    "Activation", "Adam", "AvgPool2d", "BatchNorm", "Conv2d", "CosineLR", "Dataset", "Dense",
    "DivergenceError", "Dropout", "Flatten", "Layer", "MaxPool2d", "PRESETS", "Precision", "ROLES",
    "RoleFormat", "RoleQuantizer", "SWEEP_TIMING_COLUMNS", "format_si", "md_table", "pareto_front",
    "plot_pareto",
    "SGD", "Sequential", "SoftmaxCrossEntropy", "StepLR", "TrainConfig", "build_model", "evaluate",
    "fast_mode_is_exact", "load_data", "register_quantizer", "train", "workload", "workload_from_onnx",
    "compression", "schemes", "Scheme", "get_scheme", "optics", "set_optical", "sweep",
    "ACDC", "AFDF", "Circulant", "Fastfood", "Hashed", "LowRank", "MeanSquaredError",
]
__all__ += ["ConditionalGRU", "EstimatedDense", "GRU", "TextData", "estimator_flops", "estimator_gain",
            "estimator_gain_nn", "evaluate_text", "load_text", "train_text"]
__all__ += ["AnnealConstant", "AnnealInverseSqrt", "AnnealLinear", "MollifiedDense", "NoisyActivation"]


def __getattr__(name: str):
    """``hwsim.Quantizer``: the deprecated alias of `RoleQuantizer` (a DeprecationWarning; one release)."""
    if name == "Quantizer":
        return _precision.quantizer_alias(stacklevel=2)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
