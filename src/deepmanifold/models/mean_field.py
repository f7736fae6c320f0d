"""The network of mean-field signal-propagation theory: a deep fully connected stack, no normalisation."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._common import SequentialClassifier, check_positive_number, fully_connected

__all__ = ["MeanFieldMLP"]


class Erf(nn.Module):
    """``erf(x)`` as a module (the activation with closed-form Gaussian kernels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(x)


#: Activation functions of :class:`MeanFieldMLP`, by name.
MEAN_FIELD_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "erf": Erf}


class MeanFieldMLP(SequentialClassifier):
    """Deep fully connected network initialised as in mean-field theory.

    ``flatten -> [Linear(width) -> activation] * depth -> Linear(n_classes)``, without
    normalisation, every weight drawn from ``N(0, σ_w²/fan_in)`` and every bias from
    ``N(0, σ_b²)``: the network whose signal propagation ``deepmanifold.theory``
    describes (:func:`~deepmanifold.theory.depth_scales`; Poole et al. 2016, Schoenholz et
    al. 2017). Near the order/chaos boundary (``critical_sigma_w2``) correlations between
    inputs survive through many layers, and such networks train at depths where others
    do not.

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Units per hidden layer.
    depth : int
        Number of hidden layers (>= 1).
    activation : {"tanh", "relu", "erf"}
    sigma_w2, sigma_b2 : float
        Weight and bias variances (``σ_w² > 0``, ``σ_b² >= 0``).
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 256, depth: int = 10,
                 activation: str = "tanh", sigma_w2: float = 1.76, sigma_b2: float = 0.05) -> None:
        super().__init__()
        if activation not in MEAN_FIELD_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(MEAN_FIELD_ACTIVATIONS)}, got {activation!r}")
        check_positive_number("sigma_w2", sigma_w2)
        if isinstance(sigma_b2, bool) or not isinstance(sigma_b2, (int, float)) or not 0 <= sigma_b2 < math.inf:
            raise ValueError(f"sigma_b2 must be a number >= 0, got {sigma_b2!r}")
        act = MEAN_FIELD_ACTIVATIONS[activation]
        self.net = fully_connected(input_shape, n_classes, width, depth,
                                   lambda fan_in, w: [nn.Linear(fan_in, w), act()], head_bias=True)
        with torch.no_grad():
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    layer.weight.normal_(0.0, math.sqrt(sigma_w2 / layer.in_features))
                    layer.bias.normal_(0.0, math.sqrt(sigma_b2)) if sigma_b2 > 0 else layer.bias.zero_()
