"""hwsim: neural networks through emulated low-precision hardware arithmetic, and what they cost.

Public API (flat): precision policies, layers, models, optimizers, training.
"""
from ._data import Dataset, load_data
from ._model import Sequential, build_model
from ._optim import SGD, Adam, CosineLR, StepLR
from ._precision import PRESETS, ROLES, Precision, Quantizer, RoleFormat, fast_mode_is_exact, register_quantizer
from ._train import TrainConfig, evaluate, train
from ._workload import workload
from .layers import (Activation, AvgPool2d, BatchNorm, Conv2d, Dense, DivergenceError, Dropout, Flatten,
                     Layer, MaxPool2d, SoftmaxCrossEntropy)
from . import compression, schemes  # noqa: E402  (schemes register their quantizer names)
from .schemes import Scheme, get_scheme

__all__ = [
    "Activation", "Adam", "AvgPool2d", "BatchNorm", "Conv2d", "CosineLR", "Dataset", "Dense", "DivergenceError",
    "Dropout", "Flatten", "Layer", "MaxPool2d", "PRESETS", "Precision", "Quantizer", "ROLES", "RoleFormat",
    "SGD", "Sequential", "SoftmaxCrossEntropy", "StepLR", "TrainConfig", "build_model", "evaluate",
    "fast_mode_is_exact", "load_data", "register_quantizer", "train", "workload",
    "compression", "schemes", "Scheme", "get_scheme",
]
