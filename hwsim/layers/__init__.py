"""Layers with explicit forward and backward passes (numpy or CuPy, float32 by default)."""
from ._acdc import ACDC, AFDF
from ._activations import KINDS as ACTIVATIONS
from ._activations import Activation
from ._anneal_schedule import AnnealConstant, AnnealInverseSqrt, AnnealLinear
from ._base import DivergenceError, Layer
from ._circulant import Circulant
from ._conv import Conv2d
from ._dense import Dense
from ._dropout import Dropout
from ._estimated import EstimatedDense
from ._fastfood import Fastfood
from ._flatten import Flatten, Reshape
from ._fwht import fwht, fwht_inplace
from ._gru import GRU, ConditionalGRU
from ._hashed import Hashed
from ._loss import MeanSquaredError, SoftmaxCrossEntropy
from ._lowrank import LowRank
from ._mollify import MOLLIFIED_ACTS, MollifiedDense
from ._noisy import NOISE_RNG_OPS, NOISY_BASES, NOISY_VARIANTS, NoisyActivation
from ._norm import BatchNorm
from ._optical import OpticalOption, set_optical
from ._pool import AvgPool2d, MaxPool2d
from ._structured import StructuredLinear

__all__ = ["ACDC", "ACTIVATIONS", "AFDF", "Activation", "AvgPool2d", "BatchNorm", "Circulant",
           "Conv2d", "Dense",
           "DivergenceError", "Dropout", "Fastfood", "Flatten", "Hashed", "Layer", "LowRank", "MaxPool2d",
           "MeanSquaredError", "OpticalOption", "Reshape", "SoftmaxCrossEntropy", "StructuredLinear", "fwht",
           "fwht_inplace", "set_optical"]
__all__ += ["GRU", "ConditionalGRU", "EstimatedDense"]
__all__ += ["MOLLIFIED_ACTS", "NOISE_RNG_OPS", "NOISY_BASES", "NOISY_VARIANTS", "AnnealConstant",
            "AnnealInverseSqrt", "AnnealLinear", "MollifiedDense", "NoisyActivation"]
