"""Layers with explicit forward and backward passes (numpy or CuPy, float32 by default)."""
from ._activations import KINDS as ACTIVATIONS, Activation
from ._base import DivergenceError, Layer
from ._circulant import Circulant
from ._conv import Conv2d
from ._dense import Dense
from ._dropout import Dropout
from ._estimated import EstimatedDense
from ._flatten import Flatten, Reshape
from ._gru import GRU, ConditionalGRU
from ._loss import SoftmaxCrossEntropy
from ._norm import BatchNorm
from ._optical import OpticalOption, set_optical
from ._pool import AvgPool2d, MaxPool2d

__all__ = ["ACTIVATIONS", "Activation", "AvgPool2d", "BatchNorm", "Circulant", "Conv2d", "Dense", "DivergenceError",
           "Dropout", "Flatten", "Layer", "MaxPool2d", "OpticalOption", "Reshape", "SoftmaxCrossEntropy",
           "set_optical"]
__all__ += ["GRU", "ConditionalGRU", "EstimatedDense"]
