"""Layers with explicit forward and backward passes (numpy or CuPy, float32 by default)."""
from ._activations import KINDS as ACTIVATIONS, Activation
from ._anneal_schedule import AnnealConstant, AnnealInverseSqrt, AnnealLinear
from ._base import DivergenceError, Layer
from ._conv import Conv2d
from ._dense import Dense
from ._dropout import Dropout
from ._flatten import Flatten, Reshape
from ._loss import SoftmaxCrossEntropy
from ._mollify import MOLLIFIED_ACTS, MollifiedDense
from ._noisy import NOISY_BASES, NOISY_VARIANTS, NoisyActivation
from ._norm import BatchNorm
from ._pool import AvgPool2d, MaxPool2d

__all__ = ["ACTIVATIONS", "MOLLIFIED_ACTS", "NOISY_BASES", "NOISY_VARIANTS", "Activation", "AnnealConstant",
           "AnnealInverseSqrt", "AnnealLinear", "AvgPool2d", "BatchNorm", "Conv2d", "Dense", "DivergenceError",
           "Dropout", "Flatten", "Layer", "MaxPool2d", "MollifiedDense", "NoisyActivation", "Reshape",
           "SoftmaxCrossEntropy"]
